//! Undoing a job: `POST /v1/districts/{district}/jobs/{job}/undo` gives everyone whose current
//! photo came from the job the photo they had before it (or none); a person whose photo changed
//! since (a newer upload, a photo removed or restored by hand) is left as they are and listed
//! with the reason. The undo is recorded — a job is undone once; `GET …/undo` shows the record —
//! and announced as `job.undone`. The job's photos stay in the people's histories.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pictureday_access::{Caller, Role};
use pictureday_contract::events::{ApplyOutcome, JobState, JobUndone, SCHEMA_VERSION};
use pictureday_contract::subjects::job_undone_subject;
use pictureday_contract::{DistrictId, JobId, PersonId, PhotoId};
use pictureday_platform::bus::Outgoing;
use pictureday_platform::db::{begin_write, lock_key};
use pictureday_platform::http::ApiError;
use pictureday_platform::job_status;
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::db::{job_undo, person, photo};
use crate::person_photos::{PersonPhotosState, before_job, set_current, to_json};
use crate::placement;

pub fn router(state: PersonPhotosState) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/jobs/{job}/undo",
            post(undo_job).get(get_undo),
        )
        .with_state(state)
}

/// A person given back the photo they had before the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = UndoRestored)]
struct Restored {
    #[schema(value_type = String)]
    person_id: PersonId,
    /// The job's photo, no longer current.
    #[schema(value_type = String)]
    photo_id: PhotoId,
    /// The photo current again.
    #[schema(value_type = String)]
    restored_photo_id: PhotoId,
}

/// A person who had no photo before the job (or whose earlier one was purged since): none now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = UndoCleared)]
struct Cleared {
    #[schema(value_type = String)]
    person_id: PersonId,
    #[schema(value_type = String)]
    photo_id: PhotoId,
}

/// A person whose photo changed since the job, left as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = UndoLeftAlone)]
struct LeftAlone {
    #[schema(value_type = String)]
    person_id: PersonId,
    /// The job's photo of them.
    #[schema(value_type = String)]
    photo_id: PhotoId,
    #[schema(value_type = Option<String>)]
    current_photo_id: Option<PhotoId>,
    reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct UndoCounts {
    restored: usize,
    cleared: usize,
    left_alone: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = JobUndo)]
struct UndoBody {
    #[schema(value_type = String)]
    job_id: JobId,
    district: String,
    undone_by: String,
    undone_at: DateTime<Utc>,
    counts: UndoCounts,
    restored: Vec<Restored>,
    cleared: Vec<Cleared>,
    left_alone: Vec<LeftAlone>,
}

impl UndoBody {
    fn of(row: job_undo::Model) -> Result<Self, ApiError> {
        let restored: Vec<Restored> =
            serde_json::from_str(&row.restored).map_err(ApiError::internal)?;
        let cleared: Vec<Cleared> =
            serde_json::from_str(&row.cleared).map_err(ApiError::internal)?;
        let left_alone: Vec<LeftAlone> =
            serde_json::from_str(&row.left_alone).map_err(ApiError::internal)?;
        Ok(Self {
            job_id: row.job_id.into(),
            district: row.district_id,
            undone_by: row.undone_by,
            undone_at: row.undone_at,
            counts: UndoCounts {
                restored: restored.len(),
                cleared: cleared.len(),
                left_alone: left_alone.len(),
            },
            restored,
            cleared,
            left_alone,
        })
    }

    fn event(&self, district: &DistrictId) -> Result<Outgoing, ApiError> {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Outgoing::new(
            job_undone_subject(district, &self.job_id),
            format!("undone:{}", self.job_id),
            &JobUndone {
                v: SCHEMA_VERSION,
                district: district.clone(),
                job_id: self.job_id.clone(),
                undone_by: self.undone_by.clone(),
                undone_at: self.undone_at,
                restored: count(self.counts.restored),
                cleared: count(self.counts.cleared),
                left_alone: count(self.counts.left_alone),
            },
        )
        .map_err(ApiError::internal)
    }
}

enum Undoing {
    Done(job_undo::Model),
    /// The job was undone before: its record.
    AlreadyDone(job_undo::Model),
}

