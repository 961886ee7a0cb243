//! Jobs and their logs over HTTP.

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pictureday_access::{Auth, Caller, Role};
use pictureday_contract::DistrictId;
use pictureday_contract::events::{ImportOptions, JobCounts, JobState};
use pictureday_platform::http::{ApiError, Page, Paged};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use crate::Reporting;
use crate::db::{dead_letter, job_status};
use crate::job_lookup::{self, FindError};
use crate::log_stream;
use crate::projection;

#[derive(Clone)]
struct ReportingState {
    reporting: Reporting,
    auth: Arc<Auth>,
}

impl FromRef<ReportingState> for Arc<Auth> {
    fn from_ref(state: &ReportingState) -> Self {
        state.auth.clone()
    }
}

pub(crate) fn router(reporting: Reporting, auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/v1/districts/{district}/jobs", get(list_jobs))
        .route("/v1/districts/{district}/jobs/{job}", get(get_job))
        .route("/v1/districts/{district}/jobs/{job}/log", get(get_log))
        .route(
            "/v1/districts/{district}/jobs/{job}/dead-letters",
            get(get_dead_letters),
        )
        .with_state(ReportingState { reporting, auth })
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Job)]
pub struct JobBody {
    job_id: String,
    district: String,
    state: JobState,
    counts: JobCounts,
    /// What the import asked for: `mode` (`apply`, `preview`) and `replace`.
    options: ImportOptions,
    warnings: Vec<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    /// While the job cannot go on, why (`database unavailable since …`).
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting: Option<String>,
    /// Why the job failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    log_url: String,
    /// When the job was undone (`POST …/jobs/{job}/undo`): by whom, when, and how many people
    /// got their earlier photo back (`restored`), were left with none (`cleared`) or were left
    /// as they are because their photo changed since (`left_alone`).
    #[serde(skip_serializing_if = "Option::is_none")]
    undo: Option<UndoSummary>,
}

/// A job's undo, as the job shows it.
#[derive(Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UndoSummary {
    undone_by: String,
    undone_at: DateTime<Utc>,
    restored: u32,
    cleared: u32,
    left_alone: u32,
}

fn job_body(state: &ReportingState, row: &job_status::Model) -> Result<JobBody, ApiError> {
    let status = projection::status_of(row)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("job {} has a bad state", row.job_id)))?;
    let status = state
        .reporting
        .waiting
        .annotate(vec![status])
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("job {} vanished", row.job_id)))?;
    Ok(JobBody {
        waiting: status.waiting,
        failure: status.failure,
        log_url: format!("/v1/districts/{}/jobs/{}/log", row.district_id, row.job_id),
        job_id: status.job_id.to_string(),
        district: row.district_id.clone(),
        state: status.state,
        counts: status.counts,
        options: status.options,
        warnings: serde_json::from_str(&row.warnings).unwrap_or_default(),
        created_at: status.created_at,
        started_at: status.started_at,
        finished_at: status.finished_at,
        undo: row
            .undo
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok()),
    })
}

