//! Resumable uploads: a large zip sent in pieces over as many requests as it takes, each piece
//! stored as it arrives, so an interrupted upload goes on from the last byte stored.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) struct ResumableUploads;

impl MigrationName for ResumableUploads {
    fn name(&self) -> &str {
        "m20261201_000008_resumable_uploads"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ResumableUploads {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("resumable_uploads")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("district_id"))
                    .col(string("file_name"))
                    .col(big_integer("size"))
                    // Bytes stored so far: where the next piece starts.
                    .col(big_integer("received"))
                    // What the client says identifies the file (a hash of its start, say), so
                    // it can find its upload again after an interruption.
                    .col(string_null("fingerprint"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    // The job it became (set when the import begins).
                    .col(string_null("job_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("resumable_uploads_district")
                    .table("resumable_uploads")
                    .col("district_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("resumable_upload_pieces")
                    .if_not_exists()
                    .col(string("key").primary_key())
                    .col(string("upload_id"))
                    .col(big_integer("start"))
                    .col(big_integer("length"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("resumable_upload_pieces_upload")
                    .table("resumable_upload_pieces")
                    .col("upload_id")
                    .col("start")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["resumable_upload_pieces", "resumable_uploads"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