/// Undoes a finished job: everyone whose photo came from it gets back the one they had (importer).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/jobs/{job}/undo",
    tag = "jobs",
    operation_id = "undoJob",
    description = "A person whose photo changed since the job is left as they are, and listed with the reason. A job is undone once; the job's photos stay in the people's histories.",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("job" = String, Path, description = "The job's id (`job_id`).")),
    responses(
        (status = 200, description = "Undone.", body = UndoBody,
            example = json!({"job_id": "0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "district": "springfield", "undone_by": "tok_0196f1c5", "undone_at": "2026-11-30T12:00:00Z", "counts": {"restored": 1, "cleared": 1, "left_alone": 0}, "restored": [{"person_id": "0196f1c2-7d3a-7c4e-8a1b-2c3d4e5f6a7b", "photo_id": "0196f1c3-1a2b-7c4e-8a1b-2c3d4e5f6a7b", "restored_photo_id": "0196f1c0-0000-7c4e-8a1b-2c3d4e5f6a7b"}], "cleared": [{"person_id": "0196f1c2-7d3a-7c4e-8a1b-000000000002", "photo_id": "0196f1c3-1a2b-7c4e-8a1b-000000000002"}], "left_alone": []})),
        (status = 409, description = "Still running, a preview not applied, or undone already (the record in `undo`).", body = pictureday_platform::openapi::ErrorBody),
        (status = 503, description = "Reporting did not say how the job stands; try again.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn undo_job(
    State(state): State<PersonPhotosState>,
    caller: Caller,
    Path((raw, job_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let district = state
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    // Only reporting knows whether the job exists and has finished: undoing a job still running
    // would be overtaken by its own later photos.
    let status = job_status::ask(&state.bus.nats, &district, &job_id)
        .await
        .map_err(|error| {
            tracing::warn!(%error, job = %job_id, "asking reporting about a job to undo");
            ApiError::Unavailable(
                "the reporting service did not say how the job stands; try again shortly".into(),
            )
        })?
        .ok_or_else(|| ApiError::NotFound(format!("no job {job_id:?} in district {district}")))?;
    if !status.state.is_terminal() {
        return Err(ApiError::Conflict(format!(
            "the job is still running (state {}); undo it once it has finished",
            status.state.as_str()
        )));
    }
    if status.state == JobState::Previewed {
        return Err(ApiError::Conflict(
            "the job is a preview that was not applied: it changed no one's photo".into(),
        ));
    }
    match undo(&state.db, &district, &job_id, caller.who()).await? {
        Undoing::Done(row) => {
            let body = UndoBody::of(row)?;
            // The undo is committed; a lost announcement is sent again by the next call.
            if let Err(error) = state.bus.publisher.publish(body.event(&district)?).await {
                tracing::warn!(%error, job = %job_id, "could not announce an undone job");
            }
            tracing::info!(%district, job = %job_id, by = %body.undone_by, counts = ?body.counts, "job undone");
            Ok((StatusCode::OK, Json(body)).into_response())
        }
        Undoing::AlreadyDone(row) => {
            let body = UndoBody::of(row)?;
            // Same message id: a copy JetStream still remembers is dropped.
            if let Err(error) = state.bus.publisher.publish(body.event(&district)?).await {
                tracing::warn!(%error, job = %job_id, "could not announce an undone job");
            }
            let message = format!(
                "job {job_id} was already undone at {} by {}",
                body.undone_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                body.undone_by
            );
            Ok((
                StatusCode::CONFLICT,
                Json(json!({
                    "error": { "code": "conflict", "message": message },
                    "undo": body,
                })),
            )
                .into_response())
        }
    }
}

/// How a job was undone (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/jobs/{job}/undo",
    tag = "jobs",
    operation_id = "getJobUndo",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("job" = String, Path, description = "The job's id (`job_id`).")),
    responses((status = 200, description = "The undo's record; `404` if the job was not undone.", body = UndoBody))
)]
async fn get_undo(
    State(state): State<PersonPhotosState>,
    caller: Caller,
    Path((raw, job_id)): Path<(String, String)>,
) -> Result<Json<UndoBody>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let row = job_undo::Entity::find_by_id(job_id.clone())
        .filter(job_undo::Column::DistrictId.eq(district.as_str()))
        .one(&state.db)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "job {job_id:?} of district {district} has not been undone"
            ))
        })?;
    Ok(Json(UndoBody::of(row)?))
}

