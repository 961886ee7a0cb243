//! Roster imports: a posted roster is spooled to storage, recorded as an import, and applied in
//! the background by [`Imports::run`], so that a roster of a million rows is neither a
//! nine-minute request nor a gigabyte in memory, and no other district waits on it.
//!
//! The CSV is read from a local copy of the spooled file record by record and applied in chunks
//! of [`CHUNK_ROWS`] rows, each in its own short write transaction that also writes the chunk's
//! row errors, the import's progress and the district's roster generation. On SQLite, where one
//! writer excludes all others, nobody waits on an import for longer than a chunk.
//!
//! Imports of one district run one at a time, oldest first; different districts run at once. An
//! import is claimed by one worker (`owner`) for [`LEASE`], renewed by every chunk. A worker that
//! stops mid-import (a restart, a crash) leaves its import `running` with the row it got to: the
//! next claim, by this process or another replica once the lease lapses (at once after a clean
//! shutdown, which releases it), reads the file again from the top — rebuilding what duplicate
//! detection needs — and applies the rows after that one, so counts and the error log stay exact.
//!
//! A OneRoster zip (`sources::oneroster`, recognised by its first bytes) is imported the same way:
//! its `orgs.csv` schools first, then `users.csv` in chunks, its rows as the progress; after a
//! bulk `users.csv`, the source's people it did not list are deactivated, by the import's
//! `started_at`, which a resumed import keeps.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufReader, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use pictureday_contract::DistrictId;
use pictureday_platform::db::{begin_write, is_outage, lock_key, write};
use pictureday_platform::storage::{Storage, StorageError};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, UpdateMany,
};
use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::db::person::RosterSource;
use crate::db::{roster_import, roster_import_error, school};
use crate::import::{ImportCounts, upsert_chunk};
use crate::roster_csv::{Record, RosterCsvError, RosterReader, RosterRow, RowError};
use crate::sources::oneroster::{
    self, FileError, IdentifierMap, Mode, OneRosterError, Package, Piece, Prelude, UsersChunk,
};
use crate::sources::{people, schools};

/// Rows applied per transaction: short enough that every other writer waits well under a
/// second, long enough that a million rows is a thousand transactions.
pub const CHUNK_ROWS: usize = 1000;
/// How long a claim holds without progress before another worker may take the import over.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often the worker looks for imports it was not told about (another replica's, a lapsed
/// claim).
const SCAN_EVERY: Duration = Duration::from_secs(2);
/// Bytes of the spooled roster fetched from storage per request.
const FETCH_BYTES: u64 = 4 * 1024 * 1024;
/// Error rows inserted per statement (5 values each).
const ERROR_INSERT: usize = 500;

/// A roster import: a UUID v7, so imports sort by arrival.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RosterImportId(String);

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a roster import id")]
pub struct InvalidImportId(String);

impl RosterImportId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().hyphenated().to_string())
    }

    /// An id as the API hands them out: a canonical (lower-case, hyphenated) UUID.
    pub fn parse(raw: &str) -> Result<Self, InvalidImportId> {
        match uuid::Uuid::try_parse(raw) {
            Ok(id) if id.hyphenated().to_string() == raw => Ok(Self(raw.to_owned())),
            _ => Err(InvalidImportId(raw.chars().take(64).collect())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RosterImportId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RosterImportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an import is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = RosterImportState)]
#[serde(rename_all = "snake_case")]
pub enum ImportState {
    Queued,
    Running,
    Completed,
    Failed,
}

impl ImportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Queued => "queued",
            ImportState::Running => "running",
            ImportState::Completed => "completed",
            ImportState::Failed => "failed",
        }
    }

    /// The state stored; anything unknown reads as `failed`, which no worker touches.
    pub fn of(stored: &str) -> Self {
        match stored {
            "queued" => ImportState::Queued,
            "running" => ImportState::Running,
            "completed" => ImportState::Completed,
            _ => ImportState::Failed,
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, ImportState::Completed | ImportState::Failed)
    }
}

/// The folder an import's spooled CSV is stored in (deleted when the import ends).
pub fn spool_prefix(district: &DistrictId, id: &RosterImportId) -> String {
    format!("{district}/rosters/{id}")
}

pub fn spool_key(district: &DistrictId, id: &RosterImportId) -> String {
    format!("{}/roster.csv", spool_prefix(district, id))
}

