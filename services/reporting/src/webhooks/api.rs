//! Webhook endpoints and their delivery logs over HTTP:
//! `/v1/districts/{d}/webhooks[/{id}[/enable|/deliveries]]`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pictureday_access::{Auth, Caller, Role};
use pictureday_contract::DistrictId;
use pictureday_platform::http::{ApiError, Page, Paged};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use super::deliver::literal_internal;
use super::sign::Secret;
use super::{EventType, Webhooks};
use crate::db::webhook_delivery::DeliveryState;
use crate::db::{webhook_attempt, webhook_delivery, webhook_endpoint};

/// The most endpoints a district may register.
const MAX_ENDPOINTS: u64 = 20;
/// The longest endpoint URL accepted.
const MAX_URL: usize = 2048;

#[derive(Clone)]
struct ApiState {
    hooks: Webhooks,
    auth: Arc<Auth>,
}

impl FromRef<ApiState> for Arc<Auth> {
    fn from_ref(state: &ApiState) -> Self {
        state.auth.clone()
    }
}

pub(crate) fn router(hooks: Webhooks, auth: Arc<Auth>) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/webhooks",
            get(list_endpoints).post(create_endpoint),
        )
        .route(
            "/v1/districts/{district}/webhooks/{id}",
            get(get_endpoint).delete(delete_endpoint),
        )
        .route(
            "/v1/districts/{district}/webhooks/{id}/enable",
            post(enable_endpoint),
        )
        .route(
            "/v1/districts/{district}/webhooks/{id}/deliveries",
            get(list_deliveries),
        )
        .with_state(ApiState { hooks, auth })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewWebhookEndpoint)]
#[serde(deny_unknown_fields)]
struct NewEndpoint {
    url: String,
    #[schema(value_type = Vec<crate::openapi::WebhookEventType>)]
    event_types: Vec<String>,
    /// `whsec_…`, when the caller brings its own.
    secret: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookEndpoint)]
