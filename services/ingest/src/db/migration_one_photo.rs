//! The person a file was uploaded for (`PUT …/people/{person}/photo`), kept with the file so a
//! replay of it is matched to that person too.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) struct ChosenPerson;

impl MigrationName for ChosenPerson {
    fn name(&self) -> &str {
        "m20261201_000005_chosen_person"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ChosenPerson {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("job_files")
                    .add_column_if_not_exists(string_null("chosen_person"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("job_files")
                    .drop_column("chosen_person")
                    .to_owned(),
            )
            .await
    }
}
