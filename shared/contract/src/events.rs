//! The event contract between services (documented in docs/events.md). Every event is a JSON
//! document with a schema version `v`; a consumer refuses versions it does not know.

use chrono::{DateTime, Utc};
#[cfg(feature = "db")]
use sea_orm::sea_query::StringLen;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::DistrictId;
use crate::ids::{JobId, PersonId, PhotoId};
pub use crate::matching::{
    Identifier, IndexEntry, LookupRequest, LookupResponse, LookupResult, MatchQuery, MatchRule,
    MatchedBy,
};
pub use crate::options::{ImportMode, ImportOptions, ReplacePolicy};
use crate::subjects::Kind;

/// The version this build writes every event at but two (below). Version 2 added import options,
/// photographers' index rows and match rules; every version-2 field has a default, so version-1
/// events are still read.
pub const SCHEMA_VERSION: u32 = 2;
/// The version of a `photo.ingested` that names the person its file was chosen for
/// (`chosen_person`), and of the `photo.matched` it leads to. A reader that ignored the field
/// would match the file by its name, perhaps to someone else: so only those events are written
/// at version 3, which a version-2 service refuses (sets aside) instead of misreading, while every
/// other event stays at version 2.
pub const CHOSEN_PERSON_VERSION: u32 = 3;
/// The version of a `photo.processed` whose renditions share one object (each with its
/// `offset`). A reader that ignored the offsets would serve the whole object as each rendition,
/// so it is version 3 too, which a version-2 roster sets aside instead of misreading.
pub const PACKED_RENDITIONS_VERSION: u32 = 3;
/// The oldest version this build reads.
pub const OLDEST_READABLE_VERSION: u32 = 1;
/// The newest version this build reads.
pub const NEWEST_READABLE_VERSION: u32 = CHOSEN_PERSON_VERSION;

/// A pipeline event: its kind (and so its subject family) and its schema version.
pub trait PipelineEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: Kind;
    fn version(&self) -> u32;
    /// The file it is about (every kind but `job.created`).
    fn file(&self) -> Option<&FileRef>;
}

macro_rules! pipeline_event {
    ($($event:ty => $kind:expr, $file:expr;)+) => {
        $(
            impl PipelineEvent for $event {
                const KIND: Kind = $kind;
                fn version(&self) -> u32 {
                    self.v
                }
                fn file(&self) -> Option<&FileRef> {
                    let file: fn(&$event) -> Option<&FileRef> = $file;
                    file(self)
                }
            }
        )+
    };
}

pipeline_event! {
    JobCreated => Kind::JobCreated, |_| None;
    PhotoIngested => Kind::Ingested, |e| Some(&e.file);
    PhotoMatched => Kind::Matched, |e| Some(&e.file);
    PhotoUnmatched => Kind::Unmatched, |e| Some(&e.file);
    PhotoProcessed => Kind::Processed, |e| Some(&e.file);
    PhotoRejected => Kind::Rejected, |e| Some(&e.file);
    PhotoApplied => Kind::Applied, |e| Some(&e.file);
}

/// Why a message could not be read as the event its subject promises.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{subject} is not a {expected} subject")]
    WrongSubject {
        subject: String,
        expected: &'static str,
    },
    #[error(
        "event of schema version {found} on {subject}; this service reads versions {OLDEST_READABLE_VERSION} to {NEWEST_READABLE_VERSION}"
    )]
    UnknownVersion { subject: String, found: u32 },
    #[error("event on {subject} is not valid JSON for its kind: {source}")]
    Json {
        subject: String,
        source: serde_json::Error,
    },
}

/// Reads an event, checking its subject's kind and its schema version first (a newer version may
/// not even have the fields this one expects).
pub fn decode<E: PipelineEvent>(subject: &str, payload: &[u8]) -> Result<E, DecodeError> {
    #[derive(Deserialize)]
    struct Versioned {
        v: u32,
    }
    if Kind::of_subject(subject) != Some(E::KIND) {
        return Err(DecodeError::WrongSubject {
            subject: subject.to_owned(),
            expected: E::KIND.token(),
        });
    }
    let json = |source| DecodeError::Json {
        subject: subject.to_owned(),
        source,
    };
    let Versioned { v } = serde_json::from_slice(payload).map_err(json)?;
    if !(OLDEST_READABLE_VERSION..=NEWEST_READABLE_VERSION).contains(&v) {
        return Err(DecodeError::UnknownVersion {
            subject: subject.to_owned(),
            found: v,
        });
    }
    serde_json::from_slice(payload).map_err(json)
}

