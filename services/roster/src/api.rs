//! Roster's HTTP API: districts and their tokens, people, photos and the missing-photos report
//! (roster uploads and their imports: `imports_api`).

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pictureday_access::entities::district;
use pictureday_access::{Auth, Caller, Role as TokenRole};
use pictureday_contract::DistrictId;
use pictureday_contract::events::{ApplyOutcome, RenditionRef};
use pictureday_contract::renditions;
use pictureday_platform::db::begin_write;
use pictureday_platform::http::{ApiError, Page, Paged};
use pictureday_platform::storage::Storage;
use sea_orm::ActiveValue::Set;
use sea_orm::DatabaseConnection;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use crate::db::person::{PersonStatus, RosterSource};
use crate::db::{person, person_school, photo};
use crate::placeholder::Placeholders;
use crate::rendition_objects;
use crate::roster_csv::Role;
use crate::visibility::{self, PlaceholderReason};

#[derive(Clone)]
pub struct RosterState {
    pub db: DatabaseConnection,
    pub storage: Storage,
    pub auth: Arc<Auth>,
    pub placeholders: Arc<Placeholders>,
    /// Roster imports, run by the `roster-imports` worker.
    pub imports: crate::imports::Imports,
    /// How long a roster post waits for its import before answering `202`.
    pub roster_wait: std::time::Duration,
}

impl FromRef<RosterState> for Arc<Auth> {
    fn from_ref(state: &RosterState) -> Self {
        state.auth.clone()
    }
}

pub fn router(state: RosterState) -> Router {
    Router::new()
        .route("/v1/districts", post(create_district).get(list_districts))
        .route("/v1/districts/{district}", get(get_district))
        .route("/v1/districts/{district}/people", get(list_people))
        .route("/v1/districts/{district}/people/{person}", get(get_person))
        .route(
            "/v1/districts/{district}/people/{person}/photo",
            get(get_photo),
        )
        .route(
            "/v1/districts/{district}/people/{person}/photos",
            get(list_photo_versions),
        )
        .route(
            "/v1/districts/{district}/people/{person}/photos/{photo}",
            get(get_photo_version),
        )
        .route(
            "/v1/districts/{district}/reports/missing-photos.csv",
            get(crate::reports::missing_photos),
        )
        .merge(crate::imports_api::routes())
        .with_state(state)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "springfield", "name": "Springfield USD"}))]
struct NewDistrict {
    /// 1–63 of `a-z`, `0-9`, `-`.
    id: String,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = District)]
struct DistrictBody {
    id: String,
    name: String,
    created_at: DateTime<Utc>,
}

impl From<district::Model> for DistrictBody {
    fn from(d: district::Model) -> Self {
        Self {
            id: d.id,
            name: d.name,
            created_at: d.created_at,
        }
    }
}

/// Creates a district (operator only).
#[utoipa::path(
    post,
    path = "/v1/districts",
    tag = "districts",
    operation_id = "createDistrict",
    request_body(content = NewDistrict, example = json!({"id": "springfield", "name": "Springfield USD"})),
    responses(
        (status = 201, description = "The district, created.", body = DistrictBody, example = json!({"id": "springfield", "name": "Springfield USD", "created_at": "2026-09-01T08:00:00Z"})),
        (status = 400, description = "An id that is not 1–63 of `a-z`, `0-9`, `-`, or an empty name.", body = pictureday_platform::openapi::ErrorBody),
        (status = 409, description = "The district exists already.", body = pictureday_platform::openapi::ErrorBody,
            example = json!({"error": {"code": "conflict", "message": "district springfield already exists"}})),
        (status = 415, description = "The body was sent without `Content-Type: application/json`.", body = pictureday_platform::openapi::ErrorBody),
        (status = 422, description = "JSON of the wrong shape.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn create_district(
    State(state): State<RosterState>,
    caller: Caller,
    Json(body): Json<NewDistrict>,
) -> Result<(StatusCode, Json<DistrictBody>), ApiError> {
    caller.require_operator()?;
    let id = DistrictId::parse(&body.id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let name = body.name.trim();
    if name.is_empty() {
        return Err(ApiError::BadRequest("name must not be empty".into()));
    }
    let db = &state.db;
    if district::Entity::find_by_id(id.as_str().to_owned())
        .one(db)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!("district {id} already exists")));
    }
    let model = district::ActiveModel {
        id: Set(id.as_str().to_owned()),
        name: Set(name.to_owned()),
        created_at: Set(Utc::now()),
        originals_retention_days: Set(None),
        photos_enabled: Set(true),
        photos_changed_at: Set(None),
        photos_changed_by: Set(None),
        inactive_photos_retention_days: Set(None),
    };
    let txn = begin_write(db).await?;
    let model = model.insert(&txn).await?;
    txn.commit().await?;
    Ok((StatusCode::CREATED, Json(model.into())))
}

