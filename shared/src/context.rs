//! The connections a service works with, built once from [`Settings`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use sea_orm::DatabaseConnection;

use crate::auth::Auth;
use crate::bus::{self, Publisher};
use crate::config::Settings;
use crate::db;
use crate::storage::Storage;

#[derive(Clone)]
pub struct Context {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub storage: Storage,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub publisher: Publisher,
    pub auth: Arc<Auth>,
}

/// How long a starting service waits for NATS (it may be starting alongside).
const NATS_CONNECT_PATIENCE: Duration = Duration::from_secs(30);

impl Context {
    /// Connects to the database (running migrations), storage and NATS, and ensures the JetStream
    /// topology exists.
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        let db = db::connect(&settings.database_url)
            .await
            .context("connecting to the database (DATABASE_URL)")?;
        let storage = Storage::open(&settings.storage)
            .await
            .context("opening storage (PICTUREDAY_STORAGE)")?;
        tokio::fs::create_dir_all(&settings.spool_dir)
            .await
            .with_context(|| {
                format!("creating spool directory {}", settings.spool_dir.display())
            })?;
        let nats = connect_nats(&settings.nats_url, &settings.instance).await?;
        let js = jetstream::new(nats.clone());
        bus::ensure_topology(&js, &settings.topology)
            .await
            .context("creating JetStream streams and consumers")?;
        let auth = Auth::new(db.clone(), &settings.operator_token);
        Ok(Self {
            settings: Arc::new(settings),
            db,
            storage,
            publisher: Publisher::new(js.clone()),
            nats,
            js,
            auth,
        })
    }
}

async fn connect_nats(url: &str, instance: &str) -> anyhow::Result<async_nats::Client> {
    let deadline = tokio::time::Instant::now() + NATS_CONNECT_PATIENCE;
    loop {
        let attempt = async_nats::ConnectOptions::new()
            .name(format!("pictureday-{instance}"))
            .connect(url)
            .await;
        match attempt {
            Ok(client) => return Ok(client),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::info!(%error, url, "waiting for NATS");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("connecting to NATS at {url} (NATS_URL)"));
            }
        }
    }
}