/// A time as the database keeps it (PostgreSQL: microseconds), so that what is written compares
/// equal to what is read back.
pub fn db_time(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

/// The imports of this process: what the API and the worker share.
#[derive(Clone)]
pub struct Imports {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    storage: Storage,
    /// Local working files: uploads being received, spooled rosters being read.
    spool: PathBuf,
    /// This process's name on the imports it claims.
    owner: String,
    /// A new import was recorded.
    wake: Notify,
    /// An import ended.
    finished: Notify,
    /// Districts with a task running here.
    active: Mutex<HashSet<String>>,
}

/// How a run of an import ended.
enum Ended {
    Completed,
    /// The import cannot succeed (a header error, an unreadable file): it fails with this message.
    Failed(String),
    /// Stopped before the end (shutdown, a database or storage outage, a claim lost to another
    /// worker): the import stays `running` and is taken up again.
    Interrupted(String),
}

/// A chunk of parsed records, in file order.
#[derive(Default)]
struct Chunk {
    rows: Vec<RosterRow>,
    errors: Vec<RowError>,
    rejected_rows: u64,
    /// The row number of the chunk's last record.
    last_row: u32,
}

impl Chunk {
    fn records(&self) -> usize {
        self.rows.len() + usize::try_from(self.rejected_rows).unwrap_or(usize::MAX)
    }
}

/// What an import has done so far, as recorded.
#[derive(Debug, Clone, Copy)]
struct Progress {
    last_row: i64,
    created: i64,
    updated: i64,
    unchanged: i64,
    rejected_rows: i64,
    errors: i64,
    deactivated: i64,
    reactivated: i64,
    ignored: i64,
}

impl Progress {
    fn of(model: &roster_import::Model) -> Self {
        Self {
            last_row: model.last_row,
            created: model.created,
            updated: model.updated,
            unchanged: model.unchanged,
            rejected_rows: model.rejected_rows,
            errors: model.errors,
            deactivated: model.deactivated,
            reactivated: model.reactivated,
            ignored: model.ignored,
        }
    }

    fn add(&self, chunk: &Chunk, counts: &ImportCounts) -> Self {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            last_row: i64::from(chunk.last_row),
            created: self.created + n(counts.created),
            updated: self.updated + n(counts.updated),
            unchanged: self.unchanged + n(counts.unchanged),
            rejected_rows: self.rejected_rows + n(chunk.rejected_rows),
            errors: self.errors + n(chunk.errors.len() as u64),
            deactivated: self.deactivated + n(counts.deactivated),
            reactivated: self.reactivated + n(counts.reactivated),
            ignored: self.ignored,
        }
    }
}

/// A district being worked on here; released when its task ends, however it ends.
struct Slot {
    imports: Imports,
    district: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut active) = self.imports.inner.active.lock() {
            active.remove(&self.district);
        }
    }
}

fn lease_end(now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::seconds(30))
}

