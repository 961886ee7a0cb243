//! The database, for the services that have one: connecting (SQLite for the embedded default,
//! PostgreSQL in production), running one service's migrations, beginning write transactions and
//! telling an outage from an error.
//!
//! There is no lock across services. Each service writes only its own tables and gets its
//! concurrency from atomic statements (conditional updates, `INSERT … ON CONFLICT`), row locks
//! (`SELECT … FOR UPDATE`) where a read decides a write, and a per-key advisory lock
//! ([`lock_key`]) where order really matters. SQLite has one writer at a time anyway.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use pictureday_contract::events::Dependency;
use sea_orm::prelude::async_trait::async_trait;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnAcquireErr, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, QueryTrait, RuntimeErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::ColumnDef;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::stage::{Failure, Handled};

/// Connects; the caller runs its own migrations ([`migrate`]).
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let sqlite = url.starts_with("sqlite:");
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(if sqlite { 8 } else { 16 })
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // SQLite rolls a transaction back by itself on some errors (a full disk, I/O), after which
        // the driver still counts it as open on that connection: it would then open savepoints
        // instead of transactions, and a job committed inside one was lost when the connection
        // closed. A connection the driver believes is inside a transaction when it is handed out
        // is such a connection (a healthy one never is): it is dropped and a new one opened.
        .map_sqlx_sqlite_before_acquire(|conn, _| {
            Box::pin(async move {
                use sea_orm::sqlx::Connection as _;
                Ok(!conn.is_in_transaction())
            })
        })
        // And connections are short-lived on SQLite (reopening one is cheap), so whatever such a
        // connection held is released soon after the disk has room again.
        .max_lifetime(if sqlite {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(30 * 60)
        })
        .idle_timeout(if sqlite {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(10 * 60)
        })
        .sqlx_logging(false)
        // Per connection: WAL lets readers (the HTTP API) proceed while a consumer writes, and a
        // writer waits for another instead of failing. FULL makes every commit durable before a
        // consumer acks the message that caused it (NORMAL could lose the last commits on a
        // power cut while their messages were already acked).
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
        });
    Database::connect(options).await
}

/// Names of PostgreSQL advisory locks: any constants will do as long as they differ.
const MIGRATION_LOCK_KEY: i64 = 0x5049_4354_5552_4545; // "PICTUREE"

/// Brings one service's schema up to date (its own migrations, with their own history table).
/// Replicas starting together on PostgreSQL would race to create the same tables; there the
/// migration runs in one transaction holding an advisory lock, so the first applies it and the
/// rest wait and then find nothing to do.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return M::up(db, None).await;
    }
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
    ))
    .await?;
    M::up(&txn, None).await?;
    txn.commit().await
}

/// A text primary-key column, as every table here has.
pub fn key_column(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .string()
        .not_null()
        .primary_key()
        .to_owned()
}

/// How long a writer waits for its turn on SQLite before the database counts as unavailable
/// (its busy timeout, 5 s, applies to writers of other processes only).
const WRITE_TURN_PATIENCE: Duration = Duration::from_secs(60);

/// On SQLite, the writers of this process take turns on each database file in the order they
/// asked (a fair queue). SQLite's own lock is taken by polling (its busy handler sleeps and tries
/// again), so a writer could miss every gap between another's transactions (a large roster import
/// writes its chunks back to back) and fail with "database is locked" after the busy timeout.
static WRITE_TURNS: LazyLock<Mutex<HashMap<PathBuf, Arc<Semaphore>>>> =
    LazyLock::new(Default::default);

/// The queue of this process's writers of `db`'s file; `None` when the database is not SQLite.
fn write_turns(db: &DatabaseConnection) -> Option<Arc<Semaphore>> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    let file = options.get_filename();
    let mut turns = WRITE_TURNS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(queue) = turns.get(file) {
        return Some(Arc::clone(queue));
    }
    let queue = Arc::new(Semaphore::new(1));
    turns.insert(file.to_path_buf(), Arc::clone(&queue));
    Some(queue)
}

