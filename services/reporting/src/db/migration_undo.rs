//! A job that was undone says so: who undid it, when, and what happened to its people (from
//! roster's `job.undone`), kept as the event's JSON.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) struct Undo;

impl MigrationName for Undo {
    fn name(&self) -> &str {
        "m20261201_000005_reporting_undo"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Undo {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("job_status")
                    .add_column(text_null("undo"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("job_status")
                    .drop_column("undo")
                    .to_owned(),
            )
            .await
    }
}
