//! Where events travel: subjects, the streams that keep them, the durable consumers that read
//! them, and the request/reply subjects between services.
//!
//! Streams:
//! - [`PIPELINE_STREAM`] (interest retention): every photo event and `job.created`. Several
//!   services each see every message they filter on; a message is removed once all have acked.
//! - [`STATUS_STREAM`] (limits retention, 30 days): `job.status` events for dashboards.
//! - [`DEAD_LETTER_STREAM`] (limits retention, 30 days): events a consumer could not read or
//!   handle, set aside with the reason instead of being dropped.

use crate::DistrictId;

pub const PIPELINE_STREAM: &str = "PICTUREDAY_PIPELINE";
pub const STATUS_STREAM: &str = "PICTUREDAY_STATUS";
pub const DEAD_LETTER_STREAM: &str = "PICTUREDAY_DEAD_LETTERS";

/// Request/reply: the matcher asks roster to resolve match keys (`events::LookupRequest`).
pub const ROSTER_LOOKUP_SUBJECT: &str = "pictureday.roster.lookup";
/// Request/reply: reporting asks ingest to publish files again whose events were lost
/// (`events::ReplayRequest`).
pub const INGEST_REPLAY_SUBJECT: &str = "pictureday.ingest.replay";
/// Request/reply: reporting asks ingest about a job it has not seen yet (`events::JobQuery`).
pub const INGEST_JOB_SUBJECT: &str = "pictureday.ingest.job";
/// Request/reply: roster asks reporting for a job's status before it applies a preview
/// (`events::JobQuery`, answered with `events::JobStatusResponse`).
pub const REPORTING_JOB_SUBJECT: &str = "pictureday.reporting.job";
/// Request/reply: roster asks ingest to delete the originals of a person's purged photos
/// (`events::PurgeOriginals`, answered with `events::OriginalsPurged`).
pub const INGEST_PURGE_SUBJECT: &str = "pictureday.ingest.purge";
/// Request/reply: ingest asks roster to import a roster CSV dropped over SFTP, stored under
/// `keys::sftp_roster` (`events::RosterImportRequest`, answered with
/// `events::RosterImportReply`).
pub const ROSTER_IMPORT_SUBJECT: &str = "pictureday.roster.import";
/// Every `job.undone` subject (`events::JobUndone`), kept on the status stream. Not a [`Kind`]:
/// it is no pipeline event, and no pipeline consumer reads it.
pub const JOB_UNDONE_WILDCARD: &str = "pictureday.job.undone.>";

/// `pictureday.job.undone.<district>.<job>`
pub fn job_undone_subject(district: &DistrictId, job_id: &str) -> String {
    format!("pictureday.job.undone.{district}.{job_id}")
}

/// Every `roster.sync` subject (`events::RosterSync`), kept on the status stream: a roster
/// source's sync run started or ended.
pub const ROSTER_SYNC_WILDCARD: &str = "pictureday.roster.sync.>";

/// `pictureday.roster.sync.<district>.<run>`
pub fn roster_sync_subject(district: &DistrictId, run_id: &str) -> String {
    format!("pictureday.roster.sync.{district}.{run_id}")
}

/// Core NATS (not stored): a stage says it waits on a dependency, or no longer does
/// (`events::StageHealth`).
pub const STAGE_HEALTH_SUBJECT: &str = "pictureday.stage.health";

/// The kinds of event that flow through the pipeline, one subject family each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    JobCreated,
    Ingested,
    Matched,
    Unmatched,
    Processed,
    Rejected,
    Applied,
    JobStatus,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::JobCreated,
        Kind::Ingested,
        Kind::Matched,
        Kind::Unmatched,
        Kind::Processed,
        Kind::Rejected,
        Kind::Applied,
        Kind::JobStatus,
    ];

    pub fn token(self) -> &'static str {
        match self {
            Kind::JobCreated => "job.created",
            Kind::Ingested => "photo.ingested",
            Kind::Matched => "photo.matched",
            Kind::Unmatched => "photo.unmatched",
            Kind::Processed => "photo.processed",
            Kind::Rejected => "photo.rejected",
            Kind::Applied => "photo.applied",
            Kind::JobStatus => "job.status",
        }
    }

    /// `pictureday.<kind>.<district>.<job>`
    pub fn subject(self, district: &DistrictId, job_id: &str) -> String {
        format!("pictureday.{}.{district}.{job_id}", self.token())
    }

    /// Every subject of this kind.
    pub fn wildcard(self) -> String {
        format!("pictureday.{}.>", self.token())
    }

    /// Reads the kind back from a subject.
    pub fn of_subject(subject: &str) -> Option<Kind> {
        let rest = subject.strip_prefix("pictureday.")?;
        Kind::ALL.into_iter().find(|k| {
            rest.strip_prefix(k.token())
                .is_some_and(|tail| tail.starts_with('.'))
        })
    }
}

