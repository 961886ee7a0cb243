use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub district_id: String,
    pub files: i32,
    /// Whether a mapping CSV came with the upload (then only mapped files are matched).
    pub has_mapping: bool,
    /// JSON array of strings.
    #[sea_orm(column_type = "Text")]
    pub warnings: String,
    pub created_at: DateTimeUtc,
    pub mode: pictureday_contract::events::ImportMode,
    #[sea_orm(column_name = "replace_policy")]
    pub replace: pictureday_contract::events::ReplacePolicy,
    /// The photographer's index (`MASTER.TXT`) the upload was matched by, if any.
    pub index_name: Option<String>,
    /// When the upload's original files were deleted, the retention period over.
    pub originals_purged_at: Option<DateTimeUtc>,
    pub originals_purged_objects: Option<i64>,
    /// Set once every event of the job is published; unset jobs are published again at start.
    pub published_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
