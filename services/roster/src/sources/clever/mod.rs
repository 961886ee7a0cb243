//! Clever: a district's people and schools kept current from Clever's Data API v3.1.
//!
//! An operator or the district's admin configures the district's bearer token
//! (`PUT /v1/districts/{d}/sources/clever`, kept sealed: `sources::secret`). The first sync is
//! full: `/v3.1/schools`, then `/v3.1/users` page by page, people keyed by their Clever id, and
//! every Clever person not listed deactivated. Later syncs read `/v3.1/events` after the saved
//! cursor, apply each event once and move the cursor in the same transaction; a cursor the feed
//! no longer has (older than its 30-day retention) means a full sync again. Syncs run on each
//! district's schedule (`schedule`) and on demand (`POST …/sources/clever/sync`), one at a time
//! per district across replicas; every run is recorded with its counts and errors and announced
//! as `roster.sync` events.

pub mod api;
pub mod client;
pub mod model;
pub mod schedule;
pub mod sync;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::db::source_sync_run;
use crate::sources::people::SyncCounts;

/// The `source` of a Clever run.
pub const SOURCE: &str = "clever";
/// Clever keeps events this long.
pub const EVENT_RETENTION_DAYS: i64 = 30;
/// Errors kept on a run (every one is counted).
pub const MAX_RUN_ERRORS: usize = 100;

/// What a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Every school and user.
    Full,
    /// The events after the saved cursor.
    Incremental,
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    Schedule,
    Manual,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Finished,
    Failed,
}

macro_rules! str_enum {
    ($ty:ty { $($variant:ident => $s:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

str_enum!(RunKind { Full => "full", Incremental => "incremental" });
str_enum!(RunTrigger { Schedule => "schedule", Manual => "manual" });
str_enum!(RunStatus { Queued => "queued", Running => "running", Finished => "finished", Failed => "failed" });

/// One error of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunError {
    /// `unauthorized`, `cursor_expired`, `http_status`, `unreachable`, `unreadable`,
    /// `unnamed_user`, `unreadable_event`, `database`, `interrupted`, `empty_listing`.
    pub kind: String,
    pub message: String,
    /// The Clever id of the record (user, event) it is about, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// A sync run as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncRunBody {
    pub id: String,
    pub district: String,
    /// `clever`.
    pub source: String,
    pub kind: RunKind,
    pub trigger: RunTrigger,
    pub status: RunStatus,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// People created, updated, deactivated, reactivated and listed unchanged.
    pub counts: SyncCounts,
    /// Schools listed (a full sync) or changed by events (an incremental one).
    pub schools: u64,
    pub error_count: u64,
    /// The first errors (at most 100).
    pub errors: Vec<RunError>,
}

impl From<source_sync_run::Model> for SyncRunBody {
    fn from(run: source_sync_run::Model) -> Self {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Self {
            counts: SyncCounts {
                created: n(run.created),
                updated: n(run.updated),
                deactivated: n(run.deactivated),
                reactivated: n(run.reactivated),
                unchanged: n(run.unchanged),
            },
            schools: n(run.schools),
            error_count: n(run.error_count),
            errors: serde_json::from_str(&run.errors).unwrap_or_default(),
            kind: RunKind::parse(&run.kind).unwrap_or(RunKind::Full),
            trigger: RunTrigger::parse(&run.trigger).unwrap_or(RunTrigger::Schedule),
            status: RunStatus::parse(&run.status).unwrap_or(RunStatus::Failed),
            id: run.id,
            district: run.district_id,
            source: run.source,
            requested_at: run.requested_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
        }
    }
}
