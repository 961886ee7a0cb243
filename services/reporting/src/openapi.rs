//! Reporting's part of the OpenAPI document: jobs, their logs and the events set aside. The
//! launcher merges it with the other services' parts (`pictureday::openapi`).

use utoipa::{OpenApi, ToSchema};

/// A job's log (the JSON form of the streamed log): one row per file, in upload order.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JobLog {
    #[schema(value_type = Vec<crate::log_stream::LogRow>)]
    items: Vec<serde_json::Value>,
    job_id: String,
}

/// The events about a job's files that were set aside.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DeadLetters {
    job_id: String,
    #[schema(value_type = Vec<crate::api::DeadLetterRow>)]
    items: Vec<serde_json::Value>,
}

/// An event a webhook endpoint may ask for.
#[derive(serde::Serialize, ToSchema)]
pub enum WebhookEventType {
    /// A job's status changed.
    #[serde(rename = "job.status")]
    JobStatus,
    /// One of the district's endpoints was disabled.
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
}

/// Where a webhook delivery stands.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookDeliveryState {
    /// Not delivered yet; attempts go on.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt of the retry schedule failed.
    Failed,
    /// Not sent (any more): the endpoint was disabled.
    Abandoned,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::api::list_jobs,
        crate::api::get_job,
        crate::api::get_log,
        crate::api::get_dead_letters,
        crate::sse::events,
        crate::webhooks::api::create_endpoint,
        crate::webhooks::api::list_endpoints,
        crate::webhooks::api::get_endpoint,
        crate::webhooks::api::delete_endpoint,
        crate::webhooks::api::enable_endpoint,
        crate::webhooks::api::list_deliveries,
    ),
    components(schemas(JobLog, DeadLetters, WebhookEventType, WebhookDeliveryState)),
    tags(
        (name = "jobs", description = "Import jobs: their state and counts, and what happened to every file."),
        (name = "webhooks", description = "Endpoints that receive the district's events, signed, and their deliveries."),
    )
)]
struct ReportingApi;

/// Reporting's routes, documented.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ReportingApi::openapi()
}

#[cfg(test)]
mod tests {
    use pictureday_platform::openapi::{documented_paths, registered_paths};
    use sea_orm::Iterable as _;

    /// The schemas of webhook event types and delivery states name what the API sends.
    #[test]
    fn webhook_schemas_name_the_values_sent() -> anyhow::Result<()> {
        let names = |value: serde_json::Value| -> Vec<String> {
            value["enum"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        let schemas = super::openapi().components.unwrap_or_default().schemas;
        let types = names(serde_json::to_value(&schemas["WebhookEventType"])?);
        let sent: Vec<String> = crate::webhooks::EventType::ALL
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        assert_eq!(types, sent);
        let states = names(serde_json::to_value(&schemas["WebhookDeliveryState"])?);
        let sent: Vec<String> = crate::db::webhook_delivery::DeliveryState::iter()
            .map(|s| serde_json::to_value(s).map(|v| v.as_str().unwrap_or_default().to_owned()))
            .collect::<Result<_, _>>()?;
        assert_eq!(states, sent);
        Ok(())
    }

    /// Every route this service registers is documented, and every documented one registered
    /// (the methods are compared with what the server answers by the end-to-end tests).
    #[test]
    fn every_route_registered_is_documented_and_no_other() -> anyhow::Result<()> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        assert_eq!(registered_paths(&src)?, documented_paths(&super::openapi()));
        Ok(())
    }
}
