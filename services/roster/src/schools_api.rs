//! A district's schools and whether photos are shown: `GET …/schools` (with how many active
//! people each has and how many of them lack a photo), `GET/PUT …/schools/{school}` to turn its
//! photos off or on, and `GET/PUT …/photo-settings` for the whole district (SmartPass's
//! Enable/Disable). Turning photos off deletes nothing: photo requests get the placeholder.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pictureday_access::entities::district;
use pictureday_access::{Auth, Caller, Role};
use pictureday_contract::DistrictId;
use pictureday_platform::db::begin_write;
use pictureday_platform::http::ApiError;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult,
    IntoActiveModel, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};

use crate::db::person::{self, PersonStatus, RosterSource};
use crate::db::{person_school, school};

#[derive(Clone)]
pub struct SchoolsState {
    pub db: DatabaseConnection,
    pub auth: Arc<Auth>,
}

impl FromRef<SchoolsState> for Arc<Auth> {
    fn from_ref(state: &SchoolsState) -> Self {
        state.auth.clone()
    }
}

pub fn router(state: SchoolsState) -> Router {
    Router::new()
        .route("/v1/districts/{district}/schools", get(list_schools))
        .route(
            "/v1/districts/{district}/schools/{school}",
            get(get_school).put(put_school),
        )
        .route(
            "/v1/districts/{district}/photo-settings",
            get(get_photo_settings).put(put_photo_settings),
        )
        .with_state(state)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = School)]
pub(crate) struct SchoolBody {
    id: String,
    name: String,
    /// Where the school comes from: `csv` (a roster CSV's `school` column), `clever` or
    /// `oneroster`.
    source: RosterSource,
    /// The school's id in its source; `null` for a roster CSV's school (named only).
    source_id: Option<String>,
    /// Off: every photo request for the school's people gets the placeholder.
    photos_enabled: bool,
    photos_changed_at: Option<DateTime<Utc>>,
    photos_changed_by: Option<String>,
    /// Active people of the school.
    people: u64,
    /// Active people of the school without a photo.
    missing_photos: u64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SchoolUpdate)]
#[serde(deny_unknown_fields)]
struct SchoolUpdate {
    photos_enabled: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PhotoSettings {
    district: String,
    /// Off: every photo request for the district's people gets the placeholder.
    photos_enabled: bool,
    photos_changed_at: Option<DateTime<Utc>>,
    photos_changed_by: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = PhotoSettingsUpdate)]
#[serde(deny_unknown_fields)]
struct PhotoSettingsUpdate {
    photos_enabled: bool,
}

const SCHOOL_EXAMPLE: &str = r#"{"id": "0196f1c2-aaaa-7c4e-8a1b-2c3d4e5f6a7b", "name": "North Elementary", "source": "clever", "source_id": "58da8a43cc70ab00017a1a87", "photos_enabled": true, "photos_changed_at": null, "photos_changed_by": null, "people": 412, "missing_photos": 3}"#;

/// The district's schools, by name, with their active people and missing photos (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/schools",
    tag = "schools",
    operation_id = "listSchools",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield")),
    responses((status = 200, description = "Every school of the district, by name.", body = Vec<SchoolBody>,
        example = json!([serde_json::from_str::<serde_json::Value>(SCHOOL_EXAMPLE).unwrap_or_default()])))
)]
async fn list_schools(
    State(state): State<SchoolsState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Vec<SchoolBody>>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let schools = school::Entity::find()
        .filter(school::Column::DistrictId.eq(district.as_str()))
        .order_by_asc(school::Column::Name)
        .order_by_asc(school::Column::Id)
        .all(&state.db)
        .await?;
    let counts = counts(&state.db, &district, None).await?;
    Ok(Json(
        schools
            .into_iter()
            .map(|s| {
                let c = counts.get(&s.id).copied().unwrap_or_default();
                body(s, c)
            })
            .collect(),
    ))
}