struct EndpointBody {
    id: String,
    district: String,
    url: String,
    #[schema(value_type = Vec<crate::openapi::WebhookEventType>)]
    event_types: Vec<EventType>,
    enabled: bool,
    disabled_reason: Option<String>,
    disabled_at: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    deliveries_url: String,
    /// Only in the answer that created the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

fn endpoint_body(row: &webhook_endpoint::Model) -> EndpointBody {
    EndpointBody {
        deliveries_url: format!(
            "/v1/districts/{}/webhooks/{}/deliveries",
            row.district_id, row.id
        ),
        id: row.id.clone(),
        district: row.district_id.clone(),
        url: row.url.clone(),
        event_types: EventType::list_of(&row.event_types),
        enabled: row.enabled,
        disabled_reason: row.disabled_reason.clone(),
        disabled_at: row.disabled_at,
        failing_since: row.failing_since,
        created_at: row.created_at,
        secret: None,
    }
}

fn unprocessable(message: String) -> ApiError {
    ApiError::Unprocessable {
        message,
        details: Vec::new(),
    }
}

/// Checks an endpoint URL: http or https, a host, no credentials, and (unless the operator
/// allows them) no internal address written out.
fn check_url(raw: &str, allow_internal: bool) -> Result<String, ApiError> {
    if raw.len() > MAX_URL {
        return Err(unprocessable(format!(
            "url is {} characters long; at most {MAX_URL} are accepted",
            raw.len()
        )));
    }
    let uri: hyper::Uri = raw
        .parse()
        .map_err(|_| unprocessable(format!("url {raw:?} is not a URL")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(unprocessable(format!(
            "url {raw:?} must be an http:// or https:// URL"
        )));
    }
    let Some(authority) = uri.authority() else {
        return Err(unprocessable(format!("url {raw:?} has no host")));
    };
    if authority.as_str().contains('@') {
        return Err(unprocessable(
            "url must not carry credentials (user:password@); receivers check the signature instead"
                .into(),
        ));
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return Err(unprocessable(format!("url {raw:?} has no host")));
    }
    if !allow_internal {
        if let Some((ip, why)) = literal_internal(&uri) {
            return Err(unprocessable(format!(
                "url names {ip}, {why}; this server sends webhooks only to public addresses"
            )));
        }
        if host == "localhost" || host.ends_with(".localhost") {
            return Err(unprocessable(format!(
                "url names {host}, a loopback address; this server sends webhooks only to public addresses"
            )));
        }
    }
    Ok(raw.to_owned())
}

fn check_event_types(names: &[String]) -> Result<Vec<EventType>, ApiError> {
    if names.is_empty() {
        return Err(unprocessable(format!(
            "event_types is empty; name at least one of {}",
            known_types()
        )));
    }
    names
        .iter()
        .map(|name| {
            EventType::parse(name).ok_or_else(|| {
                unprocessable(format!(
                    "event type {name:?} is not known; the types are {}",
                    known_types()
                ))
            })
        })
        .collect::<Result<BTreeSet<_>, _>>()
        .map(|types| types.into_iter().collect())
}

fn known_types() -> String {
    EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Registers a webhook endpoint (admin).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/webhooks",
    tag = "webhooks",
    operation_id = "createWebhook",
    description = "`url`: http or https, a public address; `event_types`: `job.status`, `webhook.disabled`; `secret` (`whsec_…`) optional: one is made when absent. Deliveries are signed with it; it is shown only in this answer. At most 20 endpoints per district.",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield")),
    request_body(content = NewEndpoint, example = json!({"url": "https://hooks.example.org/pictureday", "event_types": ["job.status"]})),
    responses(
        (status = 201, description = "The endpoint, with its `secret` this once.", body = EndpointBody),
        (status = 409, description = "The district has the most endpoints allowed.", body = pictureday_platform::openapi::ErrorBody),
        (status = 422, description = "A bad URL, event type or secret.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn create_endpoint(
    State(state): State<ApiState>,
    caller: Caller,
    Path(raw): Path<String>,
    Json(new): Json<NewEndpoint>,
) -> Result<(StatusCode, Json<EndpointBody>), ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
    let url = check_url(new.url.trim(), state.hooks.settings.allow_private)?;
    let event_types = check_event_types(&new.event_types)?;
    let secret = match &new.secret {
        Some(given) => Secret::parse(given).map_err(|e| unprocessable(e.to_string()))?,
        None => Secret::generate(),
    };
    let names: Vec<&str> = event_types.iter().map(|t| t.as_str()).collect();
    let now = Utc::now();
    let row = webhook_endpoint::Model {
        id: uuid::Uuid::now_v7().to_string(),
        district_id: district.as_str().to_owned(),
        url,
        event_types: serde_json::to_string(&names).map_err(ApiError::internal)?,
        secret: secret.as_str().to_owned(),
        enabled: true,
        disabled_reason: None,
        disabled_at: None,
        failing_since: None,
        created_at: now,
        lease_until: None,
    };
    let txn = pictureday_platform::db::begin_write(&state.hooks.db).await?;
    // Two registrations at once must not both pass the count.
    pictureday_platform::db::lock_key(&txn, "webhooks", district.as_str()).await?;
    let existing = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::DistrictId.eq(district.as_str()))
        .count(&txn)
        .await?;
    if existing >= MAX_ENDPOINTS {
        return Err(ApiError::Conflict(format!(
            "district {district} already has {existing} webhook endpoints, the most allowed; delete one first"
        )));
    }
    webhook_endpoint::Entity::insert(sea_orm::IntoActiveModel::into_active_model(row.clone()))
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    tracing::info!(endpoint = row.id, %district, url = row.url, "webhook endpoint registered");
    let mut body = endpoint_body(&row);
    body.secret = Some(secret.as_str().to_owned());
    Ok((StatusCode::CREATED, Json(body)))
}

/// The district's webhook endpoints, newest first (admin).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/webhooks",
    tag = "webhooks",
    operation_id = "listWebhooks",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), Page),
    responses((status = 200, description = "A page of endpoints.", body = Paged<EndpointBody>, example = json!({"items": [{"id": "0196f1c6-0000-7c4e-8a1b-2c3d4e5f6a7b", "district": "springfield", "url": "https://hooks.example.org/pictureday", "event_types": ["job.status"], "enabled": true, "disabled_reason": null, "disabled_at": null, "failing_since": null, "created_at": "2026-11-30T10:00:00Z", "deliveries_url": "/v1/districts/springfield/webhooks/0196f1c6-0000-7c4e-8a1b-2c3d4e5f6a7b/deliveries"}], "next_after": null})))
)]
async fn list_endpoints(
    State(state): State<ApiState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<EndpointBody>>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
    let limit = page.limit()?;
    let mut query = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::DistrictId.eq(district.as_str()))
        .order_by_desc(webhook_endpoint::Column::Id)
        .limit(limit);
    if let Some(after) = page.after()? {
        query = query.filter(webhook_endpoint::Column::Id.lt(after));
    }
    let rows = query.all(&state.hooks.db).await?;
    let next_after = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    Ok(Json(Paged {
        items: rows.iter().map(endpoint_body).collect(),
        next_after,
    }))
}