/// The district's jobs, newest first (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/jobs",
    tag = "jobs",
    operation_id = "listJobs",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), Page),
    responses(
        (status = 200, description = "A page of jobs.", body = Paged<JobBody>, example = json!({"items": [{"job_id": "0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "district": "springfield", "state": "finished_with_errors", "counts": {"files": 8, "matched": 7, "unmatched": 1, "processed": 5, "rejected": 2, "applied": 5, "skipped": 0, "previewed": 0, "parked": 0, "replayed": 0}, "options": {"mode": "apply", "replace": "always"}, "warnings": [], "created_at": "2026-11-30T10:00:00Z", "started_at": "2026-11-30T10:00:01Z", "finished_at": "2026-11-30T10:00:09Z", "log_url": "/v1/districts/springfield/jobs/0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b/log"}], "next_after": null})),
        (status = 400, description = "A bad `limit` or `after`.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn list_jobs(
    State(state): State<ReportingState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<JobBody>>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let limit = page.limit()?;
    let mut query = job_status::Entity::find()
        .filter(job_status::Column::DistrictId.eq(district.as_str()))
        .order_by_desc(job_status::Column::JobId)
        .limit(limit);
    if let Some(after) = page.after()? {
        query = query.filter(job_status::Column::JobId.lt(after));
    }
    let rows = query.all(&state.reporting.db).await?;
    let next_after = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|j| j.job_id.clone()))
        .flatten();
    let items = rows
        .iter()
        .map(|row| job_body(&state, row))
        .collect::<Result<_, _>>()?;
    Ok(Json(Paged { items, next_after }))
}

/// The job's projection (see `job_lookup`), or the error the API answers.
async fn find_job(
    state: &ReportingState,
    district: &DistrictId,
    job_id: &str,
) -> Result<job_status::Model, ApiError> {
    match job_lookup::find_job(&state.reporting, district, job_id).await {
        Ok(Some(row)) => Ok(row),
        Ok(None) => Err(ApiError::NotFound(format!(
            "no job {job_id:?} in district {district}"
        ))),
        Err(FindError::Database(error)) => Err(error.into()),
        Err(error @ FindError::IngestUnavailable) => Err(ApiError::Unavailable(error.to_string())),
    }
}

/// A job: its state and counts (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/jobs/{job}",
    tag = "jobs",
    operation_id = "getJob",
    description = "`state`: `queued` → `processing` → `finished` (every file applied or skipped) or `finished_with_errors` (some unmatched or rejected); a preview goes to `previewed` and, once applied, to `finished` / `finished_with_errors`. `failed` is for a job that cannot go on.",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("job" = String, Path, description = "The job's id (`job_id`).")),
    responses((status = 200, description = "The job.", body = JobBody, example = json!({"job_id": "0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "district": "springfield", "state": "finished_with_errors", "counts": {"files": 8, "matched": 7, "unmatched": 1, "processed": 5, "rejected": 2, "applied": 5, "skipped": 0, "previewed": 0, "parked": 0, "replayed": 0}, "options": {"mode": "apply", "replace": "always"}, "warnings": [], "created_at": "2026-11-30T10:00:00Z", "started_at": "2026-11-30T10:00:01Z", "finished_at": "2026-11-30T10:00:09Z", "log_url": "/v1/districts/springfield/jobs/0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b/log"})))
)]
async fn get_job(
    State(state): State<ReportingState>,
    caller: Caller,
    Path((raw, job_id)): Path<(String, String)>,
) -> Result<Json<JobBody>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let row = find_job(&state, &district, &job_id).await?;
    Ok(Json(job_body(&state, &row)?))
}

#[derive(Deserialize)]
struct LogQuery {
    format: Option<String>,
}

/// What happened to every file of the job, in upload order (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/jobs/{job}/log",
    tag = "jobs",
    operation_id = "getJobLog",
    description = "One row per file: `seq`, `file_name`, `outcome` (`pending`, `applied`, `replaced`, `superseded`, `skipped`, `previewed`, `unmatched`, `rejected`), `person_id`, `matched_by`, `photo_id`, `reason`. JSON by default, CSV (formula-safe) with `format=csv` or `Accept: text/csv`. Streamed: an error after the first rows cuts the download short.",
    params(
        ("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("job" = String, Path, description = "The job's id (`job_id`)."),
        ("format" = Option<String>, Query, description = "`csv` or `json` (the default).")
    ),
    responses(
        (status = 200, description = "The log, streamed.", content(
            (crate::openapi::JobLog = "application/json", example = json!({"items": [{"seq": 1, "file_name": "1001.jpg", "outcome": "applied", "person_id": "0196f1c2-7d3a-7c4e-8a1b-2c3d4e5f6a7b", "matched_by": "student_number", "photo_id": "0196f1c3-1a2b-7c4e-8a1b-2c3d4e5f6a7b", "reason": null}, {"seq": 2, "file_name": "1234.jpg", "outcome": "unmatched", "person_id": null, "matched_by": null, "photo_id": null, "reason": "no person with student number, SIS id or email 1234"}], "job_id": "0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b"})),
            (String = "text/csv")
        )),
        (status = 400, description = "A bad `format`.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn get_log(
    State(state): State<ReportingState>,
    caller: Caller,
    headers: HeaderMap,
    Path((raw, job_id)): Path<(String, String)>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    find_job(&state, &district, &job_id).await?;
    let csv_wanted = match query.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format={other}: use csv or json"
            )));
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
    };
    let format = if csv_wanted {
        log_stream::Format::Csv
    } else {
        log_stream::Format::Json
    };
    let log = log_stream::LogOf {
        district: district.as_str().to_owned(),
        job_id: job_id.clone(),
    };
    let body = log_stream::body(state.reporting.db.clone(), log, format)
        .await
        .map_err(|error| match error {
            log_stream::StreamError::Database(db) => ApiError::from(db),
            other => ApiError::internal(other),
        })?;
    if !csv_wanted {
        return Ok((
            [(header::CONTENT_TYPE, "application/json".to_owned())],
            body,
        )
            .into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"job-{job_id}-log.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DeadLetter)]
pub(crate) struct DeadLetterRow {
    consumer: String,
    subject: String,
    reason: String,
    created_at: DateTime<Utc>,
}

/// Events about the job's files that a service could not read or handle and set aside.
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/jobs/{job}/dead-letters",
    tag = "jobs",
    operation_id = "getJobDeadLetters",
    summary = "Events of the job a service could not read or handle, and set aside (viewer).",
    description = "The first 1,000, oldest first; each file they were about still ends in an outcome in the log.",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("job" = String, Path, description = "The job's id (`job_id`).")),
    responses((status = 200, description = "The events set aside.", body = crate::openapi::DeadLetters,
        example = json!({"job_id": "0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "items": []})))
)]
async fn get_dead_letters(
    State(state): State<ReportingState>,
    caller: Caller,
    Path((raw, job_id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    find_job(&state, &district, &job_id).await?;
    let rows = dead_letter::Entity::find()
        .filter(dead_letter::Column::JobId.eq(job_id.as_str()))
        .filter(dead_letter::Column::DistrictId.eq(district.as_str()))
        .order_by_asc(dead_letter::Column::Sequence)
        .limit(1000)
        .all(&state.reporting.db)
        .await?;
    let items: Vec<DeadLetterRow> = rows
        .into_iter()
        .map(|row| DeadLetterRow {
            consumer: row.consumer,
            subject: row.subject,
            reason: row.reason,
            created_at: row.created_at,
        })
        .collect();
    Ok(Json(
        serde_json::json!({ "job_id": job_id, "items": items }),
    ))
}
