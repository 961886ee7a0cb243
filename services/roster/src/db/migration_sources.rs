//! Roster sources and the people lifecycle: schools as entities, each person's status and the
//! source that keeps them, Clever settings, sync runs and the Clever events already applied.

use pictureday_platform::db::key_column;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) struct Sources;

impl MigrationName for Sources {
    fn name(&self) -> &str {
        "m20261201_000011_sources"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Sources {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            string("status").default("active").to_owned(),
            timestamp_with_time_zone_null("inactive_since"),
            string("source").default("csv").to_owned(),
            string_null("source_id"),
            timestamp_with_time_zone_null("source_seen_at"),
        ];
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table("people")
                        .add_column_if_not_exists(column)
                        .to_owned(),
                )
                .await?;
        }
        // Roster imports of OneRoster zips: what they did beyond the CSV's counts, the district's
        // identifier mapping, and which file of the zip each row error is in.
        let import_columns = [
            string_null("format"),
            text_null("options"),
            big_integer("deactivated").default(0).to_owned(),
            big_integer("reactivated").default(0).to_owned(),
            big_integer("ignored").default(0).to_owned(),
        ];
        for column in import_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table("roster_imports")
                        .add_column_if_not_exists(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("roster_import_errors")
                    .add_column_if_not_exists(string_null("file"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "people_district_source",
            "people",
            &["district_id", "source", "source_id"],
        )
        .await?;
        index(
            manager,
            "people_district_status",
            "people",
            &["district_id", "status", "inactive_since"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("schools")
                    .if_not_exists()
                    .col(key_column("id"))
                    .col(string("district_id"))
                    .col(string("name"))
                    .col(string("source"))
                    .col(string_null("source_id"))
                    .col(boolean("photos_enabled").default(true))
                    .col(timestamp_with_time_zone_null("photos_changed_at"))
                    .col(string_null("photos_changed_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "schools_district_source",
            "schools",
            &["district_id", "source", "source_id"],
        )
        .await?;
        index(
            manager,
            "schools_district_name",
            "schools",
            &["district_id", "name"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("person_schools")
                    .if_not_exists()
                    .col(string("person_id"))
                    .col(string("school_id"))
                    .col(string("district_id"))
                    .primary_key(Index::create().col("person_id").col("school_id"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "person_schools_school",
            "person_schools",
            &["school_id", "person_id"],
        )
        .await?;
        backfill_schools(manager).await?;

        manager
            .create_table(
                Table::create()
                    .table("clever_sources")
                    .if_not_exists()
                    .col(key_column("district_id"))
                    // The district's bearer token, sealed (`sources::secret`); never returned.
                    .col(text("token_sealed"))
                    .col(string("base_url"))
                    .col(big_integer("interval_secs"))
                    .col(boolean("enabled").default(true))
                    // The id of the last Clever event applied: incremental syncs start after it.
                    .col(string_null("event_cursor"))
                    .col(timestamp_with_time_zone_null("last_full_sync_at"))
                    .col(timestamp_with_time_zone("next_run_at"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("source_sync_runs")
                    .if_not_exists()
                    .col(key_column("id"))
                    .col(string("district_id"))
                    .col(string("source"))
                    .col(string("kind"))
                    .col(string("trigger"))
                    .col(string("status"))
                    .col(timestamp_with_time_zone("requested_at"))
                    .col(timestamp_with_time_zone_null("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .col(big_integer("created").default(0))
                    .col(big_integer("updated").default(0))
                    .col(big_integer("deactivated").default(0))
                    .col(big_integer("reactivated").default(0))
                    .col(big_integer("unchanged").default(0))
                    .col(big_integer("schools").default(0))
                    .col(big_integer("error_count").default(0))
                    // The first errors, as JSON: [{"kind", "message", "record"?}].
                    .col(text("errors"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "source_sync_runs_district",
            "source_sync_runs",
            &["district_id", "requested_at"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("source_events_applied")
                    .if_not_exists()
                    .col(string("district_id"))
                    .col(string("event_id"))
                    .col(timestamp_with_time_zone("applied_at"))
                    .primary_key(Index::create().col("district_id").col("event_id"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "source_events_applied",
            "source_sync_runs",
            "clever_sources",
            "person_schools",
            "schools",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &'static str,
    columns: &[&'static str],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(table);
    for column in columns {
        index.col(*column);
    }
    manager.create_index(index.to_owned()).await
}

/// People imported before schools were entities: each district's school names become schools
/// and people their members, as a roster CSV naming them would have made them.
async fn backfill_schools(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let names = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT DISTINCT district_id, school FROM people WHERE school <> '' \
             AND NOT EXISTS (SELECT 1 FROM schools s WHERE s.district_id = people.district_id \
             AND s.name = people.school)",
        ))
        .await?;
    let now = chrono::Utc::now();
    for row in names {
        let district: String = row.try_get("", "district_id")?;
        let name: String = row.try_get("", "school")?;
        let mut insert = Query::insert();
        insert
            .into_table("schools")
            .columns([
                "id",
                "district_id",
                "name",
                "source",
                "photos_enabled",
                "created_at",
                "updated_at",
            ])
            .values([
                uuid::Uuid::new_v4().to_string().into(),
                district.into(),
                name.into(),
                "csv".into(),
                true.into(),
                now.into(),
                now.into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        db.execute(&insert).await?;
    }
    db.execute_raw(Statement::from_string(
        backend,
        "INSERT INTO person_schools (person_id, school_id, district_id) \
         SELECT p.id, s.id, p.district_id FROM people p \
         JOIN schools s ON s.district_id = p.district_id AND s.name = p.school \
         WHERE NOT EXISTS (SELECT 1 FROM person_schools ps WHERE ps.person_id = p.id)",
    ))
    .await?;
    Ok(())
}