/// The districts the token may see: every one for the operator, its own for a district token.
#[utoipa::path(
    get,
    path = "/v1/districts",
    tag = "districts",
    operation_id = "listDistricts",
    responses((status = 200, description = "The districts, by id.", body = Vec<DistrictBody>, example = json!([{"id": "springfield", "name": "Springfield USD", "created_at": "2026-09-01T08:00:00Z"}])))
)]
async fn list_districts(
    State(state): State<RosterState>,
    caller: Caller,
) -> Result<Json<Vec<DistrictBody>>, ApiError> {
    let query = district::Entity::find().order_by_asc(district::Column::Id);
    let query = match &caller {
        Caller::Operator => query,
        Caller::District { district: own, .. } => {
            query.filter(district::Column::Id.eq(own.as_str()))
        }
    };
    let rows = query.all(&state.db).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// One district (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}",
    tag = "districts",
    operation_id = "getDistrict",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield")),
    responses((status = 200, description = "The district.", body = DistrictBody, example = json!({"id": "springfield", "name": "Springfield USD", "created_at": "2026-09-01T08:00:00Z"})))
)]
async fn get_district(
    State(state): State<RosterState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<DistrictBody>, ApiError> {
    let id = state
        .auth
        .district_as(&caller, &raw, TokenRole::Viewer)
        .await?;
    let model = district::Entity::find_by_id(id.as_str().to_owned())
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no district {raw:?}")))?;
    Ok(Json(model.into()))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Person)]
pub(crate) struct PersonBody {
    id: String,
    role: Role,
    email: Option<String>,
    sis_id: Option<String>,
    student_number: Option<String>,
    first_name: String,
    last_name: String,
    school: String,
    state_id: Option<String>,
    staff_id: Option<String>,
    preferred_first_name: Option<String>,
    grade: Option<String>,
    homeroom: Option<String>,
    teacher: Option<String>,
    has_photo: bool,
    photo_id: Option<String>,
    /// `active`, or `inactive` once their source withdrew them.
    status: PersonStatus,
    inactive_since: Option<DateTime<Utc>>,
    /// What keeps the person current: `csv`, `clever` or `oneroster`.
    source: RosterSource,
}

impl From<person::Model> for PersonBody {
    fn from(p: person::Model) -> Self {
        Self {
            id: p.id,
            role: p.role,
            email: p.email,
            sis_id: p.sis_id,
            student_number: p.student_number,
            first_name: p.first_name,
            last_name: p.last_name,
            school: p.school,
            state_id: p.state_id,
            staff_id: p.staff_id,
            preferred_first_name: p.preferred_first_name,
            grade: p.grade,
            homeroom: p.homeroom,
            teacher: p.teacher,
            has_photo: p.current_photo_id.is_some(),
            photo_id: p.current_photo_id,
            status: p.status,
            inactive_since: p.inactive_since,
            source: p.source,
        }
    }
}

#[derive(Deserialize)]
struct PeopleFilter {
    missing_photo: Option<bool>,
    status: Option<PersonStatus>,
    school: Option<String>,
    sis_id: Option<String>,
    student_number: Option<String>,
    email: Option<String>,
    #[serde(flatten)]
    page: Page,
}

