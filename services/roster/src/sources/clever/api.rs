//! `PUT /v1/districts/{d}/sources/clever` configures a district's Clever source (the token is
//! sealed, never returned or logged), `GET` shows its settings and last runs, and
//! `POST …/sources/clever/sync` asks for a sync now (what a Clever webhook handler or a dashboard
//! calls). Admins (and the operator) configure and sync; viewers read.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pictureday_access::{Auth, Caller, Role};
use pictureday_platform::db::{begin_write, lock_key};
use pictureday_platform::http::ApiError;
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};

use super::schedule::{Schedule, insertable, new_run};
use super::sync::queued_runs;
use super::{RunStatus, RunTrigger, SOURCE, SyncRunBody};
use crate::db::{clever_source, source_sync_run};
use crate::imports::db_time;

/// Clever's API when none is given.
pub const DEFAULT_BASE_URL: &str = "https://api.clever.com";
/// Runs `GET` shows.
const RUNS_SHOWN: u64 = 20;
/// The shortest interval a district may set.
const MIN_INTERVAL_SECS: u64 = 60;
/// The longest `?wait=` a sync request may ask for.
const MAX_WAIT_SECS: u64 = 60;

#[derive(Clone)]
pub struct CleverState {
    pub db: DatabaseConnection,
    pub auth: Arc<Auth>,
    pub schedule: Schedule,
    /// `PICTUREDAY_CLEVER_INTERVAL_SECS`.
    pub default_interval: Duration,
}

impl FromRef<CleverState> for Arc<Auth> {
    fn from_ref(state: &CleverState) -> Self {
        state.auth.clone()
    }
}

pub fn router(state: CleverState) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/sources/clever",
            put(configure).get(show),
        )
        .route(
            "/v1/districts/{district}/sources/clever/sync",
            post(sync_now),
        )
        .with_state(state)
}

/// A district's Clever connection, as configured.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CleverSourceRequest {
    /// The district's Clever bearer token (a district-app token). Kept sealed; never shown.
    token: String,
    /// Where Clever's API is (default `https://api.clever.com`); `/v3.1/…` is appended.
    #[serde(default)]
    base_url: Option<String>,
    /// Seconds between scheduled syncs (at least 60; default the server's
    /// `PICTUREDAY_CLEVER_INTERVAL_SECS`, 900).
    #[serde(default)]
    interval_secs: Option<u64>,
    /// `false` stops scheduled syncs (a sync may still be asked for). Default `true`.
    #[serde(default)]
    enabled: Option<bool>,
}

/// A district's Clever source: its settings (never the token) and its latest runs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CleverSourceBody {
    district: String,
    base_url: String,
    /// Always `true`: a token is stored (sealed); it is never shown.
    token_set: bool,
    interval_secs: i64,
    enabled: bool,
    /// The last Clever event applied (`null` until a full sync has run).
    event_cursor: Option<String>,
    last_full_sync_at: Option<DateTime<Utc>>,
    next_run_at: DateTime<Utc>,
    /// Until when a worker holds the district (a sync is running).
    syncing_until: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The latest runs, newest first (at most 20).
    runs: Vec<SyncRunBody>,
}

const DISTRICT_PARAM: &str = "The district's id (`a-z`, `0-9`, `-`).";

