//! Turns pipeline events into the job projection: one row per file with its outcome, and per-job
//! counts and state. Each stage sets its own flag once, so redelivered and out-of-order events
//! change nothing twice.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use pictureday_contract::DistrictId;
use pictureday_contract::events::{
    self, ApplyOutcome, DecodeError, FileRef, ImportMode, ImportOptions, JobCounts, JobCreated,
    JobState, JobStatus, PhotoApplied, PhotoIngested, PhotoMatched, PhotoProcessed, PhotoRejected,
    PhotoUnmatched, ReplacePolicy, SCHEMA_VERSION,
};
use pictureday_contract::subjects::Kind;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter,
};

use crate::db::file_outcome::{self, Outcome};
use crate::db::job_status;

/// One decoded pipeline event.
#[derive(Debug, Clone)]
pub enum Event {
    JobCreated(JobCreated),
    /// Boxed: version 2 made it much the largest, and reporting reads only its file.
    Ingested(Box<PhotoIngested>),
    Matched(PhotoMatched),
    Unmatched(PhotoUnmatched),
    Processed(PhotoProcessed),
    Rejected(PhotoRejected),
    Applied(PhotoApplied),
}

impl Event {
    /// Reads any pipeline event, checking its kind and schema version.
    pub fn decode(subject: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        Ok(match Kind::of_subject(subject) {
            Some(Kind::JobCreated) => Event::JobCreated(events::decode(subject, payload)?),
            Some(Kind::Ingested) => Event::Ingested(Box::new(events::decode(subject, payload)?)),
            Some(Kind::Matched) => Event::Matched(events::decode(subject, payload)?),
            Some(Kind::Unmatched) => Event::Unmatched(events::decode(subject, payload)?),
            Some(Kind::Processed) => Event::Processed(events::decode(subject, payload)?),
            Some(Kind::Rejected) => Event::Rejected(events::decode(subject, payload)?),
            Some(Kind::Applied) => Event::Applied(events::decode(subject, payload)?),
            Some(Kind::JobStatus) | None => {
                return Err(DecodeError::WrongSubject {
                    subject: subject.to_owned(),
                    expected: "pipeline event",
                });
            }
        })
    }

    fn file(&self) -> Option<&FileRef> {
        match self {
            Event::JobCreated(_) => None,
            Event::Ingested(e) => Some(&e.file),
            Event::Matched(e) => Some(&e.file),
            Event::Unmatched(e) => Some(&e.file),
            Event::Processed(e) => Some(&e.file),
            Event::Rejected(e) => Some(&e.file),
            Event::Applied(e) => Some(&e.file),
        }
    }

    fn job(&self) -> (&DistrictId, &str) {
        match self {
            Event::JobCreated(e) => (&e.district, &e.job_id),
            Event::Ingested(e) => (&e.file.district, &e.file.job_id),
            Event::Matched(PhotoMatched { file, .. })
            | Event::Unmatched(PhotoUnmatched { file, .. })
            | Event::Processed(PhotoProcessed { file, .. })
            | Event::Rejected(PhotoRejected { file, .. })
            | Event::Applied(PhotoApplied { file, .. }) => (&file.district, &file.job_id),
        }
    }
}

pub fn new_job(district: &DistrictId, job_id: &str, now: DateTime<Utc>) -> job_status::Model {
    job_status::Model {
        job_id: job_id.to_owned(),
        district_id: district.as_str().to_owned(),
        state: JobState::Queued,
        created_seen: false,
        files: 0,
        matched: 0,
        unmatched: 0,
        processed: 0,
        rejected: 0,
        applied: 0,
        warnings: "[]".into(),
        created_at: now,
        started_at: None,
        finished_at: None,
        updated_at: now,
        parked: 0,
        replayed: 0,
        failure: None,
        skipped: 0,
        previewed: 0,
        mode: ImportMode::default(),
        replace: ReplacePolicy::default(),
        undo: None,
    }
}

pub fn new_file(file: &FileRef, now: DateTime<Utc>) -> file_outcome::Model {
    file_outcome::Model {
        job_id: file.job_id.to_string(),
        seq: i32::try_from(file.seq).unwrap_or(i32::MAX),
        district_id: file.district.as_str().to_owned(),
        file_name: file.file_name.clone(),
        outcome: Outcome::Pending,
        person_id: None,
        matched_by: None,
        photo_id: None,
        reason: None,
        matched: false,
        unmatched: false,
        processed: false,
        rejected: false,
        applied: false,
        updated_at: now,
        replays: 0,
    }
}

/// The projection of one batch: rows are loaded once, changed in memory, written back once.
#[derive(Default)]
struct Working {
    jobs: HashMap<String, job_status::Model>,
    files: HashMap<(String, i32), file_outcome::Model>,
}

