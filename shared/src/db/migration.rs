use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(InitialSchema)]
    }
}

struct InitialSchema;

impl MigrationName for InitialSchema {
    fn name(&self) -> &str {
        "m20261121_000001_initial_schema"
    }
}

fn id(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .string()
        .not_null()
        .primary_key()
        .to_owned()
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
impl MigrationTrait for InitialSchema {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("districts")
                    .col(id("id"))
                    .col(string("name"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("api_tokens")
                    .col(id("token_hash"))
                    .col(string("district_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("people")
                    .col(id("id"))
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
                    .col(id("id"))
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
                    .name("photos_person")
                    .table("photos")
                    .col("person_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("jobs")
                    .col(id("id"))
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
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("job_status")
                    .col(id("job_id"))
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
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "file_outcomes",
            "job_status",
            "job_files",
            "jobs",
            "photos",
            "people",
            "api_tokens",
            "districts",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