/// The district's people, a page at a time (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/people",
    tag = "people",
    operation_id = "listPeople",
    params(
        ("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"),
        ("missing_photo" = Option<bool>, Query, description = "Only people without (`true`) or with (`false`) a photo. `true` lists active people only (people who left are not missing a photo) unless `status` says otherwise."),
        ("status" = Option<PersonStatus>, Query, description = "Only `active` or `inactive` people."),
        ("school" = Option<String>, Query, description = "Only people of this school (its id)."),
        ("sis_id" = Option<String>, Query, description = "Only the person with this SIS id."),
        ("student_number" = Option<String>, Query, description = "Only the person with this student number."),
        ("email" = Option<String>, Query, description = "Only the person with this email (case ignored)."),
        Page
    ),
    responses(
        (status = 200, description = "A page of people, by id.", body = Paged<PersonBody>,
            example = json!({"items": [{"id": "0196f1c2-7d3a-7c4e-8a1b-2c3d4e5f6a7b", "role": "student", "email": "ada@springfield.k12.us", "sis_id": "S1001", "student_number": "1001", "first_name": "Ada", "last_name": "Lovelace", "school": "North", "state_id": null, "staff_id": null, "preferred_first_name": null, "grade": "5", "homeroom": "5A", "teacher": "Ms. Hopper", "has_photo": true, "photo_id": "0196f1c3-1a2b-7c4e-8a1b-2c3d4e5f6a7b"}], "next_after": null})),
        (status = 400, description = "A bad filter, `limit` or `after`.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn list_people(
    State(state): State<RosterState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(filter): Query<PeopleFilter>,
) -> Result<Json<Paged<PersonBody>>, ApiError> {
    let id = state
        .auth
        .district_as(&caller, &raw, TokenRole::Viewer)
        .await?;
    let limit = filter.page.limit()?;
    let mut query = person::Entity::find()
        .filter(person::Column::DistrictId.eq(id.as_str()))
        .order_by_asc(person::Column::Id)
        .limit(limit);
    let status = match (filter.status, filter.missing_photo) {
        (Some(status), _) => Some(status),
        (None, Some(true)) => Some(PersonStatus::Active),
        (None, _) => None,
    };
    if let Some(status) = status {
        query = query.filter(person::Column::Status.eq(status));
    }
    if let Some(school) = filter.school {
        query = query.filter(
            person::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(person_school::Column::PersonId)
                    .from(person_school::Entity)
                    .and_where(person_school::Column::SchoolId.eq(school))
                    .to_owned(),
            ),
        );
    }
    match filter.missing_photo {
        Some(true) => query = query.filter(person::Column::CurrentPhotoId.is_null()),
        Some(false) => query = query.filter(person::Column::CurrentPhotoId.is_not_null()),
        None => {}
    }
    if let Some(v) = filter.sis_id {
        query = query.filter(person::Column::SisId.eq(v));
    }
    if let Some(v) = filter.student_number {
        query = query.filter(person::Column::StudentNumber.eq(v));
    }
    if let Some(v) = filter.email {
        query = query.filter(person::Column::Email.eq(v.to_lowercase()));
    }
    if let Some(after) = filter.page.after()? {
        query = query.filter(person::Column::Id.gt(after));
    }
    let rows = query.all(&state.db).await?;
    let next_after = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|p| p.id.clone()))
        .flatten();
    Ok(Json(Paged {
        items: rows.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

async fn find_person(
    state: &RosterState,
    district: &DistrictId,
    person_id: &str,
) -> Result<person::Model, ApiError> {
    person::Entity::find_by_id(person_id.to_owned())
        .filter(person::Column::DistrictId.eq(district.as_str()))
        .one(&state.db)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("no person {person_id:?} in district {district}"))
        })
}

