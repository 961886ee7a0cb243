//! The database: one set of entities and migrations for SQLite (embedded) and PostgreSQL.
//!
//! Tables belong to services: `districts`, `api_tokens`, `people`, `photos` to roster (auth reads
//! tokens); `jobs`, `job_files` to ingest; `job_status`, `file_outcomes` to reporting. A service
//! writes only its own tables.

pub mod entities;
mod migration;

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

pub use migration::Migrator;

/// Connects and brings the schema up to date.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(if url.starts_with("sqlite:") { 8 } else { 16 })
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    if url.starts_with("sqlite:") {
        // WAL lets readers (the HTTP API) proceed while a consumer writes; busy_timeout makes a
        // writer wait for another instead of failing at once.
        use sea_orm::ConnectionTrait;
        db.execute_unprepared(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON;",
        )
        .await?;
    }
    Migrator::up(&db, None).await?;
    Ok(db)
}