/// Applies a batch of events inside `txn` and returns the status of every job the batch
/// touched. The batch's jobs are locked first, in one order: a job's counts are read, changed
/// and written by one writer at a time, while other jobs' events are projected concurrently.
pub async fn apply(txn: &DatabaseTransaction, events: &[Event]) -> Result<Vec<JobStatus>, DbErr> {
    let now = Utc::now();
    let jobs: BTreeSet<&str> = events.iter().map(|e| e.job().1).collect();
    for job in &jobs {
        lock_job(txn, job).await?;
    }
    let db = txn;
    let mut working = Working::default();
    load(db, events, &mut working).await?;

    for event in events {
        let (district, job_id) = event.job();
        let job = working
            .jobs
            .entry(job_id.to_owned())
            .or_insert_with(|| new_job(district, job_id, now));
        if let Event::JobCreated(created) = event {
            job.created_seen = true;
            job.files = i32::try_from(created.files).unwrap_or(i32::MAX);
            job.created_at = created.created_at;
            job.warnings = serde_json::to_string(&created.warnings).unwrap_or_else(|_| "[]".into());
            job.mode = created.options.mode;
            job.replace = created.options.replace;
            continue;
        }
        let Some(file_ref) = event.file() else {
            continue;
        };
        // A file number the job does not have is a forged or corrupted event: it would add a
        // row and counts to a job whose files are all accounted for.
        if job.created_seen && i64::from(file_ref.seq) >= i64::from(job.files) {
            tracing::warn!(district = %district, job = job_id, seq = file_ref.seq, files = job.files, "event for a file number beyond the job's; ignored");
            continue;
        }
        job.started_at.get_or_insert(now);
        let file = working
            .files
            .entry((
                file_ref.job_id.to_string(),
                i32::try_from(file_ref.seq).unwrap_or(i32::MAX),
            ))
            .or_insert_with(|| new_file(file_ref, now));
        if file.file_name.is_empty() {
            // A row the reconciler made before any event of the file arrived.
            file.file_name.clone_from(&file_ref.file_name);
        }
        apply_to_file(event, file, job, now);
    }

    for job in working.jobs.values_mut() {
        settle_state(job, now);
    }
    store(db, &working).await?;
    let mut statuses: Vec<JobStatus> = working.jobs.values().filter_map(status_of).collect();
    statuses.sort_by(|a, b| a.job_id.cmp(&b.job_id));
    Ok(statuses)
}

/// Takes the job's lock until the transaction ends (every writer of a job's projection does).
pub async fn lock_job(txn: &DatabaseTransaction, job_id: &str) -> Result<(), DbErr> {
    pictureday_platform::db::lock_key(txn, "job", job_id).await
}

/// Brings the job's state, finish time and update time up to date after a change.
pub fn settle_state(job: &mut job_status::Model, now: DateTime<Utc>) {
    let state = derive_state(job);
    // An applied preview finishes again: when it was applied, not when it was previewed.
    let applied_preview = job.state == JobState::Previewed && state != JobState::Previewed;
    if state.is_terminal() && (job.finished_at.is_none() || applied_preview) {
        job.finished_at = Some(now);
    }
    job.state = state;
    job.updated_at = now;
}

async fn load(
    db: &DatabaseTransaction,
    events: &[Event],
    working: &mut Working,
) -> Result<(), DbErr> {
    let job_ids: BTreeSet<&str> = events.iter().map(|e| e.job().1).collect();
    let rows = job_status::Entity::find()
        .filter(job_status::Column::JobId.is_in(job_ids.iter().copied()))
        .all(db)
        .await?;
    working
        .jobs
        .extend(rows.into_iter().map(|j| (j.job_id.clone(), j)));
    let mut seqs: HashMap<&str, BTreeSet<i32>> = HashMap::new();
    for file in events.iter().filter_map(Event::file) {
        seqs.entry(&file.job_id)
            .or_default()
            .insert(i32::try_from(file.seq).unwrap_or(i32::MAX));
    }
    for (job_id, seqs) in seqs {
        let rows = file_outcome::Entity::find()
            .filter(file_outcome::Column::JobId.eq(job_id))
            .filter(file_outcome::Column::Seq.is_in(seqs))
            .all(db)
            .await?;
        working
            .files
            .extend(rows.into_iter().map(|f| ((f.job_id.clone(), f.seq), f)));
    }
    Ok(())
}

