use sea_orm::entity::prelude::*;

/// A file held in an SFTP drop, stored and waiting for its job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sftp_drop_files")]
pub struct Model {
    /// The object the file is stored as.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub job_id: String,
    /// `idphotos` or `data`.
    pub folder: String,
    /// The name it has now (a rename from a temporary name changes it).
    pub name: String,
    pub size: i64,
    /// `photo`, `archive`, `mapping` or `roster`.
    pub kind: String,
    pub added_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
