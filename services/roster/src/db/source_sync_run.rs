use sea_orm::entity::prelude::*;

/// One sync of a district's source (Clever): what triggered it, how far it got and what it did.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "source_sync_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub district_id: String,
    pub source: String,
    /// `full` or `incremental`.
    pub kind: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// `queued`, `running`, `finished` or `failed`.
    pub status: String,
    pub requested_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub created: i64,
    pub updated: i64,
    pub deactivated: i64,
    pub reactivated: i64,
    pub unchanged: i64,
    pub schools: i64,
    pub error_count: i64,
    /// The first errors, as a JSON array.
    pub errors: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