fn apply_to_file(
    event: &Event,
    file: &mut file_outcome::Model,
    job: &mut job_status::Model,
    now: DateTime<Utc>,
) {
    file.updated_at = now;
    match event {
        Event::JobCreated(_) | Event::Ingested(_) => {}
        Event::Matched(e) => {
            file.person_id = Some(e.person_id.to_string());
            file.matched_by = Some(e.matched_by.describe().to_owned());
            if !file.matched {
                file.matched = true;
                job.matched += 1;
            }
        }
        Event::Unmatched(_) | Event::Rejected(_) | Event::Applied(_)
            if contradicts_final_outcome(event, file.outcome) =>
        {
            // A file has exactly one outcome: a later event claiming another (a forged or
            // misrouted one) changes neither the log row nor the counts.
            tracing::warn!(
                district = %file.district_id,
                job = %file.job_id,
                seq = file.seq,
                outcome = file.outcome.as_str(),
                "event contradicting a file's final outcome ignored"
            );
        }
        Event::Unmatched(e) => {
            if !file.unmatched {
                file.unmatched = true;
                job.unmatched += 1;
            }
            file.outcome = Outcome::Unmatched;
            file.reason = Some(e.reason.clone());
        }
        Event::Processed(e) => {
            file.person_id = Some(e.person_id.to_string());
            file.photo_id = Some(e.photo_id.to_string());
            count_matched_and_processed(file, job);
        }
        Event::Rejected(e) => {
            if let Some(person) = &e.person_id {
                file.person_id = Some(person.to_string());
            }
            if file.outcome == Outcome::Previewed {
                // Applying the preview failed for this file: it leaves the previewed count.
                job.previewed -= 1;
                file.applied = false;
            }
            if !file.rejected {
                file.rejected = true;
                job.rejected += 1;
            }
            file.outcome = Outcome::Rejected;
            file.reason = Some(e.reason.clone());
        }
        Event::Applied(e) => {
            file.person_id = Some(e.person_id.to_string());
            file.photo_id = Some(e.photo_id.to_string());
            count_matched_and_processed(file, job);
            let bucket = Bucket::of(e.outcome.into());
            if !file.applied {
                file.applied = true;
                *bucket.count(job) += 1;
            } else {
                let was = Bucket::of(file.outcome);
                if bucket == Bucket::Previewed && was != Bucket::Previewed {
                    // The preview's event again, after the applied preview's final one: the
                    // final outcome stands.
                    return;
                }
                // A previewed file moves to its final outcome once; counts stay exact.
                if was != bucket {
                    *was.count(job) -= 1;
                    *bucket.count(job) += 1;
                }
            }
            file.outcome = e.outcome.into();
            file.reason = applied_reason(e);
        }
    }
}

/// Whether `event` claims an outcome other than the file's final one. Redeliveries repeat the
/// same outcome; a previewed file moves on once; an applied file may be re-described within
/// its bucket (applied, replaced, superseded) by a redelivered apply.
fn contradicts_final_outcome(event: &Event, current: Outcome) -> bool {
    let unmatched_or_rejected = matches!(current, Outcome::Unmatched | Outcome::Rejected);
    let placed = matches!(
        current,
        Outcome::Applied | Outcome::Replaced | Outcome::Superseded | Outcome::Skipped
    );
    match event {
        Event::Unmatched(_) => placed || current == Outcome::Rejected,
        Event::Rejected(_) => placed || current == Outcome::Unmatched,
        Event::Applied(_) => unmatched_or_rejected,
        _ => false,
    }
}

/// A processed file was matched, and an applied one processed too, whichever event arrives
/// first: events of one file on different subjects may be delivered out of order (a redelivery
/// after a crash comes late), and the counts of a finished job must already agree.
fn count_matched_and_processed(file: &mut file_outcome::Model, job: &mut job_status::Model) {
    if !file.matched {
        file.matched = true;
        job.matched += 1;
    }
    if !file.processed {
        file.processed = true;
        job.processed += 1;
    }
}

/// Which count a file with a `photo.applied` outcome is in: each such file is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    /// Applied, replaced or superseded: stored and placed.
    Applied,
    Skipped,
    Previewed,
}

impl Bucket {
    fn of(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Skipped => Bucket::Skipped,
            Outcome::Previewed => Bucket::Previewed,
            // A file whose applied outcome a later rejection overwrote is still counted applied.
            Outcome::Pending
            | Outcome::Applied
            | Outcome::Replaced
            | Outcome::Superseded
            | Outcome::Unmatched
            | Outcome::Rejected => Bucket::Applied,
        }
    }

    fn count(self, job: &mut job_status::Model) -> &mut i32 {
        match self {
            Bucket::Applied => &mut job.applied,
            Bucket::Skipped => &mut job.skipped,
            Bucket::Previewed => &mut job.previewed,
        }
    }
}

