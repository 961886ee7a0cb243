//! Roster's schema. Tables are created only if absent, so a database made before each service
//! kept its own migration history adopts them as they are.

use pictureday_platform::db::key_column;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "seaql_migrations_roster".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(MatchingFields),
            Box::new(RosterImports),
            Box::new(super::migration_person_photos::PersonPhotos),
            Box::new(super::migration_sources::Sources),
            Box::new(ImportSpoolKeys),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261201_000001_roster"
    }
}

/// An upload rank: compared with `<` to decide which photo is current, so it must compare byte by
/// byte as in Rust and SQLite, not by PostgreSQL's locale (which may skip punctuation).
fn rank(manager: &SchemaManager, mut column: ColumnDef) -> ColumnDef {
    if manager.get_database_backend() == DbBackend::Postgres {
        column.extra("COLLATE \"C\"");
    }
    column
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("people")
                    .if_not_exists()
                    .col(key_column("id"))
                    .col(string("district_id"))
                    .col(string("role"))
                    .col(string_null("email"))
                    .col(string_null("sis_id"))
                    .col(string_null("student_number"))
                    .col(string("first_name"))
                    .col(string("last_name"))
                    .col(string("school"))
                    .col(string_null("current_photo_id"))
                    .col(rank(manager, string_null("current_photo_rank")))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        for column in ["sis_id", "student_number", "email"] {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(format!("people_district_{column}"))
                        .table("people")
                        .col("district_id")
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("photos")
                    .if_not_exists()
                    .col(key_column("id"))
                    .col(string("district_id"))
                    .col(string("person_id"))
                    .col(string("job_id"))
                    .col(integer("seq"))
                    .col(string("file_name"))
                    .col(rank(manager, string("upload_rank")))
                    .col(text("renditions"))
                    .col(string("outcome"))
                    .col(string_null("previous_photo_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("photos_person")
                    .table("photos")
                    .col("person_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["photos", "people"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// What matching reads besides the first identifiers: state and staff ids, a preferred first
/// name, grade, homeroom and teacher (a photographer's index carries names, grades and
/// homerooms, no ids); and each district's roster generation, which tells the matcher's cached
/// index of a district when the roster has changed.
struct MatchingFields;

impl MigrationName for MatchingFields {
    fn name(&self) -> &str {
        "m20261201_000002_matching_fields"
    }
}

const MATCHING_COLUMNS: [&str; 6] = [
    "state_id",
    "staff_id",
    "preferred_first_name",
    "grade",
    "homeroom",
    "teacher",
];

#[async_trait::async_trait]
impl MigrationTrait for MatchingFields {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in MATCHING_COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table("people")
                        .add_column_if_not_exists(string_null(column))
                        .to_owned(),
                )
                .await?;
        }
        // The missing-photos report reads a district's people in pages in this order; without
        // the index each page sorts the whole district again.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("people_district_report_order")
                    .table("people")
                    .col("district_id")
                    .col("school")
                    .col("last_name")
                    .col("first_name")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("roster_generations")
                    .if_not_exists()
                    .col(key_column("district_id"))
                    .col(big_integer("generation"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("people_district_report_order")
                    .table("people")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table("roster_generations")
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        for column in MATCHING_COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table("people")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Roster uploads become imports run in the background, with their per-row error log.
struct RosterImports;

impl MigrationName for RosterImports {
    fn name(&self) -> &str {
        "m20261201_000003_roster_imports"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RosterImports {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("roster_imports")
                    .if_not_exists()
                    .col(key_column("id"))
                    .col(string("district_id"))
                    .col(string("state"))
                    .col(string("spool_key"))
                    .col(big_integer("bytes"))
                    .col(big_integer("last_row"))
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .col(big_integer("unchanged"))
                    .col(big_integer("rejected_rows"))
                    .col(big_integer("errors"))
                    .col(text_null("error"))
                    .col(string_null("owner"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .to_owned(),
            )
            .await?;
        // A district's imports, newest first (the list) and oldest unfinished first (the worker).
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("roster_imports_district")
                    .table("roster_imports")
                    .col("district_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("roster_imports_state")
                    .table("roster_imports")
                    .col("state")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("roster_import_errors")
                    .if_not_exists()
                    .col(string("import_id"))
                    .col(big_integer("seq"))
                    .col(big_integer("row"))
                    .col(string("field"))
                    .col(text("reason"))
                    .primary_key(Index::create().col("import_id").col("seq"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["roster_import_errors", "roster_imports"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// An SFTP roster CSV asked for again (its first answer was lost) is looked up by its stored
/// file's key: an index, not a scan of every import.
struct ImportSpoolKeys;

impl MigrationName for ImportSpoolKeys {
    fn name(&self) -> &str {
        "m20261202_000006_roster_import_spool_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ImportSpoolKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("roster_imports_spool_key")
                    .table("roster_imports")
                    .col("spool_key")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .if_exists()
                    .name("roster_imports_spool_key")
                    .table("roster_imports")
                    .to_owned(),
            )
            .await
    }
}
