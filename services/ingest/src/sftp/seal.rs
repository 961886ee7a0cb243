//! Drops made jobs. A drop becomes one job, recorded and published as an HTTP upload is, once
//! no session of its account is open on any replica and no file has arrived for the quiet
//! period (or no file for a long while though a session stays open). A drop of 3,000 files is
//! one job with one log.
//!
//! Every replica with an SFTP server looks for drops that are due; one claims a drop (a
//! conditional update: from then on no file joins it), reads its files, and in one transaction
//! records the job and deletes the drop. A replica stopped mid-way leaves a claim that another
//! takes over once it is old, and an outage (database, storage) gives the claim back and tries
//! again: the files wait, and are never turned away or lost.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pictureday_contract::events::{ImportMode, ImportOptions, ReplacePolicy, Source};
use pictureday_contract::{DistrictId, JobId, keys};
use pictureday_platform::db::begin_write;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::drops::{Drops, HeldKind, final_name, folder_text, refusal};
use super::paths::{Folder, is_temporary};
use crate::archive::MAX_MAPPING_BYTES;
use crate::db::{sftp_drop, sftp_drop_file};
use crate::jobs::{self, NewJob};
use crate::upload::Parts;

/// How often roster CSVs roster did not take at `close` are offered again.
const KEPT_ROSTERS_EVERY: Duration = Duration::from_secs(5);

/// A claim older than this belongs to a replica that stopped while making the job.
const CLAIM_EXPIRES: Duration = Duration::from_secs(180);

/// A drop becomes a job at least this often even while a session stays open, so a client that
/// keeps one connection open all day still sees its files become jobs.
fn longest_open(quiet: Duration) -> Duration {
    (quiet * 10).max(Duration::from_secs(600))
}

fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - since).to_std().unwrap_or_default()
}

/// What became of a drop that was due.
enum Sealed {
    Job {
        files: usize,
    },
    /// Nothing in it could be a job (no photos, or only temporary names).
    Nothing,
}

/// Why a drop could not be made a job now.
#[derive(Debug, thiserror::Error)]
enum SealError {
    /// The database or storage failed: try again.
    #[error("{0}")]
    Outage(String),
    /// The drop cannot become a job at all (two mappings, say).
    #[error("{0}")]
    Refused(String),
}

impl From<sea_orm::DbErr> for SealError {
    fn from(error: sea_orm::DbErr) -> Self {
        SealError::Outage(format!("the database failed: {error}"))
    }
}

impl From<pictureday_platform::storage::StorageError> for SealError {
    fn from(error: pictureday_platform::storage::StorageError) -> Self {
        SealError::Outage(format!("storage failed: {error}"))
    }
}