/// The district's endpoint `id`, or `404`.
async fn find_endpoint(
    state: &ApiState,
    district: &DistrictId,
    id: &str,
) -> Result<webhook_endpoint::Model, ApiError> {
    webhook_endpoint::Entity::find_by_id(id)
        .filter(webhook_endpoint::Column::DistrictId.eq(district.as_str()))
        .one(&state.hooks.db)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("no webhook endpoint {id:?} in district {district}"))
        })
}

/// One webhook endpoint (admin).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/webhooks/{id}",
    tag = "webhooks",
    operation_id = "getWebhook",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("id" = String, Path, description = "The endpoint's id.")),
    responses((status = 200, description = "The endpoint.", body = EndpointBody, example = json!({"id": "0196f1c6-0000-7c4e-8a1b-2c3d4e5f6a7b", "district": "springfield", "url": "https://hooks.example.org/pictureday", "event_types": ["job.status"], "enabled": true, "disabled_reason": null, "disabled_at": null, "failing_since": null, "created_at": "2026-11-30T10:00:00Z", "deliveries_url": "/v1/districts/springfield/webhooks/0196f1c6-0000-7c4e-8a1b-2c3d4e5f6a7b/deliveries"})))
)]
async fn get_endpoint(
    State(state): State<ApiState>,
    caller: Caller,
    Path((raw, id)): Path<(String, String)>,
) -> Result<Json<EndpointBody>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
    Ok(Json(endpoint_body(
        &find_endpoint(&state, &district, &id).await?,
    )))
}

/// Deletes a webhook endpoint and its delivery log (admin).
#[utoipa::path(
    delete,
    path = "/v1/districts/{district}/webhooks/{id}",
    tag = "webhooks",
    operation_id = "deleteWebhook",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("id" = String, Path, description = "The endpoint's id.")),
    responses((status = 204, description = "Deleted."))
)]
async fn delete_endpoint(
    State(state): State<ApiState>,
    caller: Caller,
    Path((raw, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
    let endpoint = find_endpoint(&state, &district, &id).await?;
    // Its log goes with it: nothing can read it once the endpoint is gone.
    let txn = pictureday_platform::db::begin_write(&state.hooks.db).await?;
    webhook_attempt::Entity::delete_many()
        .filter(webhook_attempt::Column::EndpointId.eq(endpoint.id.as_str()))
        .exec(&txn)
        .await?;
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id.as_str()))
        .exec(&txn)
        .await?;
    webhook_endpoint::Entity::delete_by_id(endpoint.id.as_str())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    tracing::info!(endpoint = endpoint.id, %district, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a disabled endpoint again: events from now on are delivered; what was abandoned
/// stays so.
/// Enables a disabled webhook endpoint again (admin).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/webhooks/{id}/enable",
    tag = "webhooks",
    operation_id = "enableWebhook",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("id" = String, Path, description = "The endpoint's id.")),
    responses((status = 200, description = "The endpoint, enabled.", body = EndpointBody))
)]
async fn enable_endpoint(
    State(state): State<ApiState>,
    caller: Caller,
    Path((raw, id)): Path<(String, String)>,
) -> Result<Json<EndpointBody>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
    let endpoint = find_endpoint(&state, &district, &id).await?;
    pictureday_platform::db::write(
        &state.hooks.db,
        webhook_endpoint::Entity::update_many()
            .col_expr(webhook_endpoint::Column::Enabled, Expr::value(true))
            .col_expr(
                webhook_endpoint::Column::DisabledReason,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                webhook_endpoint::Column::DisabledAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                webhook_endpoint::Column::FailingSince,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(webhook_endpoint::Column::Id.eq(endpoint.id.as_str())),
    )
    .await?;
    let endpoint = find_endpoint(&state, &district, &id).await?;
    Ok(Json(endpoint_body(&endpoint)))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDelivery)]