/// Which file of which upload an event is about. `seq` is the file's position in its job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub district: DistrictId,
    pub job_id: JobId,
    pub seq: u32,
    pub file_name: String,
    /// 0 for the file's first pass through the pipeline; a replay of a file whose events were
    /// lost carries its own number, so its events are not taken for copies of the lost ones.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replay: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl FileRef {
    /// The deterministic `Nats-Msg-Id` for this file's event of one kind (and replay).
    pub fn msg_id(&self, kind: &str) -> String {
        match self.replay {
            0 => format!("{kind}:{}:{}", self.job_id, self.seq),
            replay => format!("{kind}:{}:{}:r{replay}", self.job_id, self.seq),
        }
    }

    /// The `Nats-Msg-Id` of the `photo.applied` that applying a preview publishes
    /// (`applied:<job>:<seq>:final`): distinct from the preview's own, which may still be in
    /// JetStream's duplicate window and would swallow it as a copy.
    pub fn final_applied_msg_id(&self) -> String {
        format!("applied:{}:{}:final", self.job_id, self.seq)
    }
}

/// Where a file's bytes are: a whole object, or one entry inside an uploaded zip (read by range,
/// so an archive is never copied entry by entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Object {
        key: String,
        size: u64,
    },
    ZipEntry {
        archive_key: String,
        data_offset: u64,
        compressed_size: u64,
        uncompressed_size: u64,
        /// ZIP compression method: 0 stored, 8 deflate; anything else is rejected downstream.
        method: u16,
        crc32: u32,
        encrypted: bool,
    },
}

impl Source {
    /// The stored object the bytes are in (the archive, for a zip entry).
    pub fn key(&self) -> &str {
        match self {
            Source::Object { key, .. } => key,
            Source::ZipEntry { archive_key, .. } => archive_key,
        }
    }

    /// The size of the file once extracted.
    pub fn size(&self) -> u64 {
        match self {
            Source::Object { size, .. } => *size,
            Source::ZipEntry {
                uncompressed_size, ..
            } => *uncompressed_size,
        }
    }
}

/// The identifier a mapping CSV gave a file, with the row it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedKey {
    pub value: String,
    pub row: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCreated {
    pub v: u32,
    pub district: DistrictId,
    pub job_id: JobId,
    pub files: u32,
    pub created_at: DateTime<Utc>,
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "ImportOptions::is_default")]
    pub options: ImportOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoIngested {
    pub v: u32,
    pub file: FileRef,
    pub source: Source,
    /// Whether the upload came with a mapping CSV; if so, only mapped files are matched.
    pub has_mapping: bool,
    pub mapped_key: Option<MappedKey>,
    /// The photographer's index the upload carried (`MASTER.TXT`); if so, only files it lists
    /// are matched, by the row in `index_entry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_entry: Option<IndexEntry>,
    /// Set when the upload itself already says the file cannot be matched, and why: a mapping
    /// row or index row that names two files, two rows that name this file for different people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatchable: Option<String>,
    #[serde(default, skip_serializing_if = "ImportOptions::is_default")]
    pub options: ImportOptions,
    /// The person the file was uploaded for (`PUT …/people/{person}/photo`): it is theirs if
    /// the roster still has them, whatever its name says. Version 3 (see
    /// [`CHOSEN_PERSON_VERSION`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_person: Option<PersonId>,
}