impl Drops {
    /// Makes drops jobs as they fall due, and hands roster the roster CSVs it did not take
    /// when they were closed, until `shutdown`. Drops open then stay in the
    /// database and become jobs once ingest (this or another replica) runs again.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let tick = (self.quiet / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut roster_asked = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(tick) => {}
            }
            if let Err(error) = self.seal_due().await {
                tracing::warn!(%error, "SFTP drops could not be looked at; trying again");
            }
            // Roster CSVs roster did not take when they were closed.
            if roster_asked.elapsed() >= KEPT_ROSTERS_EVERY {
                roster_asked = tokio::time::Instant::now();
                if let Err(error) = super::roster::hand_over_kept(&self.ingest).await {
                    tracing::warn!(%error, "kept SFTP roster CSVs could not be looked at; trying again");
                }
            }
        }
    }

    async fn seal_due(&self) -> Result<(), sea_orm::DbErr> {
        let now = Utc::now();
        let open_here = self.open_accounts();
        if !open_here.is_empty() {
            pictureday_platform::db::write(
                &self.ingest.db,
                sftp_drop::Entity::update_many()
                    .col_expr(sftp_drop::Column::SessionSeenAt, Expr::value(now))
                    .filter(sftp_drop::Column::Username.is_in(open_here))
                    .filter(sftp_drop::Column::SealingBy.is_null()),
            )
            .await?;
        }
        let stale = now - chrono::Duration::from_std(CLAIM_EXPIRES).unwrap_or_default();
        let drops = sftp_drop::Entity::find()
            .filter(
                Condition::any()
                    .add(sftp_drop::Column::SealingBy.is_null())
                    .add(sftp_drop::Column::SealingAt.lt(stale)),
            )
            .order_by_asc(sftp_drop::Column::OpenedAt)
            .all(&self.ingest.db)
            .await?;
        for drop in drops {
            let quiet_since = drop.last_file_at.max(drop.session_seen_at);
            let due = drop.sealing_by.is_some()
                || age(drop.last_file_at, now) >= longest_open(self.quiet)
                || age(quiet_since, now) >= self.quiet;
            if due {
                self.seal_one(drop, stale).await?;
            }
        }
        Ok(())
    }

    /// Claims `drop` and makes it a job; another replica may have been first.
    async fn seal_one(
        &self,
        drop: sftp_drop::Model,
        stale: DateTime<Utc>,
    ) -> Result<(), sea_orm::DbErr> {
        let claim = super::drops::random_text();
        let claimed = pictureday_platform::db::write(
            &self.ingest.db,
            sftp_drop::Entity::update_many()
                .col_expr(sftp_drop::Column::SealingBy, Expr::value(claim.clone()))
                .col_expr(sftp_drop::Column::SealingAt, Expr::value(Utc::now()))
                .filter(sftp_drop::Column::JobId.eq(drop.job_id.as_str()))
                .filter(
                    Condition::any()
                        .add(sftp_drop::Column::SealingBy.is_null())
                        .add(sftp_drop::Column::SealingAt.lt(stale)),
                ),
        )
        .await?;
        if claimed == 0 {
            return Ok(());
        }
        let district = match DistrictId::parse(&drop.district_id) {
            Ok(district) => district,
            Err(error) => {
                tracing::error!(%error, job = %drop.job_id, "an SFTP drop names no district");
                return Ok(());
            }
        };
        let job_id = JobId::from(drop.job_id.clone());
        let span = tracing::info_span!("ingest.sftp_drop", %district, job = %job_id, replica = %self.replica);
        match self.seal(&district, &job_id, &claim).instrument(span).await {
            Ok(Sealed::Job { files }) => {
                tracing::info!(%district, job = %job_id, files, account = %drop.username, "SFTP drop became a job")
            }
            Ok(Sealed::Nothing) => {
                tracing::info!(%district, job = %job_id, account = %drop.username, "an SFTP drop without photos made no job")
            }
            Err(SealError::Outage(error)) => {
                tracing::warn!(%district, job = %job_id, %error, "an SFTP drop waits: it becomes a job once this passes");
                // Give the claim back so the next look tries again.
                pictureday_platform::db::write(
                    &self.ingest.db,
                    sftp_drop::Entity::update_many()
                        .col_expr(
                            sftp_drop::Column::SealingBy,
                            Expr::value(Option::<String>::None),
                        )
                        .col_expr(
                            sftp_drop::Column::SealingAt,
                            Expr::value(Option::<DateTime<Utc>>::None),
                        )
                        .filter(sftp_drop::Column::JobId.eq(drop.job_id.as_str()))
                        .filter(sftp_drop::Column::SealingBy.eq(claim.as_str())),
                )
                .await?;
            }
            Err(SealError::Refused(error)) => {
                tracing::error!(%district, job = %job_id, %error, account = %drop.username, "an SFTP drop could not be made a job");
                self.discard(&district, &job_id, &claim).await?;
            }
        }
        Ok(())
    }

    /// Makes the claimed drop `job_id` one job, as an HTTP upload is made one.
    async fn seal(
        &self,
        district: &DistrictId,
        job_id: &JobId,
        claim: &str,
    ) -> Result<Sealed, SealError> {
        let files = sftp_drop_file::Entity::find()
            .filter(sftp_drop_file::Column::JobId.eq(job_id.as_str()))
            .order_by_asc(sftp_drop_file::Column::AddedAt)
            .order_by_asc(sftp_drop_file::Column::Key)
            .all(&self.ingest.db)
            .await?;
        let spool = tempfile::Builder::new()
            .prefix("sftp-seal-")
            .tempdir_in(&self.ingest.spool)
            .map_err(|e| SealError::Outage(format!("spool: {e}")))?;
        let mut parts = Parts::default();
        let mut left_out = Vec::new();
        let mut mappings = Vec::new();
        for file in files {
            let kind = HeldKind::parse(&file.kind);
            let size = u64::try_from(file.size).unwrap_or(0);
            if is_temporary(&file.name) || file.folder != folder_text(Folder::Photos) {
                left_out.push(file);
                continue;
            }
            match kind {
                Some(HeldKind::Photo) => parts.add_file(
                    file.name,
                    Source::Object {
                        key: file.key,
                        size,
                    },
                ),
                Some(HeldKind::Archive) => {
                    let path = spool.path().join(super::drops::random_text());
                    self.copy_back(&file.key, size, &path).await?;
                    let mut listed = Parts::default();
                    listed
                        .add_archive(final_name(&file.name), &path, &file.key)
                        .await
                        .map_err(|e| SealError::Refused(refusal(e)))?;
                    parts.absorb(listed);
                    let _ = tokio::fs::remove_file(&path).await;
                }
                Some(HeldKind::Mapping) => {
                    let bytes = self.ingest.storage.get(&file.key).await?;
                    if bytes.len() as u64 > MAX_MAPPING_BYTES {
                        return Err(SealError::Refused(format!(
                            "{}: a mapping is at most {MAX_MAPPING_BYTES} bytes",
                            file.name
                        )));
                    }
                    mappings.push((file.name, bytes.to_vec()));
                }
                Some(HeldKind::Roster) | None => left_out.push(file),
            }
        }
        let mut warnings = Vec::new();
        if !left_out.is_empty() {
            let names: Vec<&str> = left_out.iter().map(|f| f.name.as_str()).collect();
            tracing::info!(%district, job = %job_id, files = ?names, "SFTP files left under temporary names were not imported");
            warnings.push(format!(
                "{} file(s) still under a temporary name were left out: {}",
                names.len(),
                names.join(", ")
            ));
        }
        // The newest mapping dropped is the one used, as a file of the same name replaces.
        if let Some(mapping) = mappings.pop() {
            for (older, _) in &mappings {
                warnings.push(format!("{older} was not used: {} came after it", mapping.0));
            }
            parts.mapping = Some(mapping);
        }
        if parts.photo_count() == 0 {
            self.discard(district, job_id, claim).await?;
            return Ok(Sealed::Nothing);
        }
        // Files that cannot be one import are still a job: each rejected, saying why.
        let mut received = match parts.clone().finish() {
            Ok(received) => received,
            Err(error) => parts.reject_all(&refusal(error)),
        };
        received.warnings.splice(0..0, warnings);
        let new = NewJob {
            id: job_id.clone(),
            district: district.clone(),
            created_at: Utc::now(),
            has_mapping: received.has_mapping,
            index: received.index,
            options: ImportOptions {
                mode: ImportMode::Apply,
                replace: ReplacePolicy::Always,
            },
            files: received.files,
            warnings: received.warnings,
        };
        // The job and the end of the drop are one write: a drop is a job exactly once.
        let txn = begin_write(&self.ingest.db).await?;
        let ended = sftp_drop::Entity::delete_many()
            .filter(sftp_drop::Column::JobId.eq(job_id.as_str()))
            .filter(sftp_drop::Column::SealingBy.eq(claim))
            .exec(&txn)
            .await?;
        if ended.rows_affected == 0 {
            // Another replica took the claim over (this one was too slow): it makes the job.
            return Ok(Sealed::Nothing);
        }
        sftp_drop_file::Entity::delete_many()
            .filter(sftp_drop_file::Column::JobId.eq(job_id.as_str()))
            .exec(&txn)
            .await?;
        jobs::record_in(&txn, &new)
            .await
            .map_err(|e| SealError::Outage(format!("recording the job failed: {e:#}")))?;
        txn.commit().await?;
        let left_keys: Vec<String> = left_out.into_iter().map(|f| f.key).collect();
        self.forget(&left_keys).await;
        let files = new.files.len();
        // The job is durable; its events go out now (and again from the outbox if this
        // process stops first).
        if let Err(error) = jobs::publish(&self.ingest, &new).await {
            tracing::warn!(error = format!("{error:#}"), job = %new.id, "publishing job failed; the outbox will retry");
        }
        Ok(Sealed::Job { files })
    }

    /// Copies a stored object to `path`, in pieces.
    async fn copy_back(&self, key: &str, size: u64, path: &Path) -> Result<(), SealError> {
        let spool = |e: std::io::Error| SealError::Outage(format!("spool: {e}"));
        let mut out = tokio::fs::File::create(path).await.map_err(spool)?;
        crate::object_copy::append_object(&self.ingest.storage, key, size, &mut out)
            .await
            .map_err(|e| SealError::Outage(e.to_string()))?;
        out.flush().await.map_err(spool)
    }

    /// Ends a claimed drop that makes no job, and removes what it stored.
    async fn discard(
        &self,
        district: &DistrictId,
        job_id: &JobId,
        claim: &str,
    ) -> Result<(), sea_orm::DbErr> {
        let files = sftp_drop_file::Entity::find()
            .filter(sftp_drop_file::Column::JobId.eq(job_id.as_str()))
            .all(&self.ingest.db)
            .await?;
        let txn = begin_write(&self.ingest.db).await?;
        let ended = sftp_drop::Entity::delete_many()
            .filter(sftp_drop::Column::JobId.eq(job_id.as_str()))
            .filter(sftp_drop::Column::SealingBy.eq(claim))
            .exec(&txn)
            .await?;
        if ended.rows_affected == 0 {
            return Ok(());
        }
        sftp_drop_file::Entity::delete_many()
            .filter(sftp_drop_file::Column::JobId.eq(job_id.as_str()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        // Roster CSVs under temporary names are stored outside the job's prefix.
        let keys: Vec<String> = files.into_iter().map(|f| f.key).collect();
        self.forget(&keys).await;
        let prefix = keys::upload_prefix(district, job_id);
        if let Err(error) = self
            .ingest
            .storage
            .delete_prefix(prefix.trim_end_matches('/'))
            .await
        {
            tracing::warn!(%error, job = %job_id, "removing an SFTP drop's objects");
        }
        Ok(())
    }
}
