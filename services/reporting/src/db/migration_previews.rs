//! What previews and replace policies add to the job projection: the import's options, and the
//! counts of files skipped by the policy and previewed. Existing jobs were plain imports, so the
//! defaults describe them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) struct Previews;

impl MigrationName for Previews {
    fn name(&self) -> &str {
        "m20261201_000003_reporting_previews"
    }
}

const COUNTS: [&str; 2] = ["skipped", "previewed"];
const OPTIONS: [(&str, &str); 2] = [("mode", "apply"), ("replace", "always")];

#[async_trait::async_trait]
impl MigrationTrait for Previews {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One change per statement: SQLite alters one column at a time.
        let counts = COUNTS.map(|name| integer(name).default(0).to_owned());
        let options = OPTIONS.map(|(name, default)| string(name).default(default).to_owned());
        for column in counts.into_iter().chain(options) {
            manager
                .alter_table(
                    Table::alter()
                        .table("job_status")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COUNTS.into_iter().chain(OPTIONS.map(|(name, _)| name)) {
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
