//! The event contract between services (documented in docs/events.md). Every event is a JSON
//! document with a schema version `v`; a consumer refuses versions it does not know.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::DistrictId;

pub const SCHEMA_VERSION: u32 = 1;

/// Which file of which upload an event is about. `seq` is the file's position in its job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub district: DistrictId,
    pub job_id: String,
    pub seq: u32,
    pub file_name: String,
}

impl FileRef {
    /// The deterministic `Nats-Msg-Id` for this file's event of one kind.
    pub fn msg_id(&self, kind: &str) -> String {
        format!("{kind}:{}:{}", self.job_id, self.seq)
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
    pub job_id: String,
    pub files: u32,
    pub created_at: DateTime<Utc>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoIngested {
    pub v: u32,
    pub file: FileRef,
    pub source: Source,
    /// Whether the upload came with a mapping CSV; if so, only mapped files are matched.
    pub has_mapping: bool,
    pub mapped_key: Option<MappedKey>,
}

/// Which identifier a file matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    StudentNumber,
    SisId,
    Email,
}

impl MatchedBy {
    pub fn describe(self) -> &'static str {
        match self {
            MatchedBy::StudentNumber => "student number",
            MatchedBy::SisId => "SIS id",
            MatchedBy::Email => "email",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoMatched {
    pub v: u32,
    pub file: FileRef,
    pub source: Source,
    pub person_id: String,
    pub matched_by: MatchedBy,
    pub key: String,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoProcessed {
    pub v: u32,
    pub file: FileRef,
    pub person_id: String,
    pub photo_id: String,
    pub source_format: String,
    pub renditions: Vec<RenditionRef>,
    /// The image-processor instance that did the work (for operations and load tests).
    pub processed_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRejected {
    pub v: u32,
    pub file: FileRef,
    pub person_id: Option<String>,
    pub reason: String,
}

impl PhotoRejected {
    /// The rejection of `file`, ready to publish: every stage that gives up on a file says so
    /// the same way.
    pub fn outgoing(
        stage: &'static str,
        file: &FileRef,
        person_id: Option<String>,
        reason: String,
    ) -> Result<crate::bus::Outgoing, crate::bus::BusError> {
        let mut outgoing = crate::bus::Outgoing::new(
            crate::bus::Kind::Rejected.subject(&file.district, &file.job_id),
            file.msg_id("rejected"),
            &PhotoRejected {
                v: SCHEMA_VERSION,
                file: file.clone(),
                person_id,
                reason,
            },
        )?;
        outgoing.rejected_by = Some(stage);
        Ok(outgoing)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyOutcome {
    /// The person had no photo; this is now their photo.
    Applied,
    /// This photo replaced an older one, which is kept as a previous version.
    Replaced,
    /// Stored as a version, but a newer upload is the person's photo.
    Superseded,
}

impl ApplyOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Applied => "applied",
            ApplyOutcome::Replaced => "replaced",
            ApplyOutcome::Superseded => "superseded",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "applied" => Some(ApplyOutcome::Applied),
            "replaced" => Some(ApplyOutcome::Replaced),
            "superseded" => Some(ApplyOutcome::Superseded),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoApplied {
    pub v: u32,
    pub file: FileRef,
    pub person_id: String,
    pub photo_id: String,
    pub outcome: ApplyOutcome,
    pub previous_photo_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Processing,
    Finished,
    FinishedWithErrors,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Processing => "processing",
            JobState::Finished => "finished",
            JobState::FinishedWithErrors => "finished_with_errors",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            JobState::Queued,
            JobState::Processing,
            JobState::Finished,
            JobState::FinishedWithErrors,
            JobState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::FinishedWithErrors | JobState::Failed
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    pub files: u32,
    pub matched: u32,
    pub unmatched: u32,
    pub processed: u32,
    pub rejected: u32,
    pub applied: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub v: u32,
    pub district: DistrictId,
    pub job_id: String,
    pub state: JobState,
    pub counts: JobCounts,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Request/reply between matcher and roster: resolve many keys of one district at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRequest {
    pub v: u32,
    pub district: DistrictId,
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LookupResult {
    Found {
        person_id: String,
        matched_by: MatchedBy,
    },
    NotFound,
    Ambiguous {
        matched_by: MatchedBy,
        count: u32,
    },
}

/// `results[i]` answers `keys[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupResponse {
    pub v: u32,
    pub results: Vec<LookupResult>,
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
    fn job_states_round_trip() {
        for state in [JobState::Queued, JobState::FinishedWithErrors] {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert_eq!(JobState::parse("done"), None);
    }
}
