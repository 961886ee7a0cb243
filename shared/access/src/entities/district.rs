use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "districts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub created_at: DateTimeUtc,
    /// Days this district's originals are kept after their job ends; none: the installation's
    /// `PICTUREDAY_ORIGINALS_RETENTION_DAYS`.
    pub originals_retention_days: Option<i32>,
    /// Off: every photo request for the district's people gets the placeholder (nothing is
    /// deleted).
    pub photos_enabled: bool,
    pub photos_changed_at: Option<DateTimeUtc>,
    pub photos_changed_by: Option<String>,
    /// Days the photos of people who left are kept after they became inactive; none: the
    /// installation's `PICTUREDAY_INACTIVE_RETENTION_DAYS`.
    pub inactive_photos_retention_days: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
