//! One person's photo, by hand: `DELETE …/people/{person}/photo` (back to the placeholder; the
//! version stays restorable), `?purge=true` (every photo of the person deleted for good, from
//! the database and from storage, originals included — a parent's deletion request — and a
//! record kept that it happened) and `POST …/people/{person}/photos/{photo}/restore` (an older
//! version current again). A new photo for one person is an import of one file: ingest's.
//!
//! The person's current photo and its upload rank always change together: the rank is what the
//! replace policies read as "has a photo", and what a newer upload must beat.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pictureday_access::{Auth, Caller, Role};
use pictureday_contract::events::{
    ApplyOutcome, OriginalsPurged, PurgeOriginals, SCHEMA_VERSION, UploadedFile,
};
use pictureday_contract::subjects::INGEST_PURGE_SUBJECT;
use pictureday_contract::{DistrictId, PersonId};
use pictureday_platform::bus::Bus;
use pictureday_platform::db::{begin_write, write};
use pictureday_platform::http::{ApiError, Page, Paged};
use pictureday_platform::storage::Storage;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};

use crate::api::PersonBody;
use crate::db::{person, photo, photo_purge};
use crate::placement;
use crate::rendition_objects;

/// How long ingest has to delete a purge's originals before the purge is left unfinished.
const INGEST_PATIENCE: Duration = Duration::from_secs(10);

/// What one person's photos (and undoing a job: `undo`) work with.
#[derive(Clone)]
pub struct PersonPhotosState {
    pub db: DatabaseConnection,
    pub storage: Storage,
    pub bus: Bus,
    pub auth: Arc<Auth>,
}

impl FromRef<PersonPhotosState> for Arc<Auth> {
    fn from_ref(state: &PersonPhotosState) -> Self {
        state.auth.clone()
    }
}

pub fn router(state: PersonPhotosState) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/people/{person}/photo",
            delete(delete_photo),
        )
        .route(
            "/v1/districts/{district}/people/{person}/photos/{photo}/restore",
            post(restore_photo),
        )
        .route("/v1/districts/{district}/purges", get(list_purges))
        .with_state(state)
}

/// The person, locked for the rest of `txn` (as photos being applied lock them), or `404`.
async fn locked_person(
    txn: &DatabaseTransaction,
    district: &DistrictId,
    person_id: &str,
) -> Result<person::Model, ApiError> {
    placement::lock_people(txn, vec![person_id]).await?;
    person::Entity::find_by_id(person_id.to_owned())
        .filter(person::Column::DistrictId.eq(district.as_str()))
        .one(txn)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("no person {person_id:?} in district {district}"))
        })
}