/// One school (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/schools/{school}",
    tag = "schools",
    operation_id = "getSchool",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("school" = String, Path, description = "The school's id.")),
    responses(
        (status = 200, description = "The school.", body = SchoolBody, example = json!(serde_json::from_str::<serde_json::Value>(SCHOOL_EXAMPLE).unwrap_or_default())),
        (status = 404, description = "No such school in the district.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn get_school(
    State(state): State<SchoolsState>,
    caller: Caller,
    Path((raw, school_id)): Path<(String, String)>,
) -> Result<Json<SchoolBody>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let found = find(&state.db, &district, &school_id).await?;
    Ok(Json(counted(&state.db, &district, found).await?))
}

/// Turns the school's photos on or off (admin).
#[utoipa::path(
    put,
    path = "/v1/districts/{district}/schools/{school}",
    tag = "schools",
    operation_id = "putSchool",
    description = "With `photos_enabled: false`, every photo request for the school's people (a person of several schools included) gets the placeholder with `X-Pictureday-Placeholder-Reason: school-photos-off`, until turned on again. Nothing is deleted.",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("school" = String, Path, description = "The school's id.")),
    request_body(content = SchoolUpdate, example = json!({"photos_enabled": false})),
    responses(
        (status = 200, description = "The school, as `GET` shows it.", body = SchoolBody),
        (status = 404, description = "No such school in the district.", body = pictureday_platform::openapi::ErrorBody),
        (status = 422, description = "JSON of the wrong shape.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn put_school(
    State(state): State<SchoolsState>,
    caller: Caller,
    Path((raw, school_id)): Path<(String, String)>,
    Json(update): Json<SchoolUpdate>,
) -> Result<Json<SchoolBody>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
    let found = find(&state.db, &district, &school_id).await?;
    let found = if found.photos_enabled == update.photos_enabled {
        found
    } else {
        let now = Utc::now();
        let mut model = found.into_active_model();
        model.photos_enabled = Set(update.photos_enabled);
        model.photos_changed_at = Set(Some(now));
        model.photos_changed_by = Set(Some(caller.who()));
        model.updated_at = Set(now);
        let txn = begin_write(&state.db).await?;
        let saved = model.update(&txn).await?;
        txn.commit().await?;
        tracing::info!(%district, school = %saved.id, photos_enabled = saved.photos_enabled,
            by = %caller.who(), "school photos turned {}", on_off(saved.photos_enabled));
        saved
    };
    Ok(Json(counted(&state.db, &district, found).await?))
}

/// Whether photos are shown for the district (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/photo-settings",
    tag = "schools",
    operation_id = "getPhotoSettings",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield")),
    responses((status = 200, description = "The district's setting.", body = PhotoSettings,
        example = json!({"district": "springfield", "photos_enabled": true, "photos_changed_at": null, "photos_changed_by": null})))
)]
async fn get_photo_settings(
    State(state): State<SchoolsState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<PhotoSettings>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let row = district_row(&state.db, &district).await?;
    Ok(Json(settings(row)))
}

/// Turns photos on or off for the whole district (admin).
#[utoipa::path(
    put,
    path = "/v1/districts/{district}/photo-settings",
    tag = "schools",
    operation_id = "putPhotoSettings",
    description = "With `photos_enabled: false`, every photo request for the district's people gets the placeholder with `X-Pictureday-Placeholder-Reason: district-photos-off`. Nothing is deleted; imports go on.",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield")),
    request_body(content = PhotoSettingsUpdate, example = json!({"photos_enabled": true})),
    responses(
        (status = 200, description = "The setting, as `GET` shows it.", body = PhotoSettings),
        (status = 422, description = "JSON of the wrong shape.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn put_photo_settings(
    State(state): State<SchoolsState>,
    caller: Caller,
    Path(raw): Path<String>,
    Json(update): Json<PhotoSettingsUpdate>,
) -> Result<Json<PhotoSettings>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
    let row = district_row(&state.db, &district).await?;
    if row.photos_enabled == update.photos_enabled {
        return Ok(Json(settings(row)));
    }
    let mut model = row.into_active_model();
    model.photos_enabled = Set(update.photos_enabled);
    model.photos_changed_at = Set(Some(Utc::now()));
    model.photos_changed_by = Set(Some(caller.who()));
    let txn = begin_write(&state.db).await?;
    let saved = model.update(&txn).await?;
    txn.commit().await?;
    tracing::info!(%district, photos_enabled = saved.photos_enabled, by = %caller.who(),
        "district photos turned {}", on_off(saved.photos_enabled));
    Ok(Json(settings(saved)))
}

