use sea_orm::entity::prelude::*;

/// An event about a job's file that a service could not read or handle, set aside on the
/// dead-letter stream.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dead_letters")]
pub struct Model {
    /// Its sequence in the dead-letter stream: recording it twice changes nothing.
    #[sea_orm(primary_key, auto_increment = false)]
    pub sequence: i64,
    pub district_id: String,
    pub job_id: String,
    /// The consumer that set it aside.
    pub consumer: String,
    /// The subject it was published on.
    pub subject: String,
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