/// Makes `photo` the person's photo, or none; the rank goes with it.
pub(crate) async fn set_current(
    txn: &DatabaseTransaction,
    person_id: &str,
    photo: Option<&photo::Model>,
) -> Result<(), DbErr> {
    person::Entity::update_many()
        .col_expr(
            person::Column::CurrentPhotoId,
            Expr::value(photo.map(|p| p.id.clone())),
        )
        .col_expr(
            person::Column::CurrentPhotoRank,
            Expr::value(photo.map(|p| p.upload_rank.clone())),
        )
        .col_expr(person::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(person::Column::Id.eq(person_id))
        .exec(txn)
        .await?;
    Ok(())
}

#[derive(Deserialize)]
struct DeleteQuery {
    purge: Option<String>,
}

/// Removes the person's photo (importer), or, with `purge=true`, deletes every photo of them for good (admin).
#[utoipa::path(
    delete,
    path = "/v1/districts/{district}/people/{person}/photo",
    tag = "people",
    operation_id = "deletePhoto",
    description = "Without `purge`: the person is back to the placeholder and the photo stays restorable (`204`). With `purge=true` (admin): every photo of the person — renditions and originals — deleted from the database and storage, and a record of it kept (`200`).",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("person" = String, Path, description = "The person's id."), ("purge" = Option<bool>, Query, description = "`true`: delete every photo of the person for good.")),
    responses(
        (status = 200, description = "Purged: who, when and how much.", body = PurgeBody),
        (status = 204, description = "The photo removed; the person shows the placeholder."),
        (status = 400, description = "A bad `purge`.", body = pictureday_platform::openapi::ErrorBody),
        (status = 404, description = "No such person in the district.", body = pictureday_platform::openapi::ErrorBody),
        (status = 503, description = "Storage or the ingest service did not finish a purge: nothing not deleted is counted, and calling again finishes it.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn delete_photo(
    State(state): State<PersonPhotosState>,
    caller: Caller,
    Path((raw, person_id)): Path<(String, String)>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let purge = match query.purge.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "purge={other}: use true or false (the default)"
            )));
        }
    };
    if purge {
        let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
        let record = purge_person(&state, &district, &person_id, caller.who()).await?;
        return Ok((StatusCode::OK, Json(record)).into_response());
    }
    let district = state
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    let txn = begin_write(&state.db).await?;
    let person = locked_person(&txn, &district, &person_id).await?;
    set_current(&txn, &person.id, None).await?;
    txn.commit().await?;
    tracing::info!(%district, person = %person_id, by = %caller.who(), "a person's photo was removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Makes one of the person's earlier photos current again (importer).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/people/{person}/photos/{photo}/restore",
    tag = "people",
    operation_id = "restorePhoto",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("person" = String, Path, description = "The person's id."), ("photo" = String, Path, description = "The photo's id.")),
    responses(
        (status = 200, description = "The person, with the photo current.", body = PersonBody),
        (status = 409, description = "The photo belongs to a preview that was not applied.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn restore_photo(
    State(state): State<PersonPhotosState>,
    caller: Caller,
    Path((raw, person_id, photo_id)): Path<(String, String, String)>,
) -> Result<Json<PersonBody>, ApiError> {
    let district = state
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    let txn = begin_write(&state.db).await?;
    let person = locked_person(&txn, &district, &person_id).await?;
    let photo = photo::Entity::find_by_id(photo_id.clone())
        .filter(photo::Column::PersonId.eq(person.id.as_str()))
        .filter(photo::Column::DistrictId.eq(district.as_str()))
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no photo {photo_id:?} of this person")))?;
    if photo.outcome == ApplyOutcome::Previewed {
        return Err(ApiError::Conflict(format!(
            "photo {photo_id} belongs to a preview that was not applied (job {}); apply the \
             preview instead",
            photo.job_id
        )));
    }
    set_current(&txn, &person.id, Some(&photo)).await?;
    let person = person::Entity::find_by_id(person.id.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("person {person_id} vanished")))?;
    txn.commit().await?;
    tracing::info!(%district, person = %person_id, photo = %photo_id, by = %caller.who(), "an older photo was made current again");
    Ok(Json(person.into()))
}

/// A purge, as the API shows it: who, when, how much — never the photos.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = PhotoPurge)]
pub(crate) struct PurgeBody {
    id: String,
    district: String,
    #[schema(value_type = String)]
    person_id: PersonId,
    purged_by: String,
    started_at: DateTime<Utc>,
    purged_at: Option<DateTime<Utc>>,
    photos_deleted: u64,
    /// Renditions and originals together (each rendition counted, though a photo's renditions
    /// are one object).
    objects_deleted: u64,
    renditions_deleted: u64,
    originals_deleted: u64,
    archives_deleted: u64,
}

#[derive(Deserialize)]
struct PurgesQuery {
    person: Option<String>,
    #[serde(flatten)]
    page: Page,
}

