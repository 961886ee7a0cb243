use sea_orm::entity::prelude::*;

/// An account's SFTP drop: files sent that are not yet a job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sftp_drops")]
pub struct Model {
    /// The job the drop becomes.
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: String,
    pub username: String,
    pub district_id: String,
    pub opened_at: DateTimeUtc,
    pub last_file_at: DateTimeUtc,
    /// Refreshed while a session of the account is open on any replica.
    pub session_seen_at: DateTimeUtc,
    /// The replica making it a job, and since when (`None`: still open to files).
    pub sealing_by: Option<String>,
    pub sealing_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
