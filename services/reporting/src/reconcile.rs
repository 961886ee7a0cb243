//! The database is the truth, the bus is the transport: every file must end in an outcome even
//! if the bus lost its event. Open jobs that have not moved for `PICTUREDAY_STALL_AFTER_SECS`
//! are looked at: files with no outcome, while nothing is in flight in the pipeline, are
//! published again by ingest (every stage is idempotent, so a file that was only slow is handled
//! once more, not twice over); a job older than `PICTUREDAY_JOB_DEADLINE_SECS` is failed, and
//! its files without an outcome are rejected with the reason it waited.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pictureday_contract::DistrictId;
use pictureday_contract::events::{JobState, ReplayRequest, ReplayResponse, SCHEMA_VERSION};
use pictureday_contract::subjects::{INGEST_REPLAY_SUBJECT, PIPELINE_STREAM, consumers};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio_util::sync::CancellationToken;

use crate::Reporting;
use crate::db::file_outcome::{self, Outcome};
use crate::db::job_status;
use crate::projection::{lock_job, new_file, settle_state, status_of, store_files, store_jobs};

/// Jobs looked at per round, the longest stalled first.
const JOBS_PER_ROUND: u64 = 100;
/// Files published again per job per round.
const FILES_PER_REPLAY: usize = 10_000;
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn run(reporting: Reporting, shutdown: CancellationToken) -> anyhow::Result<()> {
    let every =
        (reporting.settings.stall_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(error) = round(&reporting).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "reconciling jobs failed; trying again"
            );
        }
    }
}

/// Jobs that are neither finished nor failed, the least recently changed first.
pub(crate) async fn open_jobs(
    db: &DatabaseConnection,
    limit: u64,
) -> Result<Vec<job_status::Model>, DbErr> {
    open_jobs_changed_before(db, None, limit).await
}