/// The record of every purge of the district's photos, newest first (admin): by hand
/// (`DELETE …/photo?purge=true`) or by retention, when people who left have been inactive
/// longer than the district keeps their photos.
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/purges",
    tag = "people",
    operation_id = "listPurges",
    params(
        ("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"),
        ("person" = Option<String>, Query, description = "Only the purges of this person."),
        Page
    ),
    responses(
        (status = 200, description = "A page of purge records, newest first; `purged_by` is who asked, or `retention (inactive since …)`.", body = Paged<PurgeBody>),
        (status = 400, description = "A bad `limit` or `after`.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn list_purges(
    State(state): State<PersonPhotosState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(query): Query<PurgesQuery>,
) -> Result<Json<Paged<PurgeBody>>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Admin).await?;
    let limit = query.page.limit()?;
    let mut select = photo_purge::Entity::find()
        .filter(photo_purge::Column::DistrictId.eq(district.as_str()))
        .order_by_desc(photo_purge::Column::Id)
        .limit(limit);
    if let Some(person) = query.person {
        select = select.filter(photo_purge::Column::PersonId.eq(person));
    }
    if let Some(after) = query.page.after()? {
        select = select.filter(photo_purge::Column::Id.lt(after));
    }
    let rows = select.all(&state.db).await?;
    let next_after = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|p| p.id.clone()))
        .flatten();
    Ok(Json(Paged {
        items: rows.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl From<photo_purge::Model> for PurgeBody {
    fn from(row: photo_purge::Model) -> Self {
        Self {
            objects_deleted: count(row.renditions_deleted) + count(row.originals_deleted),
            photos_deleted: count(row.photos_deleted),
            renditions_deleted: count(row.renditions_deleted),
            originals_deleted: count(row.originals_deleted),
            archives_deleted: count(row.archives_deleted),
            id: row.id,
            district: row.district_id,
            person_id: row.person_id.into(),
            purged_by: row.purged_by,
            started_at: row.started_at,
            purged_at: row.finished_at,
        }
    }
}

/// Deletes every photo of the person for good. In steps that can each be repeated: the photo
/// rows go first (with the person's current photo), in one transaction that records what is
/// left to delete; then the renditions, photo by photo; then ingest deletes the originals. A
/// purge interrupted anywhere is finished by the next purge of the person, and counts only what
/// was deleted.
pub(crate) async fn purge_person(
    state: &PersonPhotosState,
    district: &DistrictId,
    person_id: &str,
    who: String,
) -> Result<PurgeBody, ApiError> {
    let purge = begin_purge(&state.db, district, person_id, who).await?;
    let purge_id = purge.id.clone();
    delete_renditions(state, district, &purge).await?;
    delete_originals(state, district, &purge_id).await?;
    let done = photo_purge::Entity::find_by_id(purge_id.clone())
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("purge {purge_id} vanished")))?;
    tracing::info!(
        %district,
        person = %person_id,
        by = %done.purged_by,
        photos = done.photos_deleted,
        renditions = done.renditions_deleted,
        originals = done.originals_deleted,
        "a person's photos were purged"
    );
    Ok(done.into())
}

fn json_list<T: serde::de::DeserializeOwned>(raw: &str) -> Result<Vec<T>, ApiError> {
    serde_json::from_str(raw).map_err(ApiError::internal)
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(ApiError::internal)
}

/// Removes the person's photo rows and current photo, and records (or adds to an unfinished
/// purge of the person) what storage still holds of them.
async fn begin_purge(
    db: &DatabaseConnection,
    district: &DistrictId,
    person_id: &str,
    who: String,
) -> Result<photo_purge::Model, ApiError> {
    let txn = begin_write(db).await?;
    let person = locked_person(&txn, district, person_id).await?;
    let photos = photo::Entity::find()
        .filter(photo::Column::PersonId.eq(person.id.as_str()))
        .filter(photo::Column::DistrictId.eq(district.as_str()))
        .all(&txn)
        .await?;
    let unfinished = photo_purge::Entity::find()
        .filter(photo_purge::Column::DistrictId.eq(district.as_str()))
        .filter(photo_purge::Column::PersonId.eq(person.id.as_str()))
        .filter(photo_purge::Column::FinishedAt.is_null())
        .order_by_asc(photo_purge::Column::StartedAt)
        .one(&txn)
        .await?;
    let mut pending_photos: BTreeSet<String> = BTreeSet::new();
    let mut pending_files: BTreeSet<UploadedFile> = BTreeSet::new();
    if let Some(unfinished) = &unfinished {
        pending_photos.extend(json_list::<String>(&unfinished.pending_photos)?);
        pending_files.extend(json_list::<UploadedFile>(&unfinished.pending_files)?);
    }
    for row in &photos {
        pending_photos.insert(row.id.clone());
        pending_files.insert(UploadedFile {
            job_id: row.job_id.as_str().into(),
            seq: u32::try_from(row.seq).map_err(ApiError::internal)?,
        });
    }
    if !photos.is_empty() {
        photo::Entity::delete_many()
            .filter(photo::Column::Id.is_in(photos.iter().map(|p| p.id.clone())))
            .exec(&txn)
            .await?;
    }
    set_current(&txn, &person.id, None).await?;
    let found = i64::try_from(photos.len()).unwrap_or(i64::MAX);
    let purge = match unfinished {
        Some(unfinished) => {
            let mut row: photo_purge::ActiveModel = unfinished.clone().into();
            row.photos_deleted = Set(unfinished.photos_deleted + found);
            row.pending_photos = Set(to_json(&pending_photos)?);
            row.pending_files = Set(to_json(&pending_files)?);
            row.update(&txn).await?
        }
        None => {
            photo_purge::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                district_id: Set(district.as_str().to_owned()),
                person_id: Set(person.id.clone()),
                purged_by: Set(who),
                started_at: Set(Utc::now()),
                finished_at: Set(None),
                photos_deleted: Set(found),
                renditions_deleted: Set(0),
                originals_deleted: Set(0),
                archives_deleted: Set(0),
                pending_photos: Set(to_json(&pending_photos)?),
                pending_files: Set(to_json(&pending_files)?),
            }
            .insert(&txn)
            .await?
        }
    };
    txn.commit().await?;
    Ok(purge)
}