/// A transaction that writes (see [`begin_write`]). It is used like the transaction it holds;
/// on SQLite it also holds this process's turn to write, until it is committed, rolled back or
/// dropped.
pub struct WriteTransaction {
    // Declared first so that it ends before the turn passes on.
    txn: DatabaseTransaction,
    _turn: Option<OwnedSemaphorePermit>,
}

/// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE` after this process's
/// earlier writers of the file have had their turn: a deferred transaction that reads and then
/// writes fails outright when another connection wrote in between, where an immediate one waits
/// its turn. On PostgreSQL it is an ordinary transaction: writers run concurrently, and each
/// caller locks only what its decision depends on.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTransaction, DbErr> {
    let turn = match write_turns(db) {
        Some(turns) => {
            match tokio::time::timeout(WRITE_TURN_PATIENCE, turns.acquire_owned()).await {
                Ok(Ok(turn)) => Some(turn),
                // The queue is never closed; a wait this long means the database is stuck.
                Ok(Err(_)) | Err(_) => {
                    return Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
                }
            }
        }
        None => None,
    };
    let sqlite_transaction_mode = turn.as_ref().map(|_| SqliteTransactionMode::Immediate);
    let txn = db
        .begin_with_options(TransactionOptions {
            isolation_level: None,
            access_mode: None,
            sqlite_transaction_mode,
        })
        .await?;
    Ok(WriteTransaction { txn, _turn: turn })
}

/// Runs one statement that writes (an update, insert or delete) in a write transaction of its
/// own, so that on SQLite it takes its turn with this process's other writers instead of polling
/// the lock; returns how many rows it changed.
pub async fn write<Q: QueryTrait>(db: &DatabaseConnection, statement: Q) -> Result<u64, DbErr> {
    let txn = begin_write(db).await?;
    let changed = txn.execute(statement.as_query()).await?.rows_affected();
    txn.commit().await?;
    Ok(changed)
}

impl WriteTransaction {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

#[async_trait]
impl ConnectionTrait for WriteTransaction {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }
}

/// Serialises the transactions that name the same `scope` and `key` (a district's roster
/// import, say) until they end; others run on. On SQLite, where the write transaction already
/// excludes every other writer, it does nothing.
pub async fn lock_key(txn: &DatabaseTransaction, scope: &str, key: &str) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        [format!("{scope}:{key}").into()],
    ))
    .await?;
    Ok(())
}

/// Whether the database is up and answers.
pub async fn ping(db: &DatabaseConnection) -> bool {
    tokio::time::timeout(Duration::from_secs(2), db.ping())
        .await
        .is_ok_and(|r| r.is_ok())
}

/// Whether `error` means the database is unavailable (down, unreachable, out of disk or
/// connections, shutting down, busy), as opposed to a statement that failed on its own.
pub fn is_outage(error: &DbErr) -> bool {
    let runtime = match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(e) | DbErr::Query(e) => e,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return false;
    };
    use sea_orm::sqlx::Error as Sqlx;
    match &**sqlx {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::Protocol(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed => true,
        Sqlx::Database(db) => db.code().is_some_and(|code| outage_code(&code)),
        _ => false,
    }
}

/// SQLite result codes and PostgreSQL SQLSTATE classes that describe the server, not the
/// statement.
fn outage_code(code: &str) -> bool {
    // A PostgreSQL SQLSTATE has five characters (often all digits); SQLite's result codes are
    // shorter numbers. SQLite (primary codes; extended codes carry the primary one in their low
    // byte): 5 BUSY, 6 LOCKED, 7 NOMEM, 8 READONLY, 10 IOERR, 13 FULL, 14 CANTOPEN, 15 PROTOCOL.
    if code.len() < 5
        && let Ok(n) = code.parse::<u32>()
    {
        return matches!(n & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14 | 15);
    }
    // PostgreSQL: 08 connection, 40 transaction rollback (serialization, deadlock), 53
    // insufficient resources (disk full, out of memory, too many connections), 57 operator
    // intervention (shutdown), 58 system error.
    matches!(code.get(..2), Some("08" | "40" | "53" | "57" | "58"))
}

