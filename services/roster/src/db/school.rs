use sea_orm::entity::prelude::*;

use super::person::RosterSource;

/// A school of a district. Photos can be turned off per school (nothing is deleted: its people's
/// photo requests get the placeholder until photos are turned on again).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schools")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub district_id: String,
    pub name: String,
    pub source: RosterSource,
    /// The school's id in its source (Clever school id, OneRoster org `sourcedId`); `None` for
    /// schools named by a roster CSV, which are keyed by name.
    pub source_id: Option<String>,
    pub photos_enabled: bool,
    pub photos_changed_at: Option<DateTimeUtc>,
    pub photos_changed_by: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
