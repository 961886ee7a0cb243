//! How a preview's files move through the counts: each file in exactly one outcome, a previewed
//! file moved to its final outcome once, and the job's state following.

use pictureday_contract::events::{ImportMode, ImportOptions, PhotoApplied, ReplacePolicy};

use super::*;

fn district() -> DistrictId {
    DistrictId::parse("springfield").unwrap_or_else(|_| unreachable!("a valid slug"))
}

fn file_ref(seq: u32) -> FileRef {
    FileRef {
        district: district(),
        job_id: "j1".into(),
        seq,
        file_name: format!("{seq}.jpg"),
        replay: 0,
    }
}

fn applied(seq: u32, outcome: ApplyOutcome, note: Option<&str>) -> Event {
    Event::Applied(PhotoApplied {
        v: SCHEMA_VERSION,
        file: file_ref(seq),
        person_id: format!("p{seq}").into(),
        photo_id: format!("photo{seq}").into(),
        outcome,
        previous_photo_id: None,
        note: note.map(str::to_owned),
    })
}

/// A preview job of `files` files, each already processed.
fn preview_job(files: i32) -> job_status::Model {
    let now = Utc::now();
    let mut job = new_job(&district(), "j1", now);
    job.created_seen = true;
    job.files = files;
    job.matched = files;
    job.processed = files;
    job.started_at = Some(now);
    job.mode = ImportMode::Preview;
    job
}

fn project(job: &mut job_status::Model, file: &mut file_outcome::Model, event: &Event) {
    let now = Utc::now();
    apply_to_file(event, file, job, now);
    settle_state(job, now);
}

fn counts(job: &job_status::Model) -> (i32, i32, i32) {
    (job.applied, job.skipped, job.previewed)
}

#[test]
fn a_previewed_file_moves_to_its_final_outcome_once() {
    let mut job = preview_job(2);
    let mut first = new_file(&file_ref(0), Utc::now());
    let mut second = new_file(&file_ref(1), Utc::now());
    let would = "would become Ada Lovelace's photo (none yet)";
    project(
        &mut job,
        &mut first,
        &applied(0, ApplyOutcome::Previewed, Some(would)),
    );
    assert_eq!(job.state, JobState::Processing);
    project(
        &mut job,
        &mut second,
        &applied(1, ApplyOutcome::Previewed, Some("would be skipped: …")),
    );
    assert_eq!((job.state, counts(&job)), (JobState::Previewed, (0, 0, 2)));
    assert_eq!(
        (first.outcome, first.reason.as_deref()),
        (Outcome::Previewed, Some(would))
    );
    let previewed_at = job.finished_at;
    assert!(previewed_at.is_some());

    // The final outcomes arrive; a redelivered one and a late preview event change nothing.
    project(
        &mut job,
        &mut first,
        &applied(0, ApplyOutcome::Applied, None),
    );
    assert_eq!((job.state, counts(&job)), (JobState::Previewed, (1, 0, 1)));
    project(
        &mut job,
        &mut first,
        &applied(0, ApplyOutcome::Applied, None),
    );
    project(
        &mut job,
        &mut first,
        &applied(0, ApplyOutcome::Previewed, Some(would)),
    );
    assert_eq!(counts(&job), (1, 0, 1));
    assert_eq!(
        (first.outcome, first.reason.as_deref()),
        (Outcome::Applied, None)
    );
    let kept = "Ada Lovelace already has a photo (from 1001.jpg, 2026-11-30); replace=missing_only keeps it";
    project(
        &mut job,
        &mut second,
        &applied(1, ApplyOutcome::Skipped, Some(kept)),
    );
    assert_eq!((job.state, counts(&job)), (JobState::Finished, (1, 1, 0)));
    assert_eq!(
        (second.outcome, second.reason.as_deref()),
        (Outcome::Skipped, Some(kept))
    );
    // Finished when it was applied, not when it was previewed.
    assert!(job.finished_at >= previewed_at);
    let status = status_of(&job).unwrap_or_else(|| unreachable!("a valid job"));
    assert_eq!(
        (
            status.counts.applied,
            status.counts.skipped,
            status.counts.previewed
        ),
        (1, 1, 0)
    );
    assert_eq!(
        status.options,
        ImportOptions {
            mode: ImportMode::Preview,
            replace: ReplacePolicy::Always
        }
    );
}

