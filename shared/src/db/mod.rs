//! The database: one set of entities and migrations for SQLite (embedded) and PostgreSQL.
//!
//! Tables belong to services: `districts`, `api_tokens`, `people`, `photos` to roster (auth reads
//! tokens); `jobs`, `job_files` to ingest; `job_status`, `file_outcomes` to reporting. A service
//! writes only its own tables.

pub mod entities;
mod migration;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

pub use migration::Migrator;

/// Connects and brings the schema up to date.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(if url.starts_with("sqlite:") { 8 } else { 16 })
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        // Per connection: WAL lets readers (the HTTP API) proceed while a consumer writes, and a
        // writer waits for another instead of failing.
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
        });
    let db = Database::connect(options).await?;
    migrate(&db).await?;
    Ok(db)
}

/// Brings the schema up to date. Service binaries starting together on PostgreSQL would race to
/// create the same tables; there the migration runs in one transaction holding an advisory lock,
/// so the first applies it and the rest wait and then find nothing to do.
async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Migrator::up(db, None).await;
    }
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
    ))
    .await?;
    Migrator::up(&txn, None).await?;
    txn.commit().await
}

/// Names of PostgreSQL advisory locks; any constants will do as long as they differ.
const WRITE_LOCK_KEY: i64 = 0x5049_4354_5552_4544; // "PICTURED"
const MIGRATION_LOCK_KEY: i64 = WRITE_LOCK_KEY + 1;

/// Begins a transaction that will write, holding the database's write lock until it ends.
///
/// Callers read, decide and write in one transaction (the reporting projection's counters, a
/// roster import's matching of existing people), which is only safe if no other writer runs in
/// between. On SQLite that is `BEGIN IMMEDIATE`: a deferred transaction that reads and then
/// writes fails outright when another connection wrote in between, where an immediate one simply
/// waits its turn. PostgreSQL's default isolation would instead let two such transactions
/// interleave and lose an update, so there the transaction takes a transaction-scoped advisory
/// lock first: writers wait their turn there too.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let backend = db.get_database_backend();
    let sqlite_transaction_mode =
        (backend == DbBackend::Sqlite).then_some(SqliteTransactionMode::Immediate);
    let txn = db
        .begin_with_options(TransactionOptions {
            isolation_level: None,
            access_mode: None,
            sqlite_transaction_mode,
        })
        .await?;
    if backend == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"))
            .await?;
    }
    Ok(txn)
}
