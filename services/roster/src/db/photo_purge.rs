use sea_orm::entity::prelude::*;

/// A person's photos deleted for good (`DELETE …/people/{person}/photo?purge=true`): who asked,
/// when, and how much went. It keeps no photo: while a purge is unfinished it names the photos
/// and files still to delete by id, and nothing once it is done.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "photo_purges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub district_id: String,
    pub person_id: String,
    /// `operator` or the token's id.
    pub purged_by: String,
    pub started_at: DateTimeUtc,
    /// Set once every object is deleted; an unfinished purge is resumed by the next request.
    pub finished_at: Option<DateTimeUtc>,
    pub photos_deleted: i64,
    pub renditions_deleted: i64,
    pub originals_deleted: i64,
    /// Of the originals, archives deleted whole (a file inside one cannot be cut out).
    pub archives_deleted: i64,
    /// JSON array of the photo ids whose renditions are still to be deleted.
    #[sea_orm(column_type = "Text")]
    pub pending_photos: String,
    /// JSON array of `events::UploadedFile` whose originals ingest is still to delete.
    #[sea_orm(column_type = "Text")]
    pub pending_files: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
