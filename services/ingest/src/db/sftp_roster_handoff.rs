use sea_orm::entity::prelude::*;

/// A roster CSV dropped over SFTP, stored and not yet taken by roster.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sftp_roster_handoffs")]
pub struct Model {
    /// The stored CSV (`keys::sftp_roster`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub district_id: String,
    /// The name it was dropped under.
    pub file_name: String,
    pub size: i64,
    pub added_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