impl PhotoIngested {
    /// The version a `photo.ingested` (and the `photo.matched` it leads to) is written at: 3 when
    /// it names a chosen person, which no version-2 reader may ignore.
    pub fn version_for(chosen_person: Option<&PersonId>) -> u32 {
        match chosen_person {
            Some(_) => CHOSEN_PERSON_VERSION,
            None => SCHEMA_VERSION,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoMatched {
    pub v: u32,
    pub file: FileRef,
    pub source: Source,
    pub person_id: PersonId,
    pub matched_by: MatchedBy,
    pub key: String,
    #[serde(default, skip_serializing_if = "ImportOptions::is_default")]
    pub options: ImportOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoUnmatched {
    pub v: u32,
    pub file: FileRef,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenditionRef {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub key: String,
    pub bytes: u64,
    /// Where the rendition starts in `key`, when a photo's renditions share one object (version
    /// 3); absent, the object is the rendition (an older build's photos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl RenditionRef {
    /// The byte range of `key` that is this rendition: `None` for the whole object.
    pub fn range(&self) -> Option<(u64, u64)> {
        self.offset.map(|offset| (offset, self.bytes))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoProcessed {
    pub v: u32,
    pub file: FileRef,
    pub person_id: PersonId,
    pub photo_id: PhotoId,
    pub source_format: String,
    pub renditions: Vec<RenditionRef>,
    /// The image-processor instance that did the work (for operations and load tests).
    pub processed_by: String,
    #[serde(default, skip_serializing_if = "ImportOptions::is_default")]
    pub options: ImportOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRejected {
    pub v: u32,
    pub file: FileRef,
    pub person_id: Option<PersonId>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "db", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(
    feature = "db",
    sea_orm(rs_type = "String", db_type = "String(StringLen::None)")
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApplyOutcome {
    /// The person had no photo; this is now their photo.
    #[cfg_attr(feature = "db", sea_orm(string_value = "applied"))]
    Applied,
    /// This photo replaced an older one, which is kept as a previous version.
    #[cfg_attr(feature = "db", sea_orm(string_value = "replaced"))]
    Replaced,
    /// Stored as a version, but a newer upload is the person's photo.
    #[cfg_attr(feature = "db", sea_orm(string_value = "superseded"))]
    Superseded,
    /// Not applied: the import's replace policy leaves this person's photo as it is.
    #[cfg_attr(feature = "db", sea_orm(string_value = "skipped"))]
    Skipped,
    /// A preview: stored and ready, not applied; `note` says what applying would do.
    #[cfg_attr(feature = "db", sea_orm(string_value = "previewed"))]
    Previewed,
}

impl ApplyOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Applied => "applied",
            ApplyOutcome::Replaced => "replaced",
            ApplyOutcome::Superseded => "superseded",
            ApplyOutcome::Skipped => "skipped",
            ApplyOutcome::Previewed => "previewed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoApplied {
    pub v: u32,
    pub file: FileRef,
    pub person_id: PersonId,
    pub photo_id: PhotoId,
    pub outcome: ApplyOutcome,
    pub previous_photo_id: Option<PhotoId>,
    /// Why a photo was skipped, or what applying a previewed one would do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "db", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(
    feature = "db",
    sea_orm(rs_type = "String", db_type = "String(StringLen::None)")
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    #[cfg_attr(feature = "db", sea_orm(string_value = "queued"))]
    Queued,
    #[cfg_attr(feature = "db", sea_orm(string_value = "processing"))]
    Processing,
    #[cfg_attr(feature = "db", sea_orm(string_value = "finished"))]
    Finished,
    #[cfg_attr(feature = "db", sea_orm(string_value = "finished_with_errors"))]
    FinishedWithErrors,
    #[cfg_attr(feature = "db", sea_orm(string_value = "failed"))]
    Failed,
    /// A preview whose every file has its outcome; `POST …/jobs/{job}/apply` applies it.
    #[cfg_attr(feature = "db", sea_orm(string_value = "previewed"))]
    Previewed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Processing => "processing",
            JobState::Finished => "finished",
            JobState::FinishedWithErrors => "finished_with_errors",
            JobState::Failed => "failed",
            JobState::Previewed => "previewed",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Finished
                | JobState::FinishedWithErrors
                | JobState::Failed
                | JobState::Previewed
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobCounts {
    pub files: u32,
    pub matched: u32,
    pub unmatched: u32,
    pub processed: u32,
    pub rejected: u32,
    pub applied: u32,
    /// Files matched and processed whose photo the import's replace policy left alone.
    #[serde(default)]
    pub skipped: u32,
    /// Files of a preview that would be applied (`POST …/jobs/{job}/apply` applies them).
    #[serde(default)]
    pub previewed: u32,
    /// Events about this job's files that a service could not read and set aside (dead letters).
    #[serde(default)]
    pub parked: u32,
    /// Files whose events were published again because they had stalled with no outcome.
    #[serde(default)]
    pub replayed: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub v: u32,
    pub district: DistrictId,
    pub job_id: JobId,
    pub state: JobState,
    pub counts: JobCounts,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// While the job cannot go on, why: `database unavailable since …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Why the job failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// What the import asked for (`mode`, `replace`); always written, so a dashboard never has
    /// to know the defaults.
    #[serde(default)]
    pub options: ImportOptions,
}

/// Request/reply, roster to reporting (`pictureday.reporting.job`, asked with a [`JobQuery`]):
/// the job's status as reporting's projection has it, `None` when no such job is known in that
/// district. Roster asks before applying a preview: only reporting knows whether every file of
/// the job has its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatusResponse {
    pub v: u32,
    pub status: Option<JobStatus>,
}

/// Request/reply, reporting to ingest: publish these files of a job again; their events were
/// lost (no outcome and nothing in flight for longer than the ack window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRequest {
    pub v: u32,
    pub district: DistrictId,
    pub job_id: JobId,
    pub seqs: Vec<u32>,
    /// Also publish `job.created` again (reporting has not seen it).
    pub job_created: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayResponse {
    pub v: u32,
    /// How many file events were published again (files the job does not have are skipped).
    pub replayed: u32,
}

/// Request/reply, reporting to ingest: what ingest knows of a job reporting has not seen yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobQuery {
    pub v: u32,
    pub district: DistrictId,
    pub job_id: JobId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobQueryResponse {
    pub v: u32,
    pub job: Option<JobCreated>,
}

/// One uploaded file: its job and its position in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UploadedFile {
    pub job_id: JobId,
    pub seq: u32,
}

/// Request/reply, roster to ingest (`pictureday.ingest.purge`): delete the originals these
/// files were uploaded as, for good (a person's photos purged on request). A loose file's object
/// is deleted; a file inside an uploaded archive cannot be cut out of it, so the whole archive
/// is deleted. Files ingest does not have in that district, and objects already gone, are
/// skipped: asking again is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeOriginals {
    pub v: u32,
    pub district: DistrictId,
    pub files: Vec<UploadedFile>,
    /// Also every file uploaded for this person (`PUT …/people/{person}/photo`), whether or not
    /// it became a photo (a file rejected as no image is theirs too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<PersonId>,
}

/// What ingest deleted for a [`PurgeOriginals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalsPurged {
    pub v: u32,
    /// Objects deleted now (loose files and whole archives).
    pub objects_deleted: u64,
    /// Of those, archives deleted whole because a file of the request was inside one.
    pub archives_deleted: u64,
}

/// `pictureday.job.undone.<district>.<job>` (status stream): a job was undone
/// (`POST …/jobs/{job}/undo`), after the people's photos were put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobUndone {
    pub v: u32,
    pub district: DistrictId,
    pub job_id: JobId,
    /// Who undid it: `operator` or the token's id.
    pub undone_by: String,
    pub undone_at: DateTime<Utc>,
    /// People given back the photo they had before the job.
    pub restored: u32,
    /// People who had no photo before the job, left with none.
    pub cleared: u32,
    /// People whose photo had changed since the job, left as they are.
    pub left_alone: u32,
}

/// `pictureday.roster.sync.<district>.<run>` (status stream): a district's roster source (Clever)
/// started a sync run (`status` `running`) or ended one (`finished` or `failed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterSync {
    pub v: u32,
    pub district: DistrictId,
    pub run_id: String,
    /// `clever`.
    pub source: String,
    /// `full` or `incremental`.
    pub kind: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// `running`, `finished` or `failed`.
    pub status: String,
    pub at: DateTime<Utc>,
    pub created: u64,
    pub updated: u64,
    pub deactivated: u64,
    pub reactivated: u64,
    pub unchanged: u64,
    pub schools: u64,
    pub error_count: u64,
}

/// A dependency a stage needs, named as operators and users read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dependency {
    Database,
    Storage,
    Nats,
    /// The roster service (answering the matcher's lookups).
    Roster,
}

impl Dependency {
    pub fn describe(self) -> &'static str {
        match self {
            Dependency::Database => "database",
            Dependency::Storage => "storage",
            Dependency::Nats => "NATS",
            Dependency::Roster => "roster service",
        }
    }
}

/// Core NATS, not stored: a stage instance waits on a dependency (`waiting_since` set) or has
/// stopped waiting (`None`). Reporting shows it on the jobs that are not final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageHealth {
    pub v: u32,
    pub stage: String,
    pub instance: String,
    pub dependency: Dependency,
    pub waiting_since: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_serialise_with_a_kind_tag() -> anyhow::Result<()> {
        let source = Source::Object {
            key: "d/uploads/j/files/0".into(),
            size: 10,
        };
        let json = serde_json::to_value(&source)?;
        assert_eq!(json["kind"], "object");
        assert_eq!(serde_json::from_value::<Source>(json)?, source);
        Ok(())
    }

    #[test]
    fn decoding_checks_kind_and_version_first() -> anyhow::Result<()> {
        let subject = "pictureday.photo.unmatched.springfield.j1";
        let event = PhotoUnmatched {
            v: SCHEMA_VERSION,
            file: FileRef {
                district: DistrictId::parse("springfield")?,
                job_id: "j1".into(),
                seq: 3,
                file_name: "x.jpg".into(),
                replay: 0,
            },
            reason: "r".into(),
        };
        let payload = serde_json::to_vec(&event)?;
        assert_eq!(decode::<PhotoUnmatched>(subject, &payload)?, event);
        assert!(matches!(
            decode::<PhotoMatched>(subject, &payload),
            Err(DecodeError::WrongSubject { .. })
        ));
        let newer = br#"{"v":4,"something":"else"}"#;
        assert!(matches!(
            decode::<PhotoUnmatched>(subject, newer),
            Err(DecodeError::UnknownVersion { found: 4, .. })
        ));
        // Version 1, written before import options and match rules, is still read.
        let older = br#"{"v":1,"file":{"district":"springfield","job_id":"j1","seq":3,"file_name":"x.jpg"},"source":{"kind":"object","key":"k","size":1},"person_id":"p","matched_by":"student_number","key":"1001"}"#;
        let matched = decode::<PhotoMatched>("pictureday.photo.matched.springfield.j1", older)?;
        assert_eq!(matched.matched_by.describe(), "student number");
        assert_eq!(matched.options, ImportOptions::default());
        assert!(matches!(
            decode::<PhotoUnmatched>(subject, b"{not json"),
            Err(DecodeError::Json { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_chosen_person_is_written_at_version_3_and_read_back() -> anyhow::Result<()> {
        let subject = "pictureday.photo.ingested.springfield.j1";
        let plain = br#"{"v":2,"file":{"district":"springfield","job_id":"j1","seq":0,"file_name":"x.jpg"},"source":{"kind":"object","key":"k","size":1},"has_mapping":false,"mapped_key":null}"#;
        let read = decode::<PhotoIngested>(subject, plain)?;
        assert_eq!(read.chosen_person, None);
        assert_eq!(PhotoIngested::version_for(None), SCHEMA_VERSION);
        let person = PersonId::from("p1");
        let chosen = PhotoIngested {
            v: PhotoIngested::version_for(Some(&person)),
            chosen_person: Some(person),
            ..read
        };
        let json = serde_json::to_value(&chosen)?;
        assert_eq!(
            (json["v"].clone(), json["chosen_person"].clone()),
            (3.into(), "p1".into())
        );
        assert_eq!(
            decode::<PhotoIngested>(subject, &serde_json::to_vec(&chosen)?)?,
            chosen
        );
        Ok(())
    }

    #[test]
    fn a_job_status_always_says_its_options() -> anyhow::Result<()> {
        let v1 = serde_json::json!({
            "v": 1, "district": "springfield", "job_id": "j1", "state": "finished",
            "counts": { "files": 1, "matched": 1, "unmatched": 0, "processed": 1, "rejected": 0,
                        "applied": 1 },
            "created_at": "2026-12-01T10:00:00Z", "started_at": null, "finished_at": null
        });
        let status: JobStatus = serde_json::from_value(v1)?;
        assert_eq!(status.options, ImportOptions::default());
        assert_eq!((status.counts.skipped, status.counts.previewed), (0, 0));
        let written = serde_json::to_value(&status)?;
        assert_eq!(
            written["options"],
            serde_json::json!({ "mode": "apply", "replace": "always" })
        );
        Ok(())
    }

    #[test]
    fn job_states_round_trip() -> anyhow::Result<()> {
        for state in [JobState::Queued, JobState::FinishedWithErrors] {
            let json = serde_json::to_value(state)?;
            assert_eq!(json, state.as_str());
            assert_eq!(serde_json::from_value::<JobState>(json)?, state);
        }
        assert!(serde_json::from_value::<JobState>("done".into()).is_err());
        Ok(())
    }
}

/// Ingest asks roster to import a roster CSV that a district dropped over SFTP
/// (`pictureday.roster.import`), as `POST /v1/districts/{d}/roster` would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterImportRequest {
    pub v: u32,
    pub district: DistrictId,
    /// The name the file was dropped under, for logs.
    pub file_name: String,
    /// Where it is stored (`keys::sftp_roster`); roster deletes it once the import ends.
    pub key: String,
    pub bytes: u64,
}

/// Roster's answer: the import it recorded, or why it recorded none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterImportReply {
    pub import_id: Option<String>,
    pub error: Option<String>,
    /// Set with `error` when roster could not record the import now (its database failed):
    /// ingest keeps the file and asks again. Absent from older rosters' answers.
    #[serde(default)]
    pub retry: bool,
}