/// Deletes each pending photo's renditions, and records it photo by photo: a crash loses at
/// most one photo's count, never claims one.
async fn delete_renditions(
    state: &PersonPhotosState,
    district: &DistrictId,
    purge: &photo_purge::Model,
) -> Result<(), ApiError> {
    let mut pending: Vec<String> = json_list(&purge.pending_photos)?;
    while let Some(photo_id) = pending.pop() {
        let deleted = rendition_objects::delete_photo(&state.storage, district, &photo_id)
            .await
            .map_err(|error| {
            tracing::warn!(%error, %district, photo = %photo_id, "deleting a purged photo's renditions");
            ApiError::Unavailable(
                "storage did not delete the photos' renditions; the photos are no longer \
                 the person's, and calling again finishes the purge"
                    .into(),
            )
        })?;
        let deleted = i64::try_from(deleted).unwrap_or(i64::MAX);
        write(
            &state.db,
            photo_purge::Entity::update_many()
                .col_expr(
                    photo_purge::Column::RenditionsDeleted,
                    Expr::col(photo_purge::Column::RenditionsDeleted).add(deleted),
                )
                .col_expr(
                    photo_purge::Column::PendingPhotos,
                    Expr::value(to_json(&pending)?),
                )
                .filter(photo_purge::Column::Id.eq(purge.id.as_str())),
        )
        .await?;
    }
    Ok(())
}

/// Asks ingest to delete the originals of the purged photos' files, then marks the purge done.
/// If ingest does not answer, the purge stays unfinished and says so: `503`.
async fn delete_originals(
    state: &PersonPhotosState,
    district: &DistrictId,
    purge_id: &str,
) -> Result<(), ApiError> {
    let row = photo_purge::Entity::find_by_id(purge_id.to_owned())
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("purge {purge_id} vanished")))?;
    let files: Vec<UploadedFile> = json_list(&row.pending_files)?;
    // Ingest is asked even with no photos: files uploaded for the person that never became a
    // photo (no image, say) are theirs too.
    let person = PersonId::from(row.person_id.as_str());
    let purged = ask_ingest(state, district, &person, files).await?;
    let deleted = i64::try_from(purged.objects_deleted).unwrap_or(i64::MAX);
    let archives = i64::try_from(purged.archives_deleted).unwrap_or(i64::MAX);
    write(
        &state.db,
        photo_purge::Entity::update_many()
            .col_expr(
                photo_purge::Column::OriginalsDeleted,
                Expr::col(photo_purge::Column::OriginalsDeleted).add(deleted),
            )
            .col_expr(
                photo_purge::Column::ArchivesDeleted,
                Expr::col(photo_purge::Column::ArchivesDeleted).add(archives),
            )
            .col_expr(photo_purge::Column::PendingFiles, Expr::value("[]"))
            .col_expr(photo_purge::Column::FinishedAt, Expr::value(Utc::now()))
            .filter(photo_purge::Column::Id.eq(purge_id)),
    )
    .await?;
    Ok(())
}

