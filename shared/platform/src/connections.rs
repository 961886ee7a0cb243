//! What a process connects to, each made on first use and then shared by every component the
//! process hosts. A service asks only for what it uses, so the matcher never opens a database
//! and the image-processor needs no database setting at all.

use std::sync::Arc;

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use tokio::sync::OnceCell;

use crate::bus::Bus;
use crate::config::Settings;
use crate::storage::Storage;

pub struct Connections {
    settings: Arc<Settings>,
    bus: OnceCell<Bus>,
    storage: OnceCell<Storage>,
    database: OnceCell<DatabaseConnection>,
}

impl Connections {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings: Arc::new(settings),
            bus: OnceCell::new(),
            storage: OnceCell::new(),
            database: OnceCell::new(),
        }
    }

    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// NATS with the JetStream topology in place.
    pub async fn bus(&self) -> anyhow::Result<Bus> {
        let settings = &self.settings;
        self.bus
            .get_or_try_init(|| async {
                Bus::connect(
                    &settings.nats_url,
                    &settings.instance,
                    settings.topology.clone(),
                )
                .await
                .context("connecting to NATS and creating JetStream streams and consumers")
            })
            .await
            .cloned()
    }

    /// Object storage (`PICTUREDAY_STORAGE`).
    pub async fn storage(&self) -> anyhow::Result<Storage> {
        let config = self.settings.storage()?;
        self.storage
            .get_or_try_init(|| async {
                Storage::open(config)
                    .await
                    .context("opening storage (PICTUREDAY_STORAGE)")
            })
            .await
            .cloned()
    }

    /// The database (`DATABASE_URL`); each service runs its own migrations on it.
    pub async fn database(&self) -> anyhow::Result<DatabaseConnection> {
        let url = self.settings.database_url()?;
        self.database
            .get_or_try_init(|| async {
                crate::db::connect(url)
                    .await
                    .context("connecting to the database (DATABASE_URL)")
            })
            .await
            .cloned()
    }

    /// The database with `M` — a service's own migrations, with their own history — applied.
    pub async fn migrated_database<M: sea_orm_migration::MigratorTrait>(
        &self,
        service: &str,
    ) -> anyhow::Result<DatabaseConnection> {
        let db = self.database().await?;
        crate::db::migrate::<M>(&db)
            .await
            .with_context(|| format!("migrating {service}'s tables"))?;
        Ok(db)
    }

    /// The bus, if something connected it (to drain at shutdown).
    pub fn connected_bus(&self) -> Option<&Bus> {
        self.bus.get()
    }
}