impl Imports {
    pub fn new(db: DatabaseConnection, storage: Storage, spool: PathBuf) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                storage,
                spool,
                owner: format!("roster-{}", uuid::Uuid::new_v4()),
                wake: Notify::new(),
                finished: Notify::new(),
                active: Mutex::new(HashSet::new()),
            }),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    pub fn spool(&self) -> &std::path::Path {
        &self.inner.spool
    }

    /// Tells the worker a new import is queued.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The import, once it has ended or `patience` has passed, whichever is first.
    pub async fn wait(
        &self,
        id: &RosterImportId,
        patience: Duration,
    ) -> Result<Option<roster_import::Model>, DbErr> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut pause = Duration::from_millis(20);
        loop {
            let finished = self.inner.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let import = roster_import::Entity::find_by_id(id.as_str().to_owned())
                .one(&self.inner.db)
                .await?;
            let done = import
                .as_ref()
                .is_none_or(|i| ImportState::of(&i.state).is_finished());
            let now = tokio::time::Instant::now();
            if done || now >= deadline {
                return Ok(import);
            }
            // Another replica may run it: look again now and then even without a signal.
            tokio::select! {
                _ = &mut finished => {}
                _ = tokio::time::sleep(pause.min(deadline - now)) => {}
            }
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// The worker: runs every district's queued imports until `shutdown`, then lets each running
    /// one stop at the end of its chunk and releases it.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = JoinSet::new();
        loop {
            let wake = self.inner.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            match self.pending_districts().await {
                Ok(districts) => {
                    for district in districts {
                        if let Some(slot) = self.slot(&district) {
                            tasks.spawn(self.clone().run_district(slot, shutdown.clone()));
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "looking for roster imports to run"),
            }
            while let Some(joined) = tasks.try_join_next() {
                if let Err(error) = joined {
                    tracing::error!(%error, "a roster import task failed");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut wake => {}
                _ = tokio::time::sleep(SCAN_EVERY) => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    fn slot(&self, district: &str) -> Option<Slot> {
        let mut active = self.inner.active.lock().ok()?;
        active.insert(district.to_owned()).then(|| Slot {
            imports: self.clone(),
            district: district.to_owned(),
        })
    }

    async fn pending_districts(&self) -> Result<Vec<String>, DbErr> {
        roster_import::Entity::find()
            .select_only()
            .column(roster_import::Column::DistrictId)
            .distinct()
            .filter(
                roster_import::Column::State
                    .is_in([ImportState::Queued.as_str(), ImportState::Running.as_str()]),
            )
            .into_tuple::<String>()
            .all(&self.inner.db)
            .await
    }

    /// Runs the district's imports, oldest first, while this worker can claim them.
    async fn run_district(self, slot: Slot, shutdown: CancellationToken) {
        let district = slot.district.as_str();
        while !shutdown.is_cancelled() {
            let import = match self.claim(district).await {
                Ok(Some(import)) => import,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%district, %error, "claiming a roster import");
                    return;
                }
            };
            let id = import.id.clone();
            tracing::info!(%district, import = %id, from_row = import.last_row, "roster import running");
            let ended = self.run_import(&import, &shutdown).await;
            let recorded = match &ended {
                Ended::Completed => self.finish(&id, ImportState::Completed, None).await,
                Ended::Failed(message) => {
                    tracing::warn!(%district, import = %id, %message, "roster import failed");
                    self.finish(&id, ImportState::Failed, Some(message)).await
                }
                Ended::Interrupted(reason) => {
                    tracing::warn!(%district, import = %id, %reason, "roster import interrupted; it will resume");
                    if let Err(error) = self.release(&id).await {
                        tracing::warn!(import = %id, %error, "releasing a roster import");
                    }
                    return;
                }
            };
            match recorded {
                Ok(true) => {
                    self.inner.finished.notify_waiters();
                    let spool = import.spool_key.rsplit_once('/').map_or("", |(dir, _)| dir);
                    if !spool.is_empty()
                        && let Err(error) = self.inner.storage.delete_prefix(spool).await
                    {
                        tracing::warn!(import = %id, %error, "deleting a finished roster import's CSV");
                    }
                }
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(import = %id, %error, "recording the end of a roster import");
                    return;
                }
            }
        }
    }

    /// Claims the district's oldest unfinished import, unless another worker holds it.
    async fn claim(&self, district: &str) -> Result<Option<roster_import::Model>, DbErr> {
        let txn = begin_write(&self.inner.db).await?;
        lock_key(&txn, "roster-import-claim", district).await?;
        let next = roster_import::Entity::find()
            .filter(roster_import::Column::DistrictId.eq(district))
            .filter(
                roster_import::Column::State
                    .is_in([ImportState::Queued.as_str(), ImportState::Running.as_str()]),
            )
            .order_by_asc(roster_import::Column::CreatedAt)
            .order_by_asc(roster_import::Column::Id)
            .one(&txn)
            .await?;
        let Some(next) = next else {
            txn.commit().await?;
            return Ok(None);
        };
        let now = db_time(Utc::now());
        let held_elsewhere = next
            .owner
            .as_deref()
            .is_some_and(|owner| owner != self.inner.owner)
            && next.lease_until.is_some_and(|until| until > now);
        if held_elsewhere {
            txn.commit().await?;
            return Ok(None);
        }
        let started_at = next.started_at.unwrap_or(now);
        let mut model: roster_import::ActiveModel = next.into();
        model.state = Set(ImportState::Running.as_str().to_owned());
        model.owner = Set(Some(self.inner.owner.clone()));
        model.lease_until = Set(Some(lease_end(now)));
        model.started_at = Set(Some(started_at));
        let claimed = model.update(&txn).await?;
        txn.commit().await?;
        Ok(Some(claimed))
    }

    /// An update that lets go of import `id` if this worker holds it: no owner, no lease.
    fn let_go(&self, id: &str) -> UpdateMany<roster_import::Entity> {
        roster_import::Entity::update_many()
            .col_expr(roster_import::Column::Owner, Expr::value(None::<String>))
            .col_expr(
                roster_import::Column::LeaseUntil,
                Expr::value(None::<DateTime<Utc>>),
            )
            .filter(roster_import::Column::Id.eq(id))
            .filter(roster_import::Column::Owner.eq(self.inner.owner.as_str()))
    }

    /// Leaves an interrupted import for the next claim, at once.
    async fn release(&self, id: &str) -> Result<(), DbErr> {
        write(&self.inner.db, self.let_go(id)).await?;
        Ok(())
    }

    /// Records the end of an import this worker holds; `false` if it no longer held it.
    async fn finish(
        &self,
        id: &str,
        state: ImportState,
        error: Option<&str>,
    ) -> Result<bool, DbErr> {
        let mut pause = Duration::from_millis(100);
        loop {
            let result = write(
                &self.inner.db,
                self.let_go(id)
                    .col_expr(roster_import::Column::State, Expr::value(state.as_str()))
                    .col_expr(roster_import::Column::Error, Expr::value(error))
                    .col_expr(
                        roster_import::Column::FinishedAt,
                        Expr::value(db_time(Utc::now())),
                    ),
            )
            .await;
            match result {
                Ok(changed) => return Ok(changed == 1),
                Err(error) if is_outage(&error) && pause < LEASE / 4 => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn run_import(
        &self,
        import: &roster_import::Model,
        shutdown: &CancellationToken,
    ) -> Ended {
        let district = match DistrictId::parse(&import.district_id) {
            Ok(district) => district,
            Err(error) => {
                return Ended::Failed(format!("district {:?}: {error}", import.district_id));
            }
        };
        let stamp = import.started_at.unwrap_or_else(|| db_time(Utc::now()));
        let mut file = match self.fetch(import).await {
            Ok(file) => file,
            Err(ended) => return ended,
        };
        match starts_as_zip(&mut file) {
            Ok(true) => {
                return self
                    .run_oneroster(import, &district, file, stamp, shutdown)
                    .await;
            }
            Ok(false) => {}
            Err(error) => {
                return Ended::Interrupted(format!(
                    "reading the local copy of the roster: {error}"
                ));
            }
        }
        let (sender, mut chunks) = mpsc::channel(2);
        let parser = tokio::task::spawn_blocking(move || parse_chunks(file, &sender));
        let mut progress = Progress::of(import);
        let mut ended = Ended::Completed;
        while let Some(chunk) = chunks.recv().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    ended = Ended::Failed(format!("roster CSV: {error}"));
                    break;
                }
            };
            if i64::from(chunk.last_row) <= progress.last_row {
                continue; // applied before this import was interrupted
            }
            match self
                .apply_with_retries(&import.id, &district, &chunk, stamp, progress, shutdown)
                .await
            {
                Ok(next) => progress = next,
                Err(end) => {
                    ended = end;
                    break;
                }
            }
        }
        // Stops the parser if it is still reading (its sends fail once `chunks` is dropped).
        drop(chunks);
        if let Err(error) = parser.await {
            return Ended::Interrupted(format!("the roster parser stopped: {error}"));
        }
        ended
    }

    /// A local copy of the spooled CSV, read from its start.
    async fn fetch(&self, import: &roster_import::Model) -> Result<std::fs::File, Ended> {
        let local = |error: std::io::Error| {
            Ended::Interrupted(format!("copying the roster to a local file: {error}"))
        };
        let file = tempfile::tempfile_in(&self.inner.spool).map_err(local)?;
        let mut file = tokio::fs::File::from_std(file);
        let size = u64::try_from(import.bytes).unwrap_or(0);
        let mut offset = 0;
        while offset < size {
            let len = FETCH_BYTES.min(size - offset);
            let bytes = self
                .inner
                .storage
                .get_range(&import.spool_key, offset, len)
                .await
                .map_err(|error| match error {
                    StorageError::NotFound { .. } => {
                        Ended::Failed("the uploaded roster is no longer stored".into())
                    }
                    other => Ended::Interrupted(format!("reading the uploaded roster: {other}")),
                })?;
            if bytes.is_empty() {
                return Err(Ended::Failed(
                    "the uploaded roster is shorter than it was".into(),
                ));
            }
            tokio::io::AsyncWriteExt::write_all(&mut file, &bytes)
                .await
                .map_err(local)?;
            offset += bytes.len() as u64;
        }
        let mut file = file.into_std().await;
        file.flush().map_err(local)?;
        file.rewind().map_err(local)?;
        Ok(file)
    }

    /// Applies a chunk, waiting out a busy or unavailable database for as long as the claim
    /// lasts; returns the progress after it.
    async fn apply_with_retries(
        &self,
        id: &str,
        district: &DistrictId,
        chunk: &Chunk,
        stamp: DateTime<Utc>,
        progress: Progress,
        shutdown: &CancellationToken,
    ) -> Result<Progress, Ended> {
        self.with_retries(id, chunk.records(), chunk.last_row, shutdown, || {
            self.apply(id, district, chunk, stamp, progress)
        })
        .await
    }

    /// Runs `attempt` (one short transaction of an import; `None` if this worker no longer holds
    /// the import), waiting out a busy or unavailable database for as long as the claim lasts.
    /// `rows` and `last_row` describe it for the log.
    async fn with_retries<T, F, Fut>(
        &self,
        id: &str,
        rows: usize,
        last_row: u32,
        shutdown: &CancellationToken,
        mut attempt: F,
    ) -> Result<T, Ended>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, DbErr>>,
    {
        let mut pause = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        loop {
            if shutdown.is_cancelled() {
                return Err(Ended::Interrupted("shutting down".into()));
            }
            let began = std::time::Instant::now();
            let applied = attempt().await;
            let took = began.elapsed();
            if took > Duration::from_secs(1) {
                // Every other writer of a SQLite database waited this long.
                tracing::warn!(import = %id, ?took, rows, "a roster chunk's transaction was slow");
            }
            match applied {
                Ok(Some(next)) => return Ok(next),
                Ok(None) => {
                    return Err(Ended::Interrupted(
                        "another worker took the import over".into(),
                    ));
                }
                Err(error) if is_outage(&error) && waited < LEASE / 2 => {
                    tracing::debug!(import = %id, %error, "database busy; applying the chunk again");
                    tokio::time::sleep(pause).await;
                    waited += pause;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(error) if is_outage(&error) => {
                    return Err(Ended::Interrupted(format!(
                        "the database is unavailable: {error}"
                    )));
                }
                Err(error) => {
                    tracing::error!(import = %id, %error, "applying a roster chunk");
                    return Err(Ended::Failed(format!(
                        "rows up to {last_row} could not be applied: {error}"
                    )));
                }
            }
        }
    }

    /// One chunk in one short transaction: the claim renewed, the people upserted, the row errors
    /// and the progress recorded. `None` if this worker no longer holds the import.
    async fn apply(
        &self,
        id: &str,
        district: &DistrictId,
        chunk: &Chunk,
        stamp: DateTime<Utc>,
        progress: Progress,
    ) -> Result<Option<Progress>, DbErr> {
        let txn = begin_write(&self.inner.db).await?;
        lock_key(&txn, "roster-import", district.as_str()).await?;
        // Taken first: on PostgreSQL the row lock also keeps a worker that took the import over
        // from writing the same rows at once.
        let held = roster_import::Entity::update_many()
            .col_expr(
                roster_import::Column::LeaseUntil,
                Expr::value(lease_end(db_time(Utc::now()))),
            )
            .filter(roster_import::Column::Id.eq(id))
            .filter(roster_import::Column::Owner.eq(self.inner.owner.as_str()))
            .filter(roster_import::Column::State.eq(ImportState::Running.as_str()))
            .filter(roster_import::Column::LastRow.eq(progress.last_row))
            .exec(&txn)
            .await?;
        if held.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(None);
        }
        let counts = upsert_chunk(&txn, district, chunk.rows.clone(), stamp).await?;
        let mut seq = progress.errors;
        for errors in chunk.errors.chunks(ERROR_INSERT) {
            let models = errors.iter().map(|e| {
                seq += 1;
                roster_import_error::ActiveModel {
                    import_id: Set(id.to_owned()),
                    seq: Set(seq),
                    row: Set(i64::from(e.row)),
                    field: Set(e.field.clone()),
                    reason: Set(e.reason.clone()),
                    file: Set(None),
                }
            });
            roster_import_error::Entity::insert_many(models.collect::<Vec<_>>())
                .exec_without_returning(&txn)
                .await?;
        }
        let next = progress.add(chunk, &counts);
        roster_import::Entity::update_many()
            .col_expr(roster_import::Column::LastRow, Expr::value(next.last_row))
            .col_expr(roster_import::Column::Created, Expr::value(next.created))
            .col_expr(roster_import::Column::Updated, Expr::value(next.updated))
            .col_expr(
                roster_import::Column::Unchanged,
                Expr::value(next.unchanged),
            )
            .col_expr(
                roster_import::Column::RejectedRows,
                Expr::value(next.rejected_rows),
            )
            .col_expr(roster_import::Column::Errors, Expr::value(next.errors))
            .col_expr(
                roster_import::Column::Deactivated,
                Expr::value(next.deactivated),
            )
            .col_expr(
                roster_import::Column::Reactivated,
                Expr::value(next.reactivated),
            )
            .filter(roster_import::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(Some(next))
    }
}

/// OneRoster zips (`sources::oneroster`): the same claim, chunks, retries and resumption as the
/// CSV, with `users.csv` rows as the progress.
impl Imports {
    async fn run_oneroster(
        &self,
        import: &roster_import::Model,
        district: &DistrictId,
        file: std::fs::File,
        stamp: DateTime<Utc>,
        shutdown: &CancellationToken,
    ) -> Ended {
        let map: IdentifierMap = match import.options.as_deref().map(serde_json::from_str) {
            None => IdentifierMap::default(),
            Some(Ok(map)) => map,
            Some(Err(error)) => {
                return Ended::Failed(format!("the import's identifier mapping: {error}"));
            }
        };
        let (sender, mut pieces) = mpsc::channel::<Result<Piece, OneRosterError>>(2);
        let parser = tokio::task::spawn_blocking(move || {
            let read = Package::open(BufReader::new(file)).and_then(|mut package| {
                package.read(&map, CHUNK_ROWS, |piece| {
                    sender.blocking_send(Ok(piece)).is_ok()
                })
            });
            if let Err(error) = read {
                let _ = sender.blocking_send(Err(error));
            }
        });
        let id = import.id.as_str();
        let mut progress = Progress::of(import);
        let mut ended = Ended::Completed;
        let mut known: HashMap<String, school::Model> = HashMap::new();
        let mut listing = people::Listing::Changes;
        while let Some(piece) = pieces.recv().await {
            let step = match piece {
                Err(error) => {
                    ended = Ended::Failed(format!("OneRoster: {error}"));
                    break;
                }
                Ok(Piece::Prelude(prelude)) => {
                    if prelude.manifest.users == Mode::Bulk {
                        listing = people::Listing::Complete;
                    }
                    self.with_retries(id, prelude.schools.len(), 1, shutdown, || {
                        self.apply_prelude(id, district, &prelude, stamp, progress)
                    })
                    .await
                    .map(|(next, schools)| {
                        known = schools;
                        next
                    })
                }
                Ok(Piece::Users(chunk)) => {
                    if i64::from(chunk.last_row) <= progress.last_row {
                        continue; // applied before this import was interrupted
                    }
                    self.with_retries(id, chunk.records(), chunk.last_row, shutdown, || {
                        self.apply_users(id, district, &chunk, &known, listing, stamp, progress)
                    })
                    .await
                }
            };
            match step {
                Ok(next) => progress = next,
                Err(end) => {
                    ended = end;
                    break;
                }
            }
        }
        drop(pieces);
        if let Err(error) = parser.await {
            return Ended::Interrupted(format!("the OneRoster parser stopped: {error}"));
        }
        if matches!(ended, Ended::Completed) && listing == people::Listing::Complete {
            let last_row = u32::try_from(progress.last_row).unwrap_or(u32::MAX);
            if let Err(end) = self
                .with_retries(id, 0, last_row, shutdown, || {
                    self.apply_bulk_end(id, district, stamp, progress)
                })
                .await
            {
                return end;
            }
        }
        ended
    }

    /// Renews the claim inside `txn`: `false` if this worker no longer holds the import, or it
    /// has moved past `last_row` (on PostgreSQL the row lock also keeps a worker that took the
    /// import over from writing the same rows at once).
    async fn hold(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        id: &str,
        last_row: i64,
    ) -> Result<bool, DbErr> {
        let held = roster_import::Entity::update_many()
            .col_expr(
                roster_import::Column::LeaseUntil,
                Expr::value(lease_end(db_time(Utc::now()))),
            )
            .filter(roster_import::Column::Id.eq(id))
            .filter(roster_import::Column::Owner.eq(self.inner.owner.as_str()))
            .filter(roster_import::Column::State.eq(ImportState::Running.as_str()))
            .filter(roster_import::Column::LastRow.eq(last_row))
            .exec(txn)
            .await?;
        Ok(held.rows_affected == 1)
    }

    /// The schools of `orgs.csv` (every run: it is idempotent, and the people need them), and the
    /// first time only, the rejected rows of `orgs.csv` and `roles.csv`.
    async fn apply_prelude(
        &self,
        id: &str,
        district: &DistrictId,
        prelude: &Prelude,
        stamp: DateTime<Utc>,
        progress: Progress,
    ) -> Result<Option<(Progress, HashMap<String, school::Model>)>, DbErr> {
        let txn = begin_write(&self.inner.db).await?;
        lock_key(&txn, "roster-import", district.as_str()).await?;
        if !self.hold(&txn, id, progress.last_row).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        let (known, _) = schools::apply(
            &txn,
            district,
            RosterSource::OneRoster,
            &prelude.schools,
            stamp,
        )
        .await?;
        let mut next = progress;
        let first_run = progress.last_row <= 1 && progress.errors == 0;
        if first_run && !prelude.errors.is_empty() {
            insert_file_errors(&txn, id, progress.errors, &prelude.errors).await?;
            next.rejected_rows += count(prelude.rejected_rows);
            next.errors += count(prelude.errors.len() as u64);
            record(&txn, id, &next).await?;
        }
        txn.commit().await?;
        Ok(Some((next, known)))
    }

    /// A chunk of `users.csv` in one short transaction, as [`Imports::apply`] for the CSV.
    #[allow(clippy::too_many_arguments)]
    async fn apply_users(
        &self,
        id: &str,
        district: &DistrictId,
        chunk: &UsersChunk,
        known: &HashMap<String, school::Model>,
        listing: people::Listing,
        stamp: DateTime<Utc>,
        progress: Progress,
    ) -> Result<Option<Progress>, DbErr> {
        let txn = begin_write(&self.inner.db).await?;
        lock_key(&txn, "roster-import", district.as_str()).await?;
        if !self.hold(&txn, id, progress.last_row).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        let source = RosterSource::OneRoster;
        let (listed, mut errors) = oneroster::with_known_roles(&txn, district, chunk).await?;
        let unknown_roles = errors.len() as u64;
        let counts = people::apply(&txn, district, source, listed, known, listing, stamp).await?;
        let deleted = people::deactivate(&txn, district, source, &chunk.deleted, stamp).await?;
        if listing == people::Listing::Complete {
            oneroster::keep_seen(&txn, district, &chunk.rejected_ids, stamp).await?;
        }
        errors.extend(chunk.errors.iter().cloned());
        errors.sort_by_key(|e| e.row);
        insert_file_errors(&txn, id, progress.errors, &errors).await?;
        let next = Progress {
            last_row: i64::from(chunk.last_row),
            created: progress.created + count(counts.created),
            updated: progress.updated + count(counts.updated),
            unchanged: progress.unchanged + count(counts.unchanged),
            rejected_rows: progress.rejected_rows + count(chunk.rejected_rows + unknown_roles),
            errors: progress.errors + count(errors.len() as u64),
            deactivated: progress.deactivated + count(counts.deactivated) + count(deleted),
            reactivated: progress.reactivated + count(counts.reactivated),
            ignored: progress.ignored + count(chunk.ignored),
        };
        record(&txn, id, &next).await?;
        txn.commit().await?;
        Ok(Some(next))
    }

    /// After a bulk `users.csv`: the source's people it did not list are deactivated. Run again
    /// by a resumed import, it finds nobody left to deactivate.
    async fn apply_bulk_end(
        &self,
        id: &str,
        district: &DistrictId,
        stamp: DateTime<Utc>,
        progress: Progress,
    ) -> Result<Option<Progress>, DbErr> {
        let txn = begin_write(&self.inner.db).await?;
        lock_key(&txn, "roster-import", district.as_str()).await?;
        if !self.hold(&txn, id, progress.last_row).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        let gone =
            people::deactivate_unseen(&txn, district, RosterSource::OneRoster, stamp).await?;
        let mut next = progress;
        next.deactivated += count(gone);
        record(&txn, id, &next).await?;
        txn.commit().await?;
        Ok(Some(next))
    }
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Whether the file starts as a zip does; it is left at its start.
fn starts_as_zip(file: &mut std::fs::File) -> std::io::Result<bool> {
    let mut head = Vec::with_capacity(4);
    Read::by_ref(file).take(4).read_to_end(&mut head)?;
    file.rewind()?;
    Ok(oneroster::is_zip(&head))
}

/// Row errors naming their file, numbered after the `written` already in the log.
async fn insert_file_errors(
    txn: &sea_orm::DatabaseTransaction,
    id: &str,
    written: i64,
    errors: &[FileError],
) -> Result<(), DbErr> {
    let mut seq = written;
    for errors in errors.chunks(ERROR_INSERT) {
        let models = errors.iter().map(|e| {
            seq += 1;
            roster_import_error::ActiveModel {
                import_id: Set(id.to_owned()),
                seq: Set(seq),
                row: Set(i64::from(e.row)),
                field: Set(e.field.clone()),
                reason: Set(e.reason.clone()),
                file: Set(Some(e.file.to_owned())),
            }
        });
        roster_import_error::Entity::insert_many(models.collect::<Vec<_>>())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Writes a OneRoster import's progress.
async fn record(
    txn: &sea_orm::DatabaseTransaction,
    id: &str,
    next: &Progress,
) -> Result<(), DbErr> {
    use roster_import::Column as C;
    roster_import::Entity::update_many()
        .col_expr(C::LastRow, Expr::value(next.last_row))
        .col_expr(C::Created, Expr::value(next.created))
        .col_expr(C::Updated, Expr::value(next.updated))
        .col_expr(C::Unchanged, Expr::value(next.unchanged))
        .col_expr(C::RejectedRows, Expr::value(next.rejected_rows))
        .col_expr(C::Errors, Expr::value(next.errors))
        .col_expr(C::Deactivated, Expr::value(next.deactivated))
        .col_expr(C::Reactivated, Expr::value(next.reactivated))
        .col_expr(C::Ignored, Expr::value(next.ignored))
        .filter(C::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Reads the roster in `file` and sends it on in chunks; a header or read error ends it.
fn parse_chunks(file: std::fs::File, sender: &mpsc::Sender<Result<Chunk, RosterCsvError>>) {
    let mut reader = match RosterReader::new(BufReader::new(file)) {
        Ok(reader) => reader,
        Err(error) => {
            let _ = sender.blocking_send(Err(error));
            return;
        }
    };
    let mut chunk = Chunk::default();
    loop {
        match reader.next_record() {
            Ok(Some((row, record))) => {
                chunk.last_row = row;
                match record {
                    Record::Row(row) => chunk.rows.push(*row),
                    Record::Rejected(errors) => {
                        chunk.rejected_rows += 1;
                        chunk.errors.extend(errors);
                    }
                    Record::Blank => {}
                }
                if chunk.records() >= CHUNK_ROWS
                    && sender
                        .blocking_send(Ok(std::mem::take(&mut chunk)))
                        .is_err()
                {
                    return;
                }
            }
            Ok(None) => {
                if chunk.last_row > 0 {
                    let _ = sender.blocking_send(Ok(chunk));
                }
                return;
            }
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_uuids() {
        let id = RosterImportId::new();
        assert_eq!(RosterImportId::parse(id.as_str()).ok(), Some(id.clone()));
        for bad in [
            "",
            "x",
            "0196F1C2-7D3A-7C4E-8A1B-2C3D4E5F6A7B",
            "0196f1c27d3a7c4e8a1b2c3d4e5f6a7b",
        ] {
            assert!(RosterImportId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunks_keep_rows_errors_and_row_numbers() -> anyhow::Result<()> {
        let mut csv = String::from("role,sis_id,first_name,last_name\n");
        for n in 0..2500 {
            if n % 1000 == 7 {
                csv.push_str(&format!("teacher,S{n},A,B\n"));
            } else {
                csv.push_str(&format!("student,S{n},A,B\n"));
            }
        }
        csv.push_str("\n,,,\n");
        let mut file = tempfile::tempfile()?;
        file.write_all(csv.as_bytes())?;
        file.rewind()?;
        let (sender, mut receiver) = mpsc::channel(8);
        parse_chunks(file, &sender);
        drop(sender);
        let mut chunks = Vec::new();
        while let Ok(chunk) = receiver.try_recv() {
            chunks.push(chunk.map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        let summary: Vec<(usize, u64, u32)> = chunks
            .iter()
            .map(|c| (c.rows.len(), c.rejected_rows, c.last_row))
            .collect();
        assert_eq!(
            summary,
            vec![(999, 1, 1001), (999, 1, 2001), (499, 1, 2502)]
        );
        let rows: Vec<u32> = chunks
            .iter()
            .flat_map(|c| c.errors.iter().map(|e| e.row))
            .collect();
        assert_eq!(rows, vec![9, 1009, 2009]);
        Ok(())
    }
}
