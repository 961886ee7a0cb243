//! The access tables' schema, with its own migration history (`seaql_migrations_access`).
//! Tables are created only if absent, so a database made before each service kept its own
//! history adopts them as they are.

use pictureday_platform::db::key_column;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "seaql_migrations_access".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(DistrictRetention),
            Box::new(TokenRoles),
            Box::new(DistrictPhotos),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261201_000001_access"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("districts")
                    .if_not_exists()
                    .col(key_column("id"))
                    .col(string("name"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("api_tokens")
                    .if_not_exists()
                    .col(key_column("token_hash"))
                    .col(string("district_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["api_tokens", "districts"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// A district's own retention period for originals (none: the installation's).
struct DistrictRetention;

impl MigrationName for DistrictRetention {
    fn name(&self) -> &str {
        "m20261201_000002_district_retention"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DistrictRetention {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("districts")
                    .add_column(integer_null("originals_retention_days"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("districts")
                    .drop_column("originals_retention_days")
                    .to_owned(),
            )
            .await
    }
}

/// Tokens gain a public id, a name, a role and an expiry. Tokens made before are admins (what
/// they could do) and get an id from their hash.
struct TokenRoles;

impl MigrationName for TokenRoles {
    fn name(&self) -> &str {
        "m20261201_000003_token_roles"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for TokenRoles {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        let columns = [
            string_null("id"),
            string_null("name"),
            string("role").default("admin").to_owned(),
            timestamp_with_time_zone_null("expires_at"),
        ];
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table("api_tokens")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE api_tokens SET id = 'tok_' || substr(token_hash, 1, 24) WHERE id IS NULL",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("api_tokens_id")
                    .table("api_tokens")
                    .col("id")
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("api_tokens_district")
                    .table("api_tokens")
                    .col("district_id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["api_tokens_id", "api_tokens_district"] {
            manager
                .drop_index(Index::drop().name(index).table("api_tokens").to_owned())
                .await?;
        }
        for column in ["expires_at", "role", "name", "id"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("api_tokens")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Photos on or off for a whole district, and how long the photos of people who left are kept
/// (none: the installation's).
struct DistrictPhotos;

impl MigrationName for DistrictPhotos {
    fn name(&self) -> &str {
        "m20261201_000004_district_photos"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DistrictPhotos {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        let columns = [
            boolean("photos_enabled").default(true).to_owned(),
            timestamp_with_time_zone_null("photos_changed_at"),
            string_null("photos_changed_by"),
            integer_null("inactive_photos_retention_days"),
        ];
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table("districts")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            "inactive_photos_retention_days",
            "photos_changed_by",
            "photos_changed_at",
            "photos_enabled",
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("districts")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
