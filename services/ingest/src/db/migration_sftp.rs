//! SFTP accounts: one district's way in over SFTP, by password and/or public keys.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) struct SftpAccounts;

impl MigrationName for SftpAccounts {
    fn name(&self) -> &str {
        "m20261201_000006_sftp_accounts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SftpAccounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sftp_accounts")
                    .if_not_exists()
                    // User names are unique across districts: the name alone says whose
                    // folder a login opens.
                    .col(string("username").primary_key())
                    .col(string("district_id"))
                    // An Argon2 PHC string; never the password.
                    .col(string_null("password_hash"))
                    // JSON array of OpenSSH public keys.
                    .col(text("public_keys"))
                    .col(boolean("disabled"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("rotated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("sftp_accounts_district")
                    .table("sftp_accounts")
                    .col("district_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("sftp_accounts").if_exists().to_owned())
            .await
    }
}