/// Configures the district's Clever source (operator or admin).
#[utoipa::path(
    put,
    path = "/v1/districts/{district}/sources/clever",
    tag = "sources",
    operation_id = "putCleverSource",
    description = "Stores the district's Clever token sealed (AES-256-GCM) and schedules a sync: at once when the source is new. The token is never returned or logged. Changing `base_url` starts over with a full sync.",
    params(("district" = String, Path, description = DISTRICT_PARAM, example = "springfield")),
    request_body(content = CleverSourceRequest, example = json!({"token": "c1e2v3e4r5…", "base_url": "https://api.clever.com", "interval_secs": 900})),
    responses(
        (status = 200, description = "Updated.", body = CleverSourceBody),
        (status = 201, description = "Created; the first (full) sync starts at once.", body = CleverSourceBody,
            example = json!({"district": "springfield", "base_url": "https://api.clever.com", "token_set": true, "interval_secs": 900, "enabled": true, "event_cursor": null, "last_full_sync_at": null, "next_run_at": "2026-12-01T10:00:00Z", "syncing_until": null, "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z", "runs": []})),
        (status = 422, description = "No token, a base URL that is not http(s), or an interval under 60 s.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn configure(
    State(state): State<CleverState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<CleverSourceBody>), ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
    let request: CleverSourceRequest = serde_json::from_slice(&body).map_err(|e| {
        // serde's message may quote the body; the token must not be echoed.
        let message = if e.is_syntax() || e.is_eof() {
            "the body is not JSON".to_owned()
        } else {
            let text = e.to_string();
            text.split(" at line ")
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        unprocessable(format!(
            "{message}; send {{\"token\": \"…\", \"base_url\": \"https://api.clever.com\", \
             \"interval_secs\": 900}} (base_url and interval_secs optional)"
        ))
    })?;
    let token = request.token.trim();
    if token.is_empty() || token.len() > 4096 || token.chars().any(|c| c.is_control() || c == ' ') {
        return Err(unprocessable(
            "token: give the district's Clever bearer token (no spaces, at most 4096 characters)",
        ));
    }
    let base_url = base_url(request.base_url.as_deref())?;
    let interval = match request.interval_secs {
        None => i64::try_from(state.default_interval.as_secs()).unwrap_or(900),
        Some(secs) if (MIN_INTERVAL_SECS..=7 * 86_400).contains(&secs) => {
            i64::try_from(secs).unwrap_or(900)
        }
        Some(_) => {
            return Err(unprocessable(format!(
                "interval_secs: from {MIN_INTERVAL_SECS} to 604800 seconds"
            )));
        }
    };
    let sealed = state
        .schedule
        .syncer
        .keys
        .seal(district.as_str(), token)
        .map_err(ApiError::internal)?;
    let now = db_time(Utc::now());
    let txn = begin_write(&state.db).await?;
    lock_key(&txn, "clever-sync-claim", district.as_str()).await?;
    let existing = clever_source::Entity::find_by_id(district.as_str().to_owned())
        .one(&txn)
        .await?;
    let created = existing.is_none();
    let model = match existing {
        Some(existing) => {
            let moved = existing.base_url != base_url;
            let mut model: clever_source::ActiveModel = existing.into();
            model.token_sealed = Set(sealed);
            model.base_url = Set(base_url);
            model.interval_secs = Set(interval);
            model.enabled = Set(request.enabled.unwrap_or(true));
            if moved {
                // Another Clever: its events do not follow from this cursor.
                model.event_cursor = Set(None);
                model.next_run_at = Set(now);
            }
            model.updated_at = Set(now);
            clever_source::Entity::update(model).exec(&txn).await?
        }
        None => {
            let model = clever_source::Model {
                district_id: district.as_str().to_owned(),
                token_sealed: sealed,
                base_url,
                interval_secs: interval,
                enabled: request.enabled.unwrap_or(true),
                event_cursor: None,
                last_full_sync_at: None,
                next_run_at: now,
                lease_until: None,
                created_at: now,
                updated_at: now,
            };
            clever_source::Entity::insert(
                clever_source::ActiveModel::from(model.clone()).reset_all(),
            )
            .exec_without_returning(&txn)
            .await?;
            model
        }
    };
    txn.commit().await?;
    tracing::info!(%district, base_url = %model.base_url, interval_secs = model.interval_secs, by = %caller.who(), created, "Clever source configured");
    state.schedule.wake.notify_one();
    let body = source_body(&state.db, model).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)))
}

