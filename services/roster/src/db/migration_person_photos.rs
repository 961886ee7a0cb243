//! Purges of a person's photos and undone jobs.

use pictureday_platform::db::key_column;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) struct PersonPhotos;

impl MigrationName for PersonPhotos {
    fn name(&self) -> &str {
        "m20261201_000010_person_photos"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PersonPhotos {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("photo_purges")
                    .if_not_exists()
                    .col(key_column("id"))
                    .col(string("district_id"))
                    .col(string("person_id"))
                    .col(string("purged_by"))
                    .col(timestamp_with_time_zone("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .col(big_integer("photos_deleted"))
                    .col(big_integer("renditions_deleted"))
                    .col(big_integer("originals_deleted"))
                    .col(big_integer("archives_deleted"))
                    .col(text("pending_photos"))
                    .col(text("pending_files"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("photo_purges_district_person")
                    .table("photo_purges")
                    .col("district_id")
                    .col("person_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("job_undos")
                    .if_not_exists()
                    .col(key_column("job_id"))
                    .col(string("district_id"))
                    .col(string("undone_by"))
                    .col(timestamp_with_time_zone("undone_at"))
                    .col(text("restored"))
                    .col(text("cleared"))
                    .col(text("left_alone"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["job_undos", "photo_purges"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