async fn open_jobs_changed_before(
    db: &DatabaseConnection,
    before: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<job_status::Model>, DbErr> {
    let mut query = job_status::Entity::find()
        .filter(job_status::Column::State.is_in([JobState::Queued, JobState::Processing]));
    if let Some(before) = before {
        query = query.filter(job_status::Column::UpdatedAt.lt(before));
    }
    query
        .order_by_asc(job_status::Column::UpdatedAt)
        .limit(limit)
        .all(db)
        .await
}

async fn round(reporting: &Reporting) -> anyhow::Result<()> {
    let settings = &reporting.settings;
    let now = Utc::now();
    let stall = chrono::Duration::from_std(settings.stall_after)?;
    let deadline = chrono::Duration::from_std(settings.job_deadline)?;
    let stalled =
        open_jobs_changed_before(&reporting.db, Some(now - stall), JOBS_PER_ROUND).await?;
    if stalled.is_empty() {
        return Ok(());
    }
    // While a dependency is down the pipeline is waiting, not losing: nothing to publish again.
    let waiting = reporting.waiting.describe();
    let busy = waiting.is_some() || pipeline_busy(reporting).await;
    for job in stalled {
        if now - job.created_at > deadline {
            fail(reporting, &job.job_id, waiting.as_deref()).await?;
        } else if !busy || now - job.updated_at > stall * 4 {
            replay(reporting, &job, now - stall).await?;
        }
    }
    Ok(())
}

/// Whether any pipeline consumer has messages waiting or in hand: a stalled file may then
/// still be on its way, behind other work.
async fn pipeline_busy(reporting: &Reporting) -> bool {
    let Ok(stream) = reporting.bus.js.get_stream(PIPELINE_STREAM).await else {
        return true;
    };
    for name in [
        consumers::MATCHER,
        consumers::IMAGE_PROCESSOR,
        consumers::ROSTER,
        consumers::REPORTING,
    ] {
        let consumer: Result<async_nats::jetstream::consumer::PullConsumer, _> =
            stream.get_consumer(name).await;
        let Ok(mut consumer) = consumer else {
            return true;
        };
        match consumer.info().await {
            Ok(info) if info.num_pending == 0 && info.num_ack_pending == 0 => {}
            _ => return true,
        }
    }
    false
}

/// Asks ingest to publish the job's stalled files again, and records that it did.
async fn replay(
    reporting: &Reporting,
    job: &job_status::Model,
    stalled_before: DateTime<Utc>,
) -> anyhow::Result<()> {
    let files = file_outcome::Entity::find()
        .filter(file_outcome::Column::JobId.eq(job.job_id.as_str()))
        .all(&reporting.db)
        .await?;
    let known: BTreeSet<i32> = files.iter().map(|f| f.seq).collect();
    let mut seqs: Vec<u32> = files
        .iter()
        .filter(|f| f.outcome == Outcome::Pending && f.updated_at < stalled_before)
        .filter_map(|f| u32::try_from(f.seq).ok())
        .collect();
    if job.created_seen {
        // Files of which not one event arrived.
        seqs.extend(
            (0..job.files)
                .filter(|seq| !known.contains(seq))
                .filter_map(|seq| u32::try_from(seq).ok()),
        );
    }
    seqs.sort_unstable();
    seqs.truncate(FILES_PER_REPLAY);
    if seqs.is_empty() && job.created_seen {
        return Ok(());
    }
    let district = DistrictId::parse(&job.district_id)?;
    let request = ReplayRequest {
        v: SCHEMA_VERSION,
        district: district.clone(),
        job_id: job.job_id.as_str().into(),
        seqs: seqs.clone(),
        job_created: !job.created_seen,
    };
    let reply = tokio::time::timeout(
        REPLAY_TIMEOUT,
        reporting
            .bus
            .nats
            .request(INGEST_REPLAY_SUBJECT, serde_json::to_vec(&request)?.into()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("ingest did not answer the replay within {REPLAY_TIMEOUT:?}"))??;
    let response: ReplayResponse = serde_json::from_slice(&reply.payload)?;
    tracing::warn!(
        %district,
        job = %job.job_id,
        files = response.replayed,
        job_created = !job.created_seen,
        "files had no outcome and nothing in flight; published them again"
    );
    pictureday_platform::metrics::metrics()
        .replayed
        .add(u64::from(response.replayed), &[]);

    let now = Utc::now();
    let txn = pictureday_platform::db::begin_write(&reporting.db).await?;
    lock_job(&txn, &job.job_id).await?;
    let Some(mut current) = job_status::Entity::find_by_id(job.job_id.clone())
        .one(&txn)
        .await?
    else {
        return Ok(());
    };
    current.replayed = current
        .replayed
        .saturating_add(i32::try_from(response.replayed).unwrap_or(i32::MAX));
    current.updated_at = now;
    let mut rows = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let Ok(seq_i32) = i32::try_from(seq) else {
            continue;
        };
        let row = file_outcome::Entity::find_by_id((job.job_id.clone(), seq_i32))
            .one(&txn)
            .await?;
        let mut row = row.unwrap_or_else(|| placeholder_file(job, &district, seq, now));
        if row.outcome != Outcome::Pending {
            continue;
        }
        row.replays = row.replays.saturating_add(1);
        row.updated_at = now;
        rows.push(row);
    }
    store_files(&txn, rows.iter()).await?;
    store_jobs(&txn, std::iter::once(&current)).await?;
    txn.commit().await?;
    Ok(())
}

/// A row for a file no event of which has arrived yet; its first event fills in its name.
fn placeholder_file(
    job: &job_status::Model,
    district: &DistrictId,
    seq: u32,
    now: DateTime<Utc>,
) -> file_outcome::Model {
    new_file(
        &pictureday_contract::events::FileRef {
            district: district.clone(),
            job_id: job.job_id.as_str().into(),
            seq,
            file_name: String::new(),
            replay: 0,
        },
        now,
    )
}

/// Fails a job past its deadline: every file without an outcome is rejected with the reason.
async fn fail(reporting: &Reporting, job_id: &str, waiting: Option<&str>) -> anyhow::Result<()> {
    let deadline = describe(reporting.settings.job_deadline);
    let reason = match waiting {
        Some(waiting) => format!("the job did not finish within {deadline}: {waiting}"),
        None => format!("the job did not finish within {deadline}"),
    };
    let now = Utc::now();
    let txn = pictureday_platform::db::begin_write(&reporting.db).await?;
    lock_job(&txn, job_id).await?;
    let Some(mut job) = job_status::Entity::find_by_id(job_id.to_owned())
        .one(&txn)
        .await?
    else {
        return Ok(());
    };
    if job.state.is_terminal() {
        return Ok(());
    }
    let district = DistrictId::parse(&job.district_id)?;
    let files = file_outcome::Entity::find()
        .filter(file_outcome::Column::JobId.eq(job_id))
        .all(&txn)
        .await?;
    let known: BTreeSet<i32> = files.iter().map(|f| f.seq).collect();
    let mut open: Vec<file_outcome::Model> = files
        .into_iter()
        .filter(|f| f.outcome == Outcome::Pending)
        .collect();
    for seq in (0..job.files).filter(|seq| !known.contains(seq)) {
        if let Ok(seq) = u32::try_from(seq) {
            let mut row = placeholder_file(&job, &district, seq, now);
            row.file_name = format!("file {} of the upload", seq + 1);
            open.push(row);
        }
    }
    let file_reason = format!("no outcome: {reason}; upload it again");
    for file in &mut open {
        file.outcome = Outcome::Rejected;
        file.rejected = true;
        file.reason = Some(file_reason.clone());
        file.updated_at = now;
    }
    job.rejected = job
        .rejected
        .saturating_add(i32::try_from(open.len()).unwrap_or(i32::MAX));
    job.failure = Some(reason.clone());
    settle_state(&mut job, now);
    store_files(&txn, open.iter()).await?;
    store_jobs(&txn, std::iter::once(&job)).await?;
    txn.commit().await?;
    tracing::error!(%district, job = job_id, files = open.len(), reason, "job failed");
    reporting
        .statuses
        .offer(status_of(&job).into_iter().collect())
        .await;
    Ok(())
}

/// A duration as a person says it: `24 hours`, `90 minutes`, `45 seconds`.
fn describe(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s % 3600 == 0 && s >= 3600 => format!("{} hours", s / 3600),
        s if s % 60 == 0 && s >= 60 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(describe(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(describe(Duration::from_secs(5_400)), "90 minutes");
        assert_eq!(describe(Duration::from_secs(45)), "45 seconds");
    }
}
