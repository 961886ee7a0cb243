//! Ingest's schema. Tables are created only if absent, so a database made before each service
//! kept its own migration history adopts them as they are.

use pictureday_platform::db::key_column;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "seaql_migrations_ingest".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(ImportOptionsAndIndexes),
            Box::new(IngestRejections),
            Box::new(OriginalsRetention),
            Box::new(super::migration_one_photo::ChosenPerson),
            Box::new(super::migration_sftp::SftpAccounts),
            Box::new(super::migration_sftp_drops::SftpDrops),
            Box::new(super::migration_resumable::ResumableUploads),
            Box::new(super::migration_sftp_roster_handoffs::SftpRosterHandoffs),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261201_000001_ingest"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("jobs")
                    .if_not_exists()
                    .col(key_column("id"))
                    .col(string("district_id"))
                    .col(integer("files"))
                    .col(boolean("has_mapping"))
                    .col(text("warnings"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("published_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("job_files")
                    .if_not_exists()
                    .col(string("job_id"))
                    .col(integer("seq"))
                    .col(string("district_id"))
                    .col(string("file_name"))
                    .col(text("source"))
                    .col(string_null("mapped_key"))
                    .col(integer_null("mapped_row"))
                    .primary_key(Index::create().col("job_id").col("seq"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["job_files", "jobs"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Import options (preview, replace policy) on jobs; a photographer's index row, or the reason
/// the upload already gives for not matching, on files.
struct ImportOptionsAndIndexes;

impl MigrationName for ImportOptionsAndIndexes {
    fn name(&self) -> &str {
        "m20261201_000002_import_options_and_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ImportOptionsAndIndexes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            ("jobs", string("mode").default("apply").to_owned()),
            (
                "jobs",
                string("replace_policy").default("always").to_owned(),
            ),
            ("jobs", string_null("index_name")),
            ("job_files", text_null("index_entry")),
            ("job_files", text_null("unmatchable")),
        ];
        for (table, mut column) in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column_if_not_exists(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            ("job_files", "unmatchable"),
            ("job_files", "index_entry"),
            ("jobs", "index_name"),
            ("jobs", "replace_policy"),
            ("jobs", "mode"),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The reason ingest rejects a file itself (an archive entry with an unsafe path or damaged data).
struct IngestRejections;

impl MigrationName for IngestRejections {
    fn name(&self) -> &str {
        "m20261201_000003_ingest_rejections"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IngestRejections {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("job_files")
                    .add_column_if_not_exists(text_null("rejected"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("job_files")
                    .drop_column("rejected")
                    .to_owned(),
            )
            .await
    }
}

/// When a job's originals were deleted after the retention period, and how many objects went.
struct OriginalsRetention;

impl MigrationName for OriginalsRetention {
    fn name(&self) -> &str {
        "m20261201_000004_originals_retention"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OriginalsRetention {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            timestamp_with_time_zone_null("originals_purged_at"),
            big_integer_null("originals_purged_objects"),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table("jobs")
                        .add_column_if_not_exists(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["originals_purged_objects", "originals_purged_at"] {
            manager
                .alter_table(Table::alter().table("jobs").drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
