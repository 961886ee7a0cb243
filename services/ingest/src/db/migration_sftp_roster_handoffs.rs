//! Roster CSVs dropped over SFTP that roster has not yet taken: kept until roster answers, so a
//! roster outage delays the import instead of refusing the file.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) struct SftpRosterHandoffs;

impl MigrationName for SftpRosterHandoffs {
    fn name(&self) -> &str {
        "m20261202_000009_sftp_roster_handoffs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SftpRosterHandoffs {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sftp_roster_handoffs")
                    .if_not_exists()
                    // The stored CSV (`keys::sftp_roster`).
                    .col(string("key").primary_key())
                    .col(string("district_id"))
                    .col(string("file_name"))
                    .col(big_integer("size"))
                    .col(timestamp_with_time_zone("added_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table("sftp_roster_handoffs")
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
