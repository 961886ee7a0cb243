use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_status")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: String,
    pub district_id: String,
    pub state: pictureday_contract::events::JobState,
    /// Whether `job.created` has arrived, so `files` is known.
    pub created_seen: bool,
    pub files: i32,
    pub matched: i32,
    pub unmatched: i32,
    pub processed: i32,
    pub rejected: i32,
    pub applied: i32,
    #[sea_orm(column_type = "Text")]
    pub warnings: String,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    /// Events about the job's files that a service set aside (dead letters).
    pub parked: i32,
    /// Files whose events were published again after they stalled.
    pub replayed: i32,
    /// Why the job failed, when it did.
    #[sea_orm(column_type = "Text", nullable)]
    pub failure: Option<String>,
    /// Files whose photo the import's replace policy left alone.
    pub skipped: i32,
    /// Files of a preview that wait to be applied.
    pub previewed: i32,
    /// What the import asked for (from `job.created`).
    pub mode: pictureday_contract::events::ImportMode,
    pub replace: pictureday_contract::events::ReplacePolicy,
    /// The job's undo, when it was undone: roster's `job.undone` as JSON.
    #[sea_orm(column_type = "Text", nullable)]
    pub undo: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
