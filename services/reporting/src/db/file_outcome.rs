use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "file_outcomes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i32,
    pub district_id: String,
    pub file_name: String,
    /// pending, applied, replaced, superseded, unmatched or rejected.
    pub outcome: String,
    pub person_id: Option<String>,
    pub matched_by: Option<String>,
    pub photo_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    pub matched: bool,
    pub unmatched: bool,
    pub processed: bool,
    pub rejected: bool,
    pub applied: bool,
    pub updated_at: DateTimeUtc,
    /// How often the file's events were published again after it stalled.
    pub replays: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
