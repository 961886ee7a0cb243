//! Ingest: accepts uploads over HTTP and SFTP (`sftp`), streams their bytes to storage, records each job and
//! publishes one event per photo file. It owns the jobs and their files (`db`), and so it is
//! what publishes a file's events again when they were lost (`requests`).

mod api;
pub mod archive;
pub mod db;
mod jobs;
pub mod mapping;
mod object_copy;
mod one_photo;
pub mod openapi;
pub mod pspa;
mod purge;
mod requests;
mod resumable;
mod retention;
mod retention_settings;
pub mod sftp;
mod upload;
mod warnings;
pub mod zipdir;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use pictureday_access::Auth;
use pictureday_platform::Connections;
use pictureday_platform::bus::Bus;
use pictureday_platform::runtime::{Component, Dependency};
use pictureday_platform::storage::Storage;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

/// What ingest works with.
#[derive(Clone)]
pub(crate) struct Ingest {
    pub db: DatabaseConnection,
    pub storage: Storage,
    pub bus: Bus,
    pub auth: Arc<Auth>,
    pub spool: PathBuf,
    /// Upload limits: the largest photo file and the largest request.
    pub photos: pictureday_platform::config::PhotoLimits,
    /// How long originals are kept after their job ends.
    pub retention: pictureday_platform::config::Retention,
}

pub async fn component(
    connections: &Connections,
    shutdown: &CancellationToken,
) -> anyhow::Result<Component> {
    let settings = connections.settings();
    let db = connections
        .migrated_database::<db::Migrator>("ingest")
        .await?;
    let storage = connections.storage().await?;
    let bus = connections.bus().await?;
    let auth = Auth::open(db.clone(), settings.operator_token()?).await?;
    let spool = settings.spool_dir()?.to_owned();
    tokio::fs::create_dir_all(&spool)
        .await
        .with_context(|| format!("creating spool directory {}", spool.display()))?;
    let ingest = Ingest {
        db: db.clone(),
        storage: storage.clone(),
        bus: bus.clone(),
        auth,
        spool,
        photos: settings.photos,
        retention: settings.retention,
    };
    // The SFTP server is bound here, before the routes, so the API can say where it listens.
    let sftp_server = match settings.sftp.listen {
        Some(listen) => Some(Arc::new(
            sftp::Server::bind(
                &ingest,
                listen,
                settings.sftp.quiet,
                settings.sftp.host_key_file.as_deref(),
            )
            .await?,
        )),
        None => None,
    };
    let sftp_info = sftp_server.as_ref().map_or(
        sftp::Info {
            listen: None,
            fingerprint: None,
            public_key: None,
            host: None,
        },
        |s| s.info.clone(),
    );
    let sftp_info = sftp::Info {
        host: settings.api.public_url.as_deref().and_then(sftp::host_of),
        ..sftp_info
    };
    let (outbox, outbox_stop) = (ingest.clone(), shutdown.clone());
    let (requests, requests_stop) = (ingest.clone(), shutdown.clone());
    let (purges, purges_stop) = (ingest.clone(), shutdown.clone());
    let (retention, retention_stop) = (ingest.clone(), shutdown.clone());
    let mut component = Component::new("ingest")
        .routes(api::router(ingest.clone()))
        .routes(sftp::accounts_api::router(sftp::accounts_api::SftpApi {
            ingest: ingest.clone(),
            info: sftp_info,
        }))
        .routes(one_photo::router(ingest.clone()))
        .routes(resumable::router(ingest.clone()))
        .routes(retention_settings::router(ingest))
        .worker("outbox", move || {
            jobs::run_outbox(outbox.clone(), outbox_stop.clone())
        })
        .worker("requests", move || {
            requests::serve(requests.clone(), requests_stop.clone())
        })
        .worker("purge", move || {
            purge::serve(purges.clone(), purges_stop.clone())
        })
        .worker("retention", move || {
            retention::run(retention.clone(), retention_stop.clone())
        })
        .depends_on(Dependency::Nats(bus))
        .depends_on(Dependency::Database(db))
        .depends_on(Dependency::Storage(storage));
    if let Some(server) = sftp_server {
        let stop = shutdown.clone();
        component = component.worker("sftp", move || server.clone().serve(stop.clone()));
    }
    Ok(component)
}