/// Why a database statement failed, as a stage reports it: an outage keeps the message until the
/// database is back; anything else may be the event's fault, and the stage loop finds out.
pub fn failure(error: &DbErr) -> Failure {
    let cause = anyhow::anyhow!("{error}");
    if is_outage(error) {
        Failure::Unavailable(Dependency::Database, cause)
    } else {
        Failure::Failed(Dependency::Database, cause)
    }
}

/// The same failure for every event of a batch whose one transaction failed.
pub fn batch_failed(events: usize, error: &DbErr) -> Vec<Handled> {
    (0..events).map(|_| Err(failure(error))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::EntityTrait;
    use tokio_util::sync::CancellationToken;

    #[test]
    fn outage_codes() {
        assert!(outage_code("13")); // SQLITE_FULL
        assert!(outage_code("5")); // SQLITE_BUSY
        assert!(outage_code("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(outage_code("53100")); // disk_full
        assert!(outage_code("57P01")); // admin_shutdown
        assert!(outage_code("40001")); // serialization_failure
        assert!(!outage_code("23505")); // unique_violation
        assert!(!outage_code("22P02")); // invalid text representation
        assert!(!outage_code("19")); // SQLITE_CONSTRAINT
        assert!(!outage_code("1811")); // SQLITE_CONSTRAINT_TRIGGER
        assert!(!outage_code("P0001")); // raise_exception
    }

    /// A writer that writes back to back (a large roster import's chunks) cannot starve another
    /// writer of the same process: the other gets the next turn, where polling SQLite's lock
    /// missed every gap between the busy writer's transactions until its busy timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_writer_lets_a_waiting_writer_in_next() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("turns.db").display()
        );
        let db = connect(&url).await?;
        db.execute_unprepared(
            "CREATE TABLE commits (n INTEGER PRIMARY KEY AUTOINCREMENT, writer TEXT NOT NULL)",
        )
        .await?;
        let stop = CancellationToken::new();
        let busy = tokio::spawn({
            let (db, stop) = (db.clone(), stop.clone());
            async move {
                let mut transactions = 0u32;
                while !stop.is_cancelled() {
                    let txn = begin_write(&db).await?;
                    txn.execute_unprepared("INSERT INTO commits (writer) VALUES ('busy')")
                        .await?;
                    // Holds the lock a while, as a chunk of a thousand rows does.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    txn.commit().await?;
                    transactions += 1;
                }
                Ok::<_, DbErr>(transactions)
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = busy_commits(&db).await?;
        let txn = begin_write(&db).await?;
        txn.execute_unprepared("INSERT INTO commits (writer) VALUES ('waiting')")
            .await?;
        txn.commit().await?;
        let after = busy_commits(&db).await?;
        // A single statement through `write` takes its turn the same way.
        let inserted = write(
            &db,
            commit::Entity::insert(commit::ActiveModel {
                writer: sea_orm::Set("single statement".into()),
                ..Default::default()
            }),
        )
        .await?;
        let after_single = busy_commits(&db).await?;
        stop.cancel();
        let transactions = busy.await??;

        // The busy writer was writing before and after; each waiting writer came in after at
        // most the one transaction in progress when it asked.
        assert!(before >= 3, "the busy writer had made {before} commits");
        assert!(
            after - before <= 1,
            "{} busy commits went first",
            after - before
        );
        assert_eq!(inserted, 1);
        assert!(
            after_single - after <= 1,
            "{} busy commits went before the single statement",
            after_single - after
        );
        assert!(u64::from(transactions) > after_single);
        Ok(())
    }

    /// The test's table, for statements built as the services build theirs.
    mod commit {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "commits")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub n: i64,
            pub writer: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    async fn busy_commits(db: &DatabaseConnection) -> Result<u64, DbErr> {
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM commits WHERE writer = 'busy'",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("no count".into()))?;
        Ok(u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0))
    }
}