struct DeliveryBody {
    /// The `webhook-id` the receiver saw.
    id: String,
    event_type: String,
    #[schema(value_type = crate::openapi::WebhookDeliveryState)]
    state: DeliveryState,
    next_attempt_at: Option<DateTime<Utc>>,
    last_status: Option<i32>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The body sent.
    payload: serde_json::Value,
    attempts: Vec<AttemptBody>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookAttempt)]
struct AttemptBody {
    attempt: i32,
    attempted_at: DateTime<Utc>,
    status: Option<i32>,
    error: Option<String>,
    latency_ms: i64,
    response_excerpt: Option<String>,
}

/// An endpoint's deliveries and their attempts, newest first (admin).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/webhooks/{id}/deliveries",
    tag = "webhooks",
    operation_id = "listWebhookDeliveries",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("id" = String, Path, description = "The endpoint's id."), Page),
    responses((status = 200, description = "A page of deliveries.", body = Paged<DeliveryBody>))
)]
async fn list_deliveries(
    State(state): State<ApiState>,
    caller: Caller,
    Path((raw, id)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<DeliveryBody>>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
    let endpoint = find_endpoint(&state, &district, &id).await?;
    let limit = page.limit()?;
    let mut query = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id.as_str()))
        .order_by_desc(webhook_delivery::Column::Id)
        .limit(limit);
    if let Some(after) = page.after()? {
        query = query.filter(webhook_delivery::Column::Id.lt(after));
    }
    let rows = query.all(&state.hooks.db).await?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut attempts: HashMap<String, Vec<AttemptBody>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let found = webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::DeliveryId.is_in(chunk.iter().copied()))
            .order_by_asc(webhook_attempt::Column::Attempt)
            .all(&state.hooks.db)
            .await?;
        for a in found {
            attempts
                .entry(a.delivery_id.clone())
                .or_default()
                .push(AttemptBody {
                    attempt: a.attempt,
                    attempted_at: a.attempted_at,
                    status: a.status,
                    error: a.error,
                    latency_ms: a.latency_ms,
                    response_excerpt: a.response_excerpt,
                });
        }
    }
    let next_after = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    let items = rows
        .into_iter()
        .map(|row| DeliveryBody {
            attempts: attempts.remove(&row.id).unwrap_or_default(),
            payload: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
            id: row.id,
            event_type: row.event_type,
            state: row.state,
            next_attempt_at: row.next_attempt_at,
            last_status: row.last_status,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
        .collect();
    Ok(Json(Paged { items, next_after }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str, allow_internal: bool) -> Option<String> {
        check_url(url, allow_internal).err().map(|e| e.to_string())
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(refused("https://hooks.example.com/pictureday", false), None);
        assert_eq!(refused("http://127.0.0.1:9000/x", true), None);
        for (url, says) in [
            ("ftp://hooks.example.com/x", "http:// or https://"),
            ("https://user:pw@hooks.example.com/x", "credentials"),
            ("http://127.0.0.1:9000/x", "127.0.0.1, a loopback address"),
            ("http://[::1]/x", "::1, a loopback address"),
            ("http://169.254.169.254/latest", "a link-local address"),
            ("http://localhost:8080/x", "localhost, a loopback address"),
            ("/relative", "http:// or https://"),
            ("not a url", "not a URL"),
        ] {
            let message = refused(url, false);
            assert!(
                message.as_deref().is_some_and(|m| m.contains(says)),
                "{url}: {message:?}"
            );
        }
    }

    #[test]
    fn event_types_must_be_known() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(
            check_event_types(&names(&["job.status", "job.status"]))
                .is_ok_and(|t| t == vec![EventType::JobStatus])
        );
        assert!(check_event_types(&[]).is_err());
        let unknown = check_event_types(&names(&["job.created"])).map_err(|e| e.to_string());
        assert!(
            matches!(&unknown, Err(m) if m.contains("\"job.created\" is not known")),
            "{unknown:?}"
        );
    }
}