fn on_off(enabled: bool) -> &'static str {
    if enabled { "on" } else { "off" }
}

async fn find(
    db: &DatabaseConnection,
    district: &DistrictId,
    school_id: &str,
) -> Result<school::Model, ApiError> {
    school::Entity::find_by_id(school_id.to_owned())
        .filter(school::Column::DistrictId.eq(district.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("no school {school_id:?} in district {district}"))
        })
}

async fn district_row(
    db: &DatabaseConnection,
    district: &DistrictId,
) -> Result<district::Model, ApiError> {
    district::Entity::find_by_id(district.as_str().to_owned())
        .one(db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no district {district}")))
}

fn settings(row: district::Model) -> PhotoSettings {
    PhotoSettings {
        district: row.id,
        photos_enabled: row.photos_enabled,
        photos_changed_at: row.photos_changed_at,
        photos_changed_by: row.photos_changed_by,
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct SchoolCounts {
    people: u64,
    missing: u64,
}

#[derive(Debug, FromQueryResult)]
struct CountRow {
    school_id: String,
    people: i64,
    missing: i64,
}

/// Active people and those of them without a photo, per school (one school, or all).
async fn counts(
    db: &DatabaseConnection,
    district: &DistrictId,
    only: Option<&str>,
) -> Result<HashMap<String, SchoolCounts>, ApiError> {
    let mut query = Query::select();
    query
        .column((person_school::Entity, person_school::Column::SchoolId))
        .expr_as(
            Expr::col((person::Entity, person::Column::Id)).count(),
            "people",
        )
        .expr_as(
            Expr::cust("SUM(CASE WHEN people.current_photo_id IS NULL THEN 1 ELSE 0 END)"),
            "missing",
        )
        .from(person_school::Entity)
        .inner_join(
            person::Entity,
            Expr::col((person::Entity, person::Column::Id))
                .equals((person_school::Entity, person_school::Column::PersonId)),
        )
        .and_where(
            Expr::col((person_school::Entity, person_school::Column::DistrictId))
                .eq(district.as_str()),
        )
        .and_where(
            Expr::col((person::Entity, person::Column::Status)).eq(PersonStatus::Active.as_str()),
        )
        .group_by_col((person_school::Entity, person_school::Column::SchoolId));
    if let Some(school) = only {
        query.and_where(
            Expr::col((person_school::Entity, person_school::Column::SchoolId)).eq(school),
        );
    }
    let statement = db.get_database_backend().build(&query);
    let rows = CountRow::find_by_statement(statement).all(db).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.school_id,
                SchoolCounts {
                    people: u64::try_from(r.people).unwrap_or(0),
                    missing: u64::try_from(r.missing).unwrap_or(0),
                },
            )
        })
        .collect())
}

/// One school as the API shows it, with its counts.
async fn counted(
    db: &DatabaseConnection,
    district: &DistrictId,
    school: school::Model,
) -> Result<SchoolBody, ApiError> {
    let c = counts(db, district, Some(&school.id))
        .await?
        .get(&school.id)
        .copied()
        .unwrap_or_default();
    Ok(body(school, c))
}

fn body(s: school::Model, c: SchoolCounts) -> SchoolBody {
    SchoolBody {
        id: s.id,
        name: s.name,
        source: s.source,
        source_id: s.source_id,
        photos_enabled: s.photos_enabled,
        photos_changed_at: s.photos_changed_at,
        photos_changed_by: s.photos_changed_by,
        people: c.people,
        missing_photos: c.missing,
    }
}