async fn ask_ingest(
    state: &PersonPhotosState,
    district: &DistrictId,
    person: &PersonId,
    files: Vec<UploadedFile>,
) -> Result<OriginalsPurged, ApiError> {
    let unavailable = || {
        ApiError::Unavailable(
            "the ingest service did not delete the original files; the photos are no longer the \
             person's and their renditions are deleted, but the purge is not finished: call \
             again to finish it"
                .into(),
        )
    };
    let request = serde_json::to_vec(&PurgeOriginals {
        v: SCHEMA_VERSION,
        district: district.clone(),
        files,
        person_id: Some(person.clone()),
    })
    .map_err(ApiError::internal)?;
    let reply = tokio::time::timeout(
        INGEST_PATIENCE,
        state.bus.nats.request(INGEST_PURGE_SUBJECT, request.into()),
    )
    .await;
    let reply = match reply {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => {
            tracing::warn!(%error, %district, "asking ingest to delete purged originals");
            return Err(unavailable());
        }
        Err(_) => {
            tracing::warn!(%district, "ingest did not answer a purge in time");
            return Err(unavailable());
        }
    };
    serde_json::from_slice(&reply.payload).map_err(|error| {
        tracing::warn!(%error, "ingest's answer to a purge");
        unavailable()
    })
}

/// The photo a person had before `photo`: its `previous_photo_id`, passing over photos of the
/// same job (two files of one person in one upload), among `of_job`.
pub(crate) fn before_job<'a>(
    photo: &'a photo::Model,
    of_job: &'a std::collections::HashMap<String, photo::Model>,
) -> Option<&'a str> {
    let mut previous = photo.previous_photo_id.as_deref();
    // Each step moves to a strictly older upload of the job, so this ends; the bound only
    // guards against rows written by hand.
    for _ in 0..=of_job.len() {
        match previous.and_then(|id| of_job.get(id)) {
            Some(same_job) => previous = same_job.previous_photo_id.as_deref(),
            None => return previous,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn row(id: &str, job: &str, previous: Option<&str>) -> photo::Model {
        photo::Model {
            id: id.into(),
            district_id: "d".into(),
            person_id: "p".into(),
            job_id: job.into(),
            seq: 0,
            file_name: "x.jpg".into(),
            upload_rank: format!("{job}/0"),
            renditions: "[]".into(),
            outcome: ApplyOutcome::Replaced,
            previous_photo_id: previous.map(Into::into),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn the_photo_before_a_job_passes_over_the_jobs_own() {
        let of_job: HashMap<String, photo::Model> = [
            ("b1", row("b1", "job-b", Some("a1"))),
            ("b2", row("b2", "job-b", Some("b1"))),
        ]
        .into_iter()
        .map(|(id, r)| (id.to_owned(), r))
        .collect();
        assert_eq!(before_job(&of_job["b2"], &of_job), Some("a1"));
        let first = row("c1", "job-c", None);
        assert_eq!(before_job(&first, &of_job), None);
        // A loop written by hand ends, with no photo to go back to.
        let looped: HashMap<String, photo::Model> = [
            ("x", row("x", "job-x", Some("y"))),
            ("y", row("y", "job-x", Some("x"))),
        ]
        .into_iter()
        .map(|(id, r)| (id.to_owned(), r))
        .collect();
        assert_eq!(before_job(&looped["x"], &looped), None);
    }
}
