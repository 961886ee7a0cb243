use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "photos")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub district_id: String,
    pub person_id: String,
    pub job_id: String,
    pub seq: i32,
    pub file_name: String,
    pub upload_rank: String,
    /// JSON array of rendition references (name, width, height, key, bytes).
    #[sea_orm(column_type = "Text")]
    pub renditions: String,
    /// What applying it did.
    pub outcome: pictureday_contract::events::ApplyOutcome,
    pub previous_photo_id: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