/// One person (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/people/{person}",
    tag = "people",
    operation_id = "getPerson",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("person" = String, Path, description = "The person's id.")),
    responses((status = 200, description = "The person.", body = PersonBody, example = json!({"id": "0196f1c2-7d3a-7c4e-8a1b-2c3d4e5f6a7b", "role": "student", "email": "ada@springfield.k12.us", "sis_id": "S1001", "student_number": "1001", "first_name": "Ada", "last_name": "Lovelace", "school": "North", "state_id": null, "staff_id": null, "preferred_first_name": null, "grade": "5", "homeroom": "5A", "teacher": "Ms. Hopper", "has_photo": true, "photo_id": "0196f1c3-1a2b-7c4e-8a1b-2c3d4e5f6a7b"})))
)]
async fn get_person(
    State(state): State<RosterState>,
    caller: Caller,
    Path((raw, person_id)): Path<(String, String)>,
) -> Result<Json<PersonBody>, ApiError> {
    let id = state
        .auth
        .district_as(&caller, &raw, TokenRole::Viewer)
        .await?;
    Ok(Json(find_person(&state, &id, &person_id).await?.into()))
}

#[derive(Deserialize)]
struct PhotoQuery {
    size: Option<String>,
}

/// The person's current photo, or a placeholder (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/people/{person}/photo",
    tag = "people",
    operation_id = "getPhoto",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("person" = String, Path, description = "The person's id."), ("size" = Option<crate::openapi::PhotoSize>, Query, description = "The rendition: `small` (96×120), `medium` (240×300) or `large` (480×600, the default).")),
    responses(
        (status = 200, description = "The JPEG, with `X-Pictureday-Photo-Id` and an `ETag`; for a person without a photo, a neutral placeholder of the same size with `X-Pictureday-Placeholder: true` — also while the person is inactive or photos are off for their district or one of their schools; `X-Pictureday-Placeholder-Reason` says which (`no-photo`, `person-inactive`, `district-photos-off`, `school-photos-off`).", body = pictureday_platform::openapi::Jpeg, content_type = "image/jpeg",
            headers(("X-Pictureday-Photo-Id" = String, description = "The photo's id (absent for the placeholder)."), ("X-Pictureday-Placeholder" = String, description = "`true` for the placeholder."), ("X-Pictureday-Placeholder-Reason" = String, description = "Why the placeholder: `no-photo`, `person-inactive`, `district-photos-off` or `school-photos-off`."), ("ETag" = String, description = "The photo and size."))),
        (status = 400, description = "An unknown `size`.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn get_photo(
    State(state): State<RosterState>,
    caller: Caller,
    Path((raw, person_id)): Path<(String, String)>,
    Query(query): Query<PhotoQuery>,
) -> Result<Response, ApiError> {
    let id = state
        .auth
        .district_as(&caller, &raw, TokenRole::Viewer)
        .await?;
    let size = photo_size(query.size)?;
    let person = find_person(&state, &id, &person_id).await?;
    let mut headers = jpeg_headers();
    let withheld = visibility::withheld(&state.db, &person).await?;
    if let (None, Some(photo_id)) = (withheld, person.current_photo_id) {
        let photo = photo::Entity::find_by_id(photo_id.clone())
            .one(&state.db)
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("photo {photo_id} is missing")))?;
        return rendition_response(&state, &photo, &size, headers).await;
    }
    let bytes = state
        .placeholders
        .get(&size)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no placeholder for {size}")))?;
    withheld
        .unwrap_or(PlaceholderReason::NoPhoto)
        .mark(&mut headers);
    Ok((headers, bytes).into_response())
}

fn photo_size(size: Option<String>) -> Result<String, ApiError> {
    let size = size.unwrap_or_else(|| "large".into());
    if renditions::by_name(&size).is_none() {
        return Err(ApiError::BadRequest(format!(
            "size={size}: use small, medium or large"
        )));
    }
    Ok(size)
}

fn jpeg_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    // Photos of children: never kept by shared caches.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    headers
}

async fn rendition_response(
    state: &RosterState,
    photo: &photo::Model,
    size: &str,
    mut headers: HeaderMap,
) -> Result<Response, ApiError> {
    let refs: Vec<RenditionRef> =
        serde_json::from_str(&photo.renditions).map_err(ApiError::internal)?;
    let rendition = refs.iter().find(|r| r.name == size).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "photo {} has no {size} rendition",
            photo.id
        ))
    })?;
    let bytes = rendition_objects::read(&state.storage, rendition).await?;
    if let Ok(value) = HeaderValue::from_str(&photo.id) {
        headers.insert("x-pictureday-photo-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}-{size}\"", photo.id)) {
        headers.insert(header::ETAG, value);
    }
    Ok((headers, bytes).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PhotoVersion)]
