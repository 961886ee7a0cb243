//! The SFTP listener: accepts connections and runs each as an SSH session of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::host_key::HostKey;
use super::session::Connection;
use super::{Info, Shared, drops::Drops, limiter::Limiter};
use crate::Ingest;

/// A bound SFTP server, not yet serving.
pub(crate) struct Server {
    listener: TcpListener,
    config: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    pub info: Info,
}

impl Server {
    /// Binds `listen` and loads (or makes) the host key; prints the fingerprint.
    pub async fn bind(
        ingest: &Ingest,
        listen: SocketAddr,
        quiet: Duration,
        host_key_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let key: HostKey = super::host_key::load(host_key_file, &ingest.storage).await?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("SFTP: listening on {listen}"))?;
        let bound = listener.local_addr()?;
        tracing::info!(listen = %bound, fingerprint = %key.fingerprint, "SFTP server listening");
        let config = russh::server::Config {
            // A refused login is answered after a pause: guessing is slow even before the
            // rate limit stops it.
            auth_rejection_time: Duration::from_secs(1),
            auth_rejection_time_initial: Some(Duration::from_secs(0)),
            max_auth_attempts: 6,
            inactivity_timeout: Some(Duration::from_secs(3600)),
            keepalive_interval: Some(Duration::from_secs(60)),
            nodelay: true,
            keys: vec![key.key.clone()],
            ..Default::default()
        };
        let shared = Arc::new(Shared {
            ingest: ingest.clone(),
            drops: Drops::new(ingest.clone(), quiet),
            limiter: Limiter::default(),
            max_file_bytes: ingest.photos.max_file_bytes,
        });
        Ok(Self {
            listener,
            config: Arc::new(config),
            shared,
            info: Info {
                listen: Some(bound),
                fingerprint: Some(key.fingerprint),
                public_key: Some(key.public_key),
                host: None,
            },
        })
    }

    /// Serves connections until `shutdown`; drops still open then wait in the database.
    pub async fn serve(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let sealer = tokio::spawn(self.shared.drops.clone().run(shutdown.clone()));
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let (socket, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "SFTP: accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let handler = Connection::new(self.shared.clone(), Some(peer));
            let config = self.config.clone();
            tokio::spawn(async move {
                let session = match russh::server::run_stream(config, socket, handler).await {
                    Ok(session) => session,
                    Err(error) => {
                        tracing::debug!(%error, %peer, "SFTP: connection ended before its session began");
                        return;
                    }
                };
                if let Err(error) = session.await {
                    tracing::debug!(error = format!("{error:#}"), %peer, "SFTP: session ended");
                }
            });
        }
        sealer.await??;
        Ok(())
    }
}
