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
        vec![Box::new(Initial)]
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
