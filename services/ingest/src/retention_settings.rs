//! `GET/PUT /v1/districts/{district}/retention`: how long a district's originals are kept after
//! their job ends. A district may keep them for less (or more) than the installation's
//! `PICTUREDAY_ORIGINALS_RETENTION_DAYS`; `null` goes back to it. Renditions are not affected.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use pictureday_access::entities::district;
use pictureday_access::{Caller, Role};
use pictureday_platform::http::ApiError;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};
use serde::{Deserialize, Serialize};

use crate::Ingest;

/// The longest period a district may choose: ten years.
pub const MAX_DAYS: u32 = 3650;

pub(crate) fn router(ingest: Ingest) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/retention",
            get(get_retention).put(put_retention),
        )
        .with_state(ingest)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = RetentionUpdate)]
#[serde(deny_unknown_fields)]
struct RetentionBody {
    /// Days after a job ends; `0` deletes originals as soon as it ends; `null` uses the
    /// installation's default.
    originals_retention_days: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct RetentionSettings {
    district: String,
    /// The district's own period, if it chose one.
    originals_retention_days: Option<u32>,
    /// The installation's period, used when the district has none.
    default_days: u64,
    /// The period in force.
    effective_days: u64,
}

/// How long the district's originals are kept after their job ends (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/retention",
    tag = "retention",
    operation_id = "getRetention",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield")),
    responses((status = 200, description = "The district's settings.", body = RetentionSettings,
        example = json!({"district": "springfield", "originals_retention_days": 7, "default_days": 30, "effective_days": 7})))
)]
async fn get_retention(
    State(ingest): State<Ingest>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<RetentionSettings>, ApiError> {
    let id = ingest.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let row = district::Entity::find_by_id(id.as_str().to_owned())
        .one(ingest.auth.database())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no district {raw:?}")))?;
    Ok(Json(settings(&ingest, row)))
}

/// Sets the district's own period in days, or `null` for the installation's (admin).
#[utoipa::path(
    put,
    path = "/v1/districts/{district}/retention",
    tag = "retention",
    operation_id = "putRetention",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield")),
    request_body(content = RetentionBody, example = json!({"originals_retention_days": 7})),
    responses(
        (status = 200, description = "The settings, as `GET` shows them.", body = RetentionSettings,
            example = json!({"district": "springfield", "originals_retention_days": 7, "default_days": 30, "effective_days": 7})),
        (status = 400, description = "Out of range (0–3650).", body = pictureday_platform::openapi::ErrorBody),
        (status = 422, description = "JSON of the wrong shape.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn put_retention(
    State(ingest): State<Ingest>,
    caller: Caller,
    Path(raw): Path<String>,
    Json(body): Json<RetentionBody>,
) -> Result<Json<RetentionSettings>, ApiError> {
    let id = ingest.auth.district_as(&caller, &raw, Role::Admin).await?;
    if body.originals_retention_days.is_some_and(|d| d > MAX_DAYS) {
        return Err(ApiError::BadRequest(format!(
            "originals_retention_days must be between 0 and {MAX_DAYS} (or null for the default)"
        )));
    }
    let row = district::Entity::find_by_id(id.as_str().to_owned())
        .one(ingest.auth.database())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no district {raw:?}")))?;
    let mut model = row.into_active_model();
    model.originals_retention_days = Set(body
        .originals_retention_days
        .map(|d| i32::try_from(d).unwrap_or(i32::MAX)));
    let row = model.update(ingest.auth.database()).await?;
    tracing::info!(district = %id, days = ?body.originals_retention_days, "originals retention set");
    Ok(Json(settings(&ingest, row)))
}

fn settings(ingest: &Ingest, row: district::Model) -> RetentionSettings {
    let default_days = ingest.retention.originals.as_secs() / 86_400;
    let own = row
        .originals_retention_days
        .and_then(|d| u32::try_from(d).ok());
    RetentionSettings {
        district: row.id,
        originals_retention_days: own,
        default_days,
        effective_days: own.map_or(default_days, u64::from),
    }
}