struct PhotoVersionBody {
    id: String,
    current: bool,
    job_id: String,
    file_name: String,
    outcome: ApplyOutcome,
    previous_photo_id: Option<String>,
    created_at: DateTime<Utc>,
}

/// Every photo a person has had, newest upload first.
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/people/{person}/photos",
    tag = "people",
    operation_id = "listPhotoVersions",
    description = "Every photo the person has had, newest upload first (viewer). `outcome` is what applying it did, or `previewed` for a preview's photo not applied yet.",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("person" = String, Path, description = "The person's id.")),
    responses((status = 200, description = "The person's photos.", body = Vec<PhotoVersionBody>,
        example = json!([{"id": "0196f1c3-1a2b-7c4e-8a1b-2c3d4e5f6a7b", "current": true, "job_id": "0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "file_name": "1001.jpg", "outcome": "applied", "previous_photo_id": null, "created_at": "2026-11-30T10:00:00Z"}])))
)]
async fn list_photo_versions(
    State(state): State<RosterState>,
    caller: Caller,
    Path((raw, person_id)): Path<(String, String)>,
) -> Result<Json<Vec<PhotoVersionBody>>, ApiError> {
    let id = state
        .auth
        .district_as(&caller, &raw, TokenRole::Viewer)
        .await?;
    let person = find_person(&state, &id, &person_id).await?;
    let photos = photo::Entity::find()
        .filter(photo::Column::PersonId.eq(person.id.as_str()))
        .filter(photo::Column::DistrictId.eq(id.as_str()))
        .order_by_desc(photo::Column::UploadRank)
        .all(&state.db)
        .await?;
    Ok(Json(
        photos
            .into_iter()
            .map(|p| PhotoVersionBody {
                current: person.current_photo_id.as_deref() == Some(p.id.as_str()),
                id: p.id,
                job_id: p.job_id,
                file_name: p.file_name,
                outcome: p.outcome,
                previous_photo_id: p.previous_photo_id,
                created_at: p.created_at,
            })
            .collect(),
    ))
}

/// One of the person's photos, current or not (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/people/{person}/photos/{photo}",
    tag = "people",
    operation_id = "getPhotoVersion",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("person" = String, Path, description = "The person's id."), ("photo" = String, Path, description = "The photo's id."), ("size" = Option<crate::openapi::PhotoSize>, Query, description = "The rendition: `small` (96×120), `medium` (240×300) or `large` (480×600, the default).")),
    responses(
        (status = 200, description = "The JPEG of that version, with `X-Pictureday-Photo-Id` and an `ETag`; the placeholder (with `X-Pictureday-Placeholder-Reason`) while the person is inactive or photos are off for their district or school.", body = pictureday_platform::openapi::Jpeg, content_type = "image/jpeg"),
        (status = 400, description = "An unknown `size`.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn get_photo_version(
    State(state): State<RosterState>,
    caller: Caller,
    Path((raw, person_id, photo_id)): Path<(String, String, String)>,
    Query(query): Query<PhotoQuery>,
) -> Result<Response, ApiError> {
    let id = state
        .auth
        .district_as(&caller, &raw, TokenRole::Viewer)
        .await?;
    let size = photo_size(query.size)?;
    let person = find_person(&state, &id, &person_id).await?;
    let photo = photo::Entity::find_by_id(photo_id.clone())
        .filter(photo::Column::PersonId.eq(person.id.as_str()))
        .filter(photo::Column::DistrictId.eq(id.as_str()))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no photo {photo_id:?} of this person")))?;
    if let Some(reason) = visibility::withheld(&state.db, &person).await? {
        let mut headers = jpeg_headers();
        let bytes = state
            .placeholders
            .get(&size)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no placeholder for {size}")))?;
        reason.mark(&mut headers);
        return Ok((headers, bytes).into_response());
    }
    rendition_response(&state, &photo, &size, jpeg_headers()).await
}
