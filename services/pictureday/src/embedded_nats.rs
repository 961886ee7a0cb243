//! The embedded default's own nats-server, kept running: started again on the same port and
//! store when it dies, and — as soon as the disk has room again — when a full disk has broken
//! it: nats-server then either turns JetStream off or keeps a stream's write error for good, and
//! only a restart clears either. The services' connections reconnect by themselves; their
//! stages wait meanwhile, so nothing accepted is lost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use pictureday_platform::nats_client::NatsAddress;
use pictureday_platform::nats_server::NatsServer;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

pub struct EmbeddedNats {
    store: PathBuf,
    port: u16,
    url: String,
    server: Mutex<Option<NatsServer>>,
}

/// How often the server is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Checks in a row JetStream must fail before the server is started again (a busy server may
/// miss one).
const FAILED_CHECKS: u32 = 3;

impl EmbeddedNats {
    pub async fn start(store: &Path) -> anyhow::Result<Self> {
        let server = NatsServer::start(store).await?;
        let port = server
            .port()
            .with_context(|| format!("no port in {}", server.url_without_credentials()))?;
        Ok(Self {
            store: store.to_owned(),
            port,
            url: server.url().to_owned(),
            server: Mutex::new(Some(server)),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Watches the server until shutdown.
    pub async fn supervise(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let client = NatsAddress::parse(&self.url)
            .connect("pictureday-nats-supervisor")
            .await?;
        let js = async_nats::jetstream::new(client);
        let mut failed = 0;
        let mut log = LogWatch::new(self.store.join("nats-server.log"));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            let exited = self
                .server
                .lock()
                .await
                .as_mut()
                .is_some_and(NatsServer::exited);
            if exited {
                tracing::error!("the embedded nats-server exited; starting it again");
                self.restart().await?;
                failed = 0;
                continue;
            }
            let answered = tokio::time::timeout(Duration::from_secs(2), js.query_account())
                .await
                .is_ok_and(|r| r.is_ok());
            failed = if answered { 0 } else { failed + 1 };
            let broken = log.saw_storage_failure().await;
            if (failed >= FAILED_CHECKS || broken) && room_on_disk(&self.store).await {
                tracing::error!(
                    "nats-server lost the use of its disk (it ran out of space) and the disk \
                     has room again; starting nats-server again"
                );
                self.restart().await?;
                log = LogWatch::new(self.store.join("nats-server.log"));
                failed = 0;
            }
        }
    }

    async fn restart(&self) -> anyhow::Result<()> {
        let mut server = self.server.lock().await;
        if let Some(old) = server.take() {
            old.stop().await;
        }
        *server = Some(NatsServer::start_on(&self.store, Some(self.port)).await?);
        Ok(())
    }

    pub async fn stop(&self) {
        if let Some(server) = self.server.lock().await.take() {
            server.stop().await;
        }
    }
}

/// Reads what nats-server adds to its log (it starts a fresh log at each start), remembering
/// whether it reported a storage failure it will not recover from by itself.
struct LogWatch {
    path: PathBuf,
    read: u64,
    broken: bool,
}

impl LogWatch {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            read: 0,
            broken: false,
        }
    }

    async fn saw_storage_failure(&mut self) -> bool {
        if self.broken {
            return true;
        }
        let Ok(text) = tokio::fs::read(&self.path).await else {
            return false;
        };
        let start = usize::try_from(self.read)
            .unwrap_or(usize::MAX)
            .min(text.len());
        let new = String::from_utf8_lossy(&text[start..]).to_lowercase();
        self.read = text.len() as u64;
        self.broken = new.contains("critical write error") || new.contains("will be disabled");
        self.broken
    }
}

/// Whether a megabyte can be written beside the store.
async fn room_on_disk(store: &Path) -> bool {
    let probe = store.join(".room-probe");
    let written = tokio::fs::write(&probe, vec![0u8; 1 << 20]).await.is_ok();
    let _ = tokio::fs::remove_file(&probe).await;
    written
}
