use sea_orm::entity::prelude::*;

/// A job undone (`POST …/jobs/{job}/undo`): who, when, and what it did to each person. A job is
/// undone at most once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_undos")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: String,
    pub district_id: String,
    /// `operator` or the token's id.
    pub undone_by: String,
    pub undone_at: DateTimeUtc,
    /// JSON array: people given back the photo they had before the job.
    #[sea_orm(column_type = "Text")]
    pub restored: String,
    /// JSON array: people who had no photo before the job (or whose earlier one is gone).
    #[sea_orm(column_type = "Text")]
    pub cleared: String,
    /// JSON array: people whose photo changed since the job, with the reason.
    #[sea_orm(column_type = "Text")]
    pub left_alone: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