/// The log row's reason: roster's note where it says why (skipped) or what would happen
/// (previewed).
fn applied_reason(e: &PhotoApplied) -> Option<String> {
    match e.outcome {
        ApplyOutcome::Applied => None,
        ApplyOutcome::Replaced => {
            Some("replaced the person's previous photo, which is kept as an older version".into())
        }
        ApplyOutcome::Superseded => {
            Some("kept as an older version: a newer upload is the person's photo".into())
        }
        ApplyOutcome::Skipped => Some(e.note.clone().unwrap_or_else(|| {
            "skipped: the import's replace policy leaves the person's photo as it is".into()
        })),
        ApplyOutcome::Previewed => Some(
            e.note
                .clone()
                .unwrap_or_else(|| "previewed: applying the job applies it".into()),
        ),
    }
}

/// A job is finished when every file has a final outcome: applied (or replaced or superseded),
/// skipped, unmatched or rejected. A preview whose every file has an outcome, some of them
/// previewed, is `previewed` until it is applied (a preview with nothing to apply is finished
/// with errors). A failed job stays failed.
pub fn derive_state(job: &job_status::Model) -> JobState {
    if job.failure.is_some() {
        return JobState::Failed;
    }
    let settled = job.applied + job.skipped + job.previewed + job.unmatched + job.rejected;
    if job.created_seen && settled >= job.files {
        if job.previewed > 0 {
            JobState::Previewed
        } else if job.unmatched + job.rejected > 0 {
            JobState::FinishedWithErrors
        } else {
            JobState::Finished
        }
    } else if job.started_at.is_some() {
        JobState::Processing
    } else {
        JobState::Queued
    }
}

fn count(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// The job's status as published and served; `waiting` is what the stages say they wait on.
pub fn status_of(job: &job_status::Model) -> Option<JobStatus> {
    Some(JobStatus {
        v: SCHEMA_VERSION,
        district: DistrictId::parse(&job.district_id).ok()?,
        job_id: job.job_id.as_str().into(),
        state: job.state,
        counts: JobCounts {
            files: count(job.files),
            matched: count(job.matched),
            unmatched: count(job.unmatched),
            processed: count(job.processed),
            rejected: count(job.rejected),
            applied: count(job.applied),
            skipped: count(job.skipped),
            previewed: count(job.previewed),
            parked: count(job.parked),
            replayed: count(job.replayed),
        },
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        waiting: None,
        failure: job.failure.clone(),
        options: ImportOptions {
            mode: job.mode,
            replace: job.replace,
        },
    })
}

const WRITE_CHUNK: usize = 200;

async fn store(db: &DatabaseTransaction, working: &Working) -> Result<(), DbErr> {
    store_jobs(db, working.jobs.values()).await?;
    store_files(db, working.files.values()).await
}

/// Writes job rows whole (the caller holds their locks).
pub async fn store_jobs<'a>(
    db: &DatabaseTransaction,
    jobs: impl Iterator<Item = &'a job_status::Model>,
) -> Result<(), DbErr> {
    let jobs: Vec<job_status::ActiveModel> = jobs
        .cloned()
        .map(|j| j.into_active_model().reset_all())
        .collect();
    for chunk in jobs.chunks(WRITE_CHUNK) {
        job_status::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::column(job_status::Column::JobId)
                    .update_columns([
                        job_status::Column::State,
                        job_status::Column::CreatedSeen,
                        job_status::Column::Files,
                        job_status::Column::Matched,
                        job_status::Column::Unmatched,
                        job_status::Column::Processed,
                        job_status::Column::Rejected,
                        job_status::Column::Applied,
                        job_status::Column::Warnings,
                        job_status::Column::CreatedAt,
                        job_status::Column::StartedAt,
                        job_status::Column::FinishedAt,
                        job_status::Column::UpdatedAt,
                        job_status::Column::Parked,
                        job_status::Column::Replayed,
                        job_status::Column::Failure,
                        job_status::Column::Skipped,
                        job_status::Column::Previewed,
                        job_status::Column::Mode,
                        job_status::Column::Replace,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Writes file rows whole (the caller holds their jobs' locks).
pub async fn store_files<'a>(
    db: &DatabaseTransaction,
    files: impl Iterator<Item = &'a file_outcome::Model>,
) -> Result<(), DbErr> {
    let files: Vec<file_outcome::ActiveModel> = files
        .cloned()
        .map(|f| f.into_active_model().reset_all())
        .collect();
    for chunk in files.chunks(WRITE_CHUNK) {
        file_outcome::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([file_outcome::Column::JobId, file_outcome::Column::Seq])
                    .update_columns([
                        file_outcome::Column::Outcome,
                        file_outcome::Column::PersonId,
                        file_outcome::Column::MatchedBy,
                        file_outcome::Column::PhotoId,
                        file_outcome::Column::Reason,
                        file_outcome::Column::Matched,
                        file_outcome::Column::Unmatched,
                        file_outcome::Column::Processed,
                        file_outcome::Column::Rejected,
                        file_outcome::Column::Applied,
                        file_outcome::Column::UpdatedAt,
                        file_outcome::Column::Replays,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "projection_tests.rs"]
mod tests;
