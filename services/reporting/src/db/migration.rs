//! Reporting's schema. The first migration creates tables only if absent, so a database made
//! before each service kept its own migration history adopts them as they are.

use pictureday_platform::db::key_column;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "seaql_migrations_reporting".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(Recovery),
            Box::new(super::migration_previews::Previews),
            Box::new(super::migration_webhooks::Webhooks),
            Box::new(super::migration_undo::Undo),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261201_000001_reporting"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("job_status")
                    .if_not_exists()
                    .col(key_column("job_id"))
                    .col(string("district_id"))
                    .col(string("state"))
                    .col(boolean("created_seen"))
                    .col(integer("files"))
                    .col(integer("matched"))
                    .col(integer("unmatched"))
                    .col(integer("processed"))
                    .col(integer("rejected"))
                    .col(integer("applied"))
                    .col(text("warnings"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("job_status_district")
                    .table("job_status")
                    .col("district_id")
                    .col("job_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("file_outcomes")
                    .if_not_exists()
                    .col(string("job_id"))
                    .col(integer("seq"))
                    .col(string("district_id"))
                    .col(string("file_name"))
                    .col(string("outcome"))
                    .col(string_null("person_id"))
                    .col(string_null("matched_by"))
                    .col(string_null("photo_id"))
                    .col(text_null("reason"))
                    .col(boolean("matched"))
                    .col(boolean("unmatched"))
                    .col(boolean("processed"))
                    .col(boolean("rejected"))
                    .col(boolean("applied"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("job_id").col("seq"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["file_outcomes", "job_status"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// What recovery needs: dead letters kept and counted on their job, replays counted, why a job failed, and
/// which jobs are still open (the reconciler reads only those).
struct Recovery;

impl MigrationName for Recovery {
    fn name(&self) -> &str {
        "m20261201_000002_reporting_recovery"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Recovery {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One change per statement: SQLite alters one column at a time.
        for column in [
            integer("parked").default(0).to_owned(),
            integer("replayed").default(0).to_owned(),
            text_null("failure"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("job_status")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("file_outcomes")
                    .add_column(integer("replays").default(0).to_owned())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("dead_letters")
                    .if_not_exists()
                    .col(big_integer("sequence").primary_key())
                    .col(string("district_id"))
                    .col(string("job_id"))
                    .col(string("consumer"))
                    .col(string("subject"))
                    .col(text("reason"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("dead_letters_job")
                    .table("dead_letters")
                    .col("job_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("job_status_state")
                    .table("job_status")
                    .col("state")
                    .col("updated_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("job_status_state")
                    .table("job_status")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("dead_letters").if_exists().to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("file_outcomes")
                    .drop_column("replays")
                    .to_owned(),
            )
            .await?;
        for column in ["failure", "replayed", "parked"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("job_status")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