/// The district's Clever source and its latest runs (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/sources/clever",
    tag = "sources",
    operation_id = "getCleverSource",
    params(("district" = String, Path, description = DISTRICT_PARAM, example = "springfield")),
    responses(
        (status = 200, description = "The settings (never the token) and the latest runs, newest first.", body = CleverSourceBody,
            example = json!({"district": "springfield", "base_url": "https://api.clever.com", "token_set": true, "interval_secs": 900, "enabled": true, "event_cursor": "6565a9e0c0ffee0001", "last_full_sync_at": "2026-12-01T10:00:00Z", "next_run_at": "2026-12-01T10:15:02Z", "syncing_until": null, "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z", "runs": [{"id": "0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "district": "springfield", "source": "clever", "kind": "full", "trigger": "schedule", "status": "finished", "requested_at": "2026-12-01T10:00:00Z", "started_at": "2026-12-01T10:00:00Z", "finished_at": "2026-12-01T10:00:41Z", "counts": {"created": 4210, "updated": 0, "deactivated": 0, "reactivated": 0, "unchanged": 0}, "schools": 7, "error_count": 0, "errors": []}]})),
        (status = 404, description = "The district has no Clever source.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn show(
    State(state): State<CleverState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<CleverSourceBody>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let source = find(&state.db, district.as_str()).await?;
    Ok(Json(source_body(&state.db, source).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// `true`: read every school and user, not only the events since the last sync.
    #[serde(default)]
    full: Option<bool>,
    /// Seconds to wait for the run to end before answering (0–60, default 0).
    #[serde(default)]
    wait: Option<u64>,
}

/// Asks for a sync now (admin): a run is queued (or the one already queued is returned).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/sources/clever/sync",
    tag = "sources",
    operation_id = "syncCleverSource",
    description = "What a Clever webhook handler or a dashboard calls. The run is incremental (Clever's events since the last sync) unless `full=true` or no full sync has run yet; it is announced as `roster.sync` events. One run per district at a time: while one is queued, asking again returns it.",
    params(("district" = String, Path, description = DISTRICT_PARAM, example = "springfield"), SyncQuery),
    responses(
        (status = 202, description = "Queued or running: poll `GET …/sources/clever`.", body = SyncRunBody),
        (status = 200, description = "Ended within `wait`.", body = SyncRunBody,
            example = json!({"id": "0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "district": "springfield", "source": "clever", "kind": "incremental", "trigger": "manual", "status": "finished", "requested_at": "2026-12-01T10:05:00Z", "started_at": "2026-12-01T10:05:00Z", "finished_at": "2026-12-01T10:05:01Z", "counts": {"created": 1, "updated": 2, "deactivated": 1, "reactivated": 0, "unchanged": 0}, "schools": 0, "error_count": 0, "errors": []})),
        (status = 404, description = "The district has no Clever source.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn sync_now(
    State(state): State<CleverState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(query): Query<SyncQuery>,
) -> Result<(StatusCode, Json<SyncRunBody>), ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let now = db_time(Utc::now());
    let txn = begin_write(&state.db).await?;
    lock_key(&txn, "clever-sync-claim", district.as_str()).await?;
    let source = find(&txn, district.as_str()).await?;
    let run = match queued_runs(&txn, district.as_str())
        .await?
        .into_iter()
        .next()
    {
        Some(queued) => queued,
        None => {
            let run = new_run(
                &source,
                RunTrigger::Manual,
                query.full.unwrap_or(false),
                now,
            );
            source_sync_run::Entity::insert(insertable(&run))
                .exec_without_returning(&txn)
                .await?;
            let mut due: clever_source::ActiveModel = source.into();
            due.next_run_at = Set(now);
            clever_source::Entity::update(due).exec(&txn).await?;
            run
        }
    };
    txn.commit().await?;
    tracing::info!(%district, run = %run.id, kind = %run.kind, by = %caller.who(), "Clever sync asked for");
    state.schedule.wake.notify_one();
    let deadline = tokio::time::Instant::now() + wait;
    let mut run = run;
    loop {
        let ended = matches!(
            RunStatus::parse(&run.status),
            Some(RunStatus::Finished | RunStatus::Failed)
        );
        if ended {
            return Ok((StatusCode::OK, Json(run.into())));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok((StatusCode::ACCEPTED, Json(run.into())));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(now) = source_sync_run::Entity::find_by_id(run.id.clone())
            .one(&state.db)
            .await?
        {
            run = now;
        }
    }
}

async fn find(
    db: &impl sea_orm::ConnectionTrait,
    district: &str,
) -> Result<clever_source::Model, ApiError> {
    clever_source::Entity::find_by_id(district.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "district {district} has no Clever source; configure one with PUT \
                 /v1/districts/{district}/sources/clever"
            ))
        })
}

async fn source_body(
    db: &DatabaseConnection,
    source: clever_source::Model,
) -> Result<CleverSourceBody, ApiError> {
    let runs = source_sync_run::Entity::find()
        .filter(source_sync_run::Column::DistrictId.eq(source.district_id.as_str()))
        .filter(source_sync_run::Column::Source.eq(SOURCE))
        .order_by_desc(source_sync_run::Column::RequestedAt)
        .order_by_desc(source_sync_run::Column::Id)
        .limit(RUNS_SHOWN)
        .all(db)
        .await?;
    Ok(CleverSourceBody {
        district: source.district_id,
        base_url: source.base_url,
        token_set: true,
        interval_secs: source.interval_secs,
        enabled: source.enabled,
        event_cursor: source.event_cursor.filter(|c| !c.is_empty()),
        last_full_sync_at: source.last_full_sync_at,
        next_run_at: source.next_run_at,
        syncing_until: source.lease_until.filter(|until| *until > Utc::now()),
        created_at: source.created_at,
        updated_at: source.updated_at,
        runs: runs.into_iter().map(SyncRunBody::from).collect(),
    })
}

fn base_url(raw: Option<&str>) -> Result<String, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(DEFAULT_BASE_URL.to_owned());
    };
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"));
    let ok = rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !rest.contains(['?', '#', '@', ' '])
            && !rest.trim_end_matches('/').ends_with("/v3.1")
    });
    if !ok {
        return Err(unprocessable(format!(
            "base_url: {:?} is not an http(s) address without query or credentials, and without \
             /v3.1 (it is appended); e.g. https://api.clever.com",
            raw.chars().take(100).collect::<String>()
        )));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::Unprocessable {
        message: message.into(),
        details: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(base_url(None).ok().as_deref(), Some(DEFAULT_BASE_URL));
        assert_eq!(
            base_url(Some("http://127.0.0.1:9/clever/")).ok().as_deref(),
            Some("http://127.0.0.1:9/clever")
        );
        assert!(base_url(Some("ftp://x")).is_err());
        assert!(base_url(Some("https://user:pw@x")).is_err());
        assert!(base_url(Some("https://api.clever.com/v3.1")).is_err());
    }
}
