//! SFTP drops kept in the database: the files an account has sent that are not yet a job. Any
//! ingest replica adds to an account's open drop and any one of them makes it a job, so a drop
//! survives the process that received it and replicas never split one drop into several jobs.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) struct SftpDrops;

impl MigrationName for SftpDrops {
    fn name(&self) -> &str {
        "m20261201_000007_sftp_drops"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SftpDrops {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sftp_drops")
                    .if_not_exists()
                    // The job the drop becomes: its files are stored under its upload prefix.
                    .col(string("job_id").primary_key())
                    .col(string("username"))
                    .col(string("district_id"))
                    .col(timestamp_with_time_zone("opened_at"))
                    .col(timestamp_with_time_zone("last_file_at"))
                    // Refreshed while a session of the account is open on any replica: the
                    // quiet period runs from the end of the last session.
                    .col(timestamp_with_time_zone("session_seen_at"))
                    // Set by the replica making the drop a job; a claim older than a few
                    // minutes belongs to a replica that stopped, and is taken over.
                    .col(string_null("sealing_by"))
                    .col(timestamp_with_time_zone_null("sealing_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("sftp_drops_username")
                    .table("sftp_drops")
                    .col("username")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("sftp_drop_files")
                    .if_not_exists()
                    // The object the file is stored as.
                    .col(string("key").primary_key())
                    .col(string("job_id"))
                    .col(string("folder"))
                    .col(string("name"))
                    .col(big_integer("size"))
                    .col(string("kind"))
                    .col(timestamp_with_time_zone("added_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("sftp_drop_files_job")
                    .table("sftp_drop_files")
                    .col("job_id")
                    .col("folder")
                    .col("name")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["sftp_drop_files", "sftp_drops"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