#[test]
fn skipped_files_finish_a_job_without_errors() {
    let mut job = preview_job(2);
    job.mode = ImportMode::Apply;
    let mut first = new_file(&file_ref(0), Utc::now());
    let mut second = new_file(&file_ref(1), Utc::now());
    project(
        &mut job,
        &mut first,
        &applied(0, ApplyOutcome::Skipped, None),
    );
    project(
        &mut job,
        &mut second,
        &applied(1, ApplyOutcome::Replaced, None),
    );
    assert_eq!((job.state, counts(&job)), (JobState::Finished, (1, 1, 0)));
    assert_eq!(
        first.reason.as_deref(),
        Some("skipped: the import's replace policy leaves the person's photo as it is")
    );
}

#[test]
fn a_preview_with_nothing_to_apply_finishes_with_errors() {
    let mut job = preview_job(1);
    job.matched = 0;
    job.processed = 0;
    job.unmatched = 1;
    settle_state(&mut job, Utc::now());
    assert_eq!(job.state, JobState::FinishedWithErrors);
}

#[test]
fn an_applied_file_counts_as_matched_and_processed_whatever_arrives_first() {
    let now = Utc::now();
    let mut job = new_job(&district(), "j1", now);
    job.created_seen = true;
    job.files = 1;
    let mut file = new_file(&file_ref(0), now);
    // After a crash, the file's `photo.applied` can be projected before its redelivered
    // `photo.matched` and `photo.processed`: the finished job's counts already agree.
    project(
        &mut job,
        &mut file,
        &applied(0, ApplyOutcome::Applied, None),
    );
    assert_eq!(job.state, JobState::Finished);
    assert_eq!((job.matched, job.processed, job.applied), (1, 1, 1));
    let processed = Event::Processed(PhotoProcessed {
        v: SCHEMA_VERSION,
        file: file_ref(0),
        person_id: "p0".into(),
        photo_id: "photo0".into(),
        source_format: "JPEG".into(),
        renditions: Vec::new(),
        processed_by: "test".into(),
        options: ImportOptions::default(),
    });
    project(&mut job, &mut file, &processed);
    assert_eq!((job.matched, job.processed, job.applied), (1, 1, 1));
    assert_eq!(file.outcome, Outcome::Applied);
}

fn rejected(seq: u32) -> Event {
    Event::Rejected(PhotoRejected {
        v: SCHEMA_VERSION,
        file: file_ref(seq),
        person_id: None,
        reason: "forged".into(),
    })
}

#[test]
fn a_later_event_never_overwrites_a_final_outcome() {
    let now = Utc::now();
    let mut job = new_job(&district(), "j1", now);
    job.created_seen = true;
    job.files = 1;
    let mut file = new_file(&file_ref(0), now);
    project(
        &mut job,
        &mut file,
        &applied(0, ApplyOutcome::Applied, None),
    );
    // A rejection claimed after the file was applied (forged, or from another job's replay).
    project(&mut job, &mut file, &rejected(0));
    assert_eq!(file.outcome, Outcome::Applied);
    assert_eq!(file.reason, None);
    assert_eq!((job.applied, job.rejected), (1, 0));
    assert_eq!(job.state, JobState::Finished);

    // And the other way round: a rejected file stays rejected.
    let mut other = new_file(&file_ref(0), now);
    let mut second = new_job(&district(), "j1", now);
    second.created_seen = true;
    second.files = 1;
    project(&mut second, &mut other, &rejected(0));
    project(
        &mut second,
        &mut other,
        &applied(0, ApplyOutcome::Applied, None),
    );
    assert_eq!(other.outcome, Outcome::Rejected);
    assert_eq!((second.applied, second.rejected), (0, 1));
}

#[test]
fn a_previewed_file_rejected_on_apply_leaves_the_previewed_count() {
    let mut job = preview_job(1);
    let mut file = new_file(&file_ref(0), Utc::now());
    project(
        &mut job,
        &mut file,
        &applied(0, ApplyOutcome::Previewed, Some("would apply")),
    );
    assert_eq!(counts(&job), (0, 0, 1));
    project(&mut job, &mut file, &rejected(0));
    assert_eq!(counts(&job), (0, 0, 0));
    assert_eq!(job.rejected, 1);
    assert_eq!(file.outcome, Outcome::Rejected);
}