/// The district and job a pipeline subject names, if it is one.
pub fn job_of_subject(subject: &str) -> Option<(DistrictId, String)> {
    let kind = Kind::of_subject(subject)?;
    let tail = subject.strip_prefix(&format!("pictureday.{}.", kind.token()))?;
    let (district, job) = tail.split_once('.')?;
    if job.is_empty() || job.contains('.') {
        return None;
    }
    Some((DistrictId::parse(district).ok()?, job.to_owned()))
}

/// Where a consumer sets aside a message it could not handle:
/// `pictureday.deadletter.<consumer>.<district>.<job>`, or `….<consumer>.unknown` when the
/// message's own subject does not name a job.
pub fn dead_letter_subject(consumer: &str, original_subject: &str) -> String {
    match job_of_subject(original_subject) {
        Some((district, job)) => format!("pictureday.deadletter.{consumer}.{district}.{job}"),
        None => format!("pictureday.deadletter.{consumer}.unknown"),
    }
}

/// The district and job of a dead letter's subject, when it names one.
pub fn job_of_dead_letter(subject: &str) -> Option<(DistrictId, String)> {
    let rest = subject.strip_prefix("pictureday.deadletter.")?;
    let mut parts = rest.splitn(3, '.');
    let _consumer = parts.next()?;
    let district = DistrictId::parse(parts.next()?).ok()?;
    let job = parts.next()?;
    (!job.is_empty() && !job.contains('.')).then(|| (district, job.to_owned()))
}

pub const DEAD_LETTER_WILDCARD: &str = "pictureday.deadletter.>";

/// The durable consumers, by the service that owns them. Their names are part of the
/// operational contract (autoscalers name the image-processor's).
pub mod consumers {
    pub const MATCHER: &str = "matcher";
    pub const IMAGE_PROCESSOR: &str = "image-processor";
    pub const ROSTER: &str = "roster";
    pub const REPORTING: &str = "reporting";
    /// Reporting's consumer of the dead-letter stream: it counts set-aside events on their jobs.
    pub const REPORTING_DEAD_LETTERS: &str = "reporting-dead-letters";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_carry_district_and_job() -> anyhow::Result<()> {
        let district = DistrictId::parse("springfield")?;
        let subject = Kind::Matched.subject(&district, "job-1");
        assert_eq!(subject, "pictureday.photo.matched.springfield.job-1");
        assert_eq!(Kind::of_subject(&subject), Some(Kind::Matched));
        assert_eq!(
            job_of_subject(&subject),
            Some((district.clone(), "job-1".to_owned()))
        );
        assert_eq!(
            Kind::of_subject("pictureday.job.created.springfield.j"),
            Some(Kind::JobCreated)
        );
        assert_eq!(Kind::of_subject("other.photo.matched.x.y"), None);
        let undone = job_undone_subject(&district, "job-1");
        assert_eq!(undone, "pictureday.job.undone.springfield.job-1");
        assert_eq!(Kind::of_subject(&undone), None);
        assert_eq!(
            job_of_subject("pictureday.photo.matched.Bad_District.j"),
            None
        );
        Ok(())
    }

    #[test]
    fn dead_letters_keep_the_job() -> anyhow::Result<()> {
        let district = DistrictId::parse("springfield")?;
        let subject = dead_letter_subject("matcher", &Kind::Ingested.subject(&district, "j1"));
        assert_eq!(subject, "pictureday.deadletter.matcher.springfield.j1");
        assert_eq!(
            job_of_dead_letter(&subject),
            Some((district, "j1".to_owned()))
        );
        let unknown = dead_letter_subject("matcher", "pictureday.photo.weird");
        assert_eq!(unknown, "pictureday.deadletter.matcher.unknown");
        assert_eq!(job_of_dead_letter(&unknown), None);
        Ok(())
    }
}
