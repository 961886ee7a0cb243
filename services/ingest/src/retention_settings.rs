//! `GET/PUT /v1/districts/{district}/retention`: how long a district's originals are kept after
//! their job ends, and how long the photos of people who left are kept after they became
//! inactive. A district may choose either period (less or more than the installation's
//! `PICTUREDAY_ORIGINALS_RETENTION_DAYS` / `PICTUREDAY_INACTIVE_RETENTION_DAYS`); `null` or absent
//! goes back to the installation's. Roster purges inactive people's photos by it.

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
    /// Days the photos of people who left are kept after they became inactive; `null` uses the
    /// installation's default (365 unless configured).
    #[serde(default)]
    inactive_photos_retention_days: Option<u32>,
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
    /// The district's own period for inactive people's photos, if it chose one.
    inactive_photos_retention_days: Option<u32>,
    /// The installation's period for them.
    inactive_photos_default_days: u64,
    /// The period in force for them.
    inactive_photos_effective_days: u64,
}

/// How long the district's originals are kept after their job ends (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/retention",
    tag = "retention",
    operation_id = "getRetention",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield")),
    responses((status = 200, description = "The district's settings.", body = RetentionSettings,
        example = json!({"district": "springfield", "originals_retention_days": 7, "default_days": 30, "effective_days": 7, "inactive_photos_retention_days": null, "inactive_photos_default_days": 365, "inactive_photos_effective_days": 365})))
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
            example = json!({"district": "springfield", "originals_retention_days": 7, "default_days": 30, "effective_days": 7, "inactive_photos_retention_days": null, "inactive_photos_default_days": 365, "inactive_photos_effective_days": 365})),
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
    for (field, days) in [
        ("originals_retention_days", body.originals_retention_days),
        (
            "inactive_photos_retention_days",
            body.inactive_photos_retention_days,
        ),
    ] {
        if days.is_some_and(|d| d > MAX_DAYS) {
            return Err(ApiError::BadRequest(format!(
                "{field} must be between 0 and {MAX_DAYS} (or null for the default)"
            )));
        }
    }
    let row = district::Entity::find_by_id(id.as_str().to_owned())
        .one(ingest.auth.database())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no district {raw:?}")))?;
    let mut model = row.into_active_model();
    model.originals_retention_days = Set(body
        .originals_retention_days
        .map(|d| i32::try_from(d).unwrap_or(i32::MAX)));
    model.inactive_photos_retention_days = Set(body
        .inactive_photos_retention_days
        .map(|d| i32::try_from(d).unwrap_or(i32::MAX)));
    let row = model.update(ingest.auth.database()).await?;
    tracing::info!(district = %id, days = ?body.originals_retention_days,
        inactive_days = ?body.inactive_photos_retention_days, "retention set");
    Ok(Json(settings(&ingest, row)))
}

fn settings(ingest: &Ingest, row: district::Model) -> RetentionSettings {
    let default_days = ingest.retention.originals.as_secs() / 86_400;
    let own = row
        .originals_retention_days
        .and_then(|d| u32::try_from(d).ok());
    let inactive_default = ingest.retention.inactive_photos.as_secs() / 86_400;
    let inactive_own = row
        .inactive_photos_retention_days
        .and_then(|d| u32::try_from(d).ok());
    RetentionSettings {
        district: row.id,
        originals_retention_days: own,
        default_days,
        effective_days: own.map_or(default_days, u64::from),
        inactive_photos_retention_days: inactive_own,
        inactive_photos_default_days: inactive_default,
        inactive_photos_effective_days: inactive_own.map_or(inactive_default, u64::from),
    }
}
