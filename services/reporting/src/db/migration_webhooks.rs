//! Webhooks: a district's endpoints, the deliveries of events to them and every attempt.

use pictureday_platform::db::key_column;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) struct Webhooks;

impl MigrationName for Webhooks {
    fn name(&self) -> &str {
        "m20261201_000004_reporting_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Webhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhook_endpoints")
                    .if_not_exists()
                    .col(key_column("id"))
                    .col(string("district_id"))
                    .col(text("url"))
                    .col(text("event_types"))
                    .col(string("secret"))
                    .col(boolean("enabled"))
                    .col(text_null("disabled_reason"))
                    .col(timestamp_with_time_zone_null("disabled_at"))
                    .col(timestamp_with_time_zone_null("failing_since"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("webhook_endpoints_district")
                    .table("webhook_endpoints")
                    .col("district_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_deliveries")
                    .if_not_exists()
                    .col(key_column("id"))
                    .col(string("endpoint_id"))
                    .col(string("district_id"))
                    .col(string("event_type"))
                    .col(string("event_key"))
                    .col(text("payload"))
                    .col(string("state"))
                    .col(integer("attempts"))
                    .col(timestamp_with_time_zone_null("next_attempt_at"))
                    .col(integer_null("last_status"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        // An event is delivered to an endpoint once, however often it is handled.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .unique()
                    .name("webhook_deliveries_event")
                    .table("webhook_deliveries")
                    .col("endpoint_id")
                    .col("event_key")
                    .to_owned(),
            )
            .await?;
        // The sender looks for pending deliveries that are due.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("webhook_deliveries_due")
                    .table("webhook_deliveries")
                    .col("state")
                    .col("next_attempt_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("webhook_deliveries_endpoint")
                    .table("webhook_deliveries")
                    .col("endpoint_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_attempts")
                    .if_not_exists()
                    .col(string("delivery_id"))
                    .col(integer("attempt"))
                    .col(string("endpoint_id"))
                    .col(timestamp_with_time_zone("attempted_at"))
                    .col(integer_null("status"))
                    .col(text_null("error"))
                    .col(big_integer("latency_ms"))
                    .col(text_null("response_excerpt"))
                    .primary_key(Index::create().col("delivery_id").col("attempt"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("webhook_attempts_endpoint")
                    .table("webhook_attempts")
                    .col("endpoint_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "webhook_attempts",
            "webhook_deliveries",
            "webhook_endpoints",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