/// Puts back, in one transaction, every person's photo from before the job, if it is still the
/// job's photo; records the undo. The job's lock makes a second call wait and then find the
/// record; the people are locked as photos being applied lock them.
async fn undo(
    db: &DatabaseConnection,
    district: &DistrictId,
    job_id: &str,
    who: String,
) -> Result<Undoing, ApiError> {
    let txn = begin_write(db).await?;
    lock_key(&txn, "undo", job_id).await?;
    if let Some(done) = job_undo::Entity::find_by_id(job_id.to_owned())
        .filter(job_undo::Column::DistrictId.eq(district.as_str()))
        .one(&txn)
        .await?
    {
        return Ok(Undoing::AlreadyDone(done));
    }
    let placed = photo::Entity::find()
        .filter(photo::Column::JobId.eq(job_id))
        .filter(photo::Column::DistrictId.eq(district.as_str()))
        .filter(photo::Column::Outcome.is_in([ApplyOutcome::Applied, ApplyOutcome::Replaced]))
        .order_by_asc(photo::Column::Seq)
        .all(&txn)
        .await?;
    // Each person's photos of the job, the last one placed last.
    let mut by_person: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in &placed {
        by_person
            .entry(row.person_id.clone())
            .or_default()
            .push(row.id.clone());
    }
    let of_job: HashMap<String, photo::Model> =
        placed.into_iter().map(|p| (p.id.clone(), p)).collect();
    placement::lock_people(&txn, by_person.keys().map(String::as_str).collect()).await?;
    let (mut restored, mut cleared, mut left_alone) = (Vec::new(), Vec::new(), Vec::new());
    for (person_id, photos) in &by_person {
        let person = person::Entity::find_by_id(person_id.clone())
            .filter(person::Column::DistrictId.eq(district.as_str()))
            .one(&txn)
            .await?;
        let last = photos.last().and_then(|id| of_job.get(id));
        let (Some(person), Some(last)) = (person, last) else {
            continue;
        };
        let current = person
            .current_photo_id
            .as_deref()
            .and_then(|id| of_job.get(id));
        let Some(current) = current else {
            left_alone.push(LeftAlone {
                person_id: person_id.as_str().into(),
                photo_id: last.id.as_str().into(),
                current_photo_id: person.current_photo_id.as_deref().map(Into::into),
                reason: changed_since(&txn, last, person.current_photo_id.as_deref()).await?,
            });
            continue;
        };
        let before = match before_job(current, &of_job) {
            Some(id) => {
                photo::Entity::find_by_id(id.to_owned())
                    .filter(photo::Column::DistrictId.eq(district.as_str()))
                    .one(&txn)
                    .await?
            }
            None => None,
        };
        set_current(&txn, person_id, before.as_ref()).await?;
        match before {
            Some(before) => restored.push(Restored {
                person_id: person_id.as_str().into(),
                photo_id: current.id.as_str().into(),
                restored_photo_id: before.id.into(),
            }),
            None => cleared.push(Cleared {
                person_id: person_id.as_str().into(),
                photo_id: current.id.as_str().into(),
            }),
        }
    }
    let row = job_undo::ActiveModel {
        job_id: Set(job_id.to_owned()),
        district_id: Set(district.as_str().to_owned()),
        undone_by: Set(who),
        undone_at: Set(Utc::now()),
        restored: Set(to_json(&restored)?),
        cleared: Set(to_json(&cleared)?),
        left_alone: Set(to_json(&left_alone)?),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(Undoing::Done(row))
}

/// Why a person whose current photo is not the job's is left alone.
async fn changed_since(
    txn: &DatabaseTransaction,
    job_photo: &photo::Model,
    current: Option<&str>,
) -> Result<String, DbErr> {
    let Some(current) = current else {
        return Ok("their photo was removed since".into());
    };
    let row = photo::Entity::find_by_id(current.to_owned())
        .one(txn)
        .await?;
    Ok(match row {
        Some(row) if row.upload_rank > job_photo.upload_rank => format!(
            "their photo was replaced since by job {} ({})",
            row.job_id, row.file_name
        ),
        Some(row) => format!(
            "an older photo was made their photo again since (job {}, {})",
            row.job_id, row.file_name
        ),
        None => "their photo was changed since".into(),
    })
}
