//! Jobs and their logs over HTTP.

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pictureday_shared::auth::{Auth, Caller};
use pictureday_shared::csv_out::CsvBuilder;
use pictureday_shared::db::entities::{file_outcome, job, job_status};
use pictureday_shared::events::{JobCounts, JobState};
use pictureday_shared::http::{ApiError, Page, Paged};
use pictureday_shared::{Context, DistrictId};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use crate::projection;

#[derive(Clone)]
struct ReportingState {
    ctx: Context,
}

impl FromRef<ReportingState> for Arc<Auth> {
    fn from_ref(state: &ReportingState) -> Self {
        state.ctx.auth.clone()
    }
}

pub fn router(ctx: Context) -> Router {
    Router::new()
        .route("/v1/districts/{district}/jobs", get(list_jobs))
        .route("/v1/districts/{district}/jobs/{job}", get(get_job))
        .route("/v1/districts/{district}/jobs/{job}/log", get(get_log))
        .with_state(ReportingState { ctx })
}

#[derive(Serialize)]
pub struct JobBody {
    job_id: String,
    district: String,
    state: JobState,
    counts: JobCounts,
    warnings: Vec<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    log_url: String,
}

fn job_body(row: &job_status::Model) -> Result<JobBody, ApiError> {
    let status = projection::status_of(row)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("job {} has a bad state", row.job_id)))?;
    Ok(JobBody {
        log_url: format!("/v1/districts/{}/jobs/{}/log", row.district_id, row.job_id),
        job_id: status.job_id,
        district: row.district_id.clone(),
        state: status.state,
        counts: status.counts,
        warnings: serde_json::from_str(&row.warnings).unwrap_or_default(),
        created_at: status.created_at,
        started_at: status.started_at,
        finished_at: status.finished_at,
    })
}

async fn list_jobs(
    State(state): State<ReportingState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<JobBody>>, ApiError> {
    let district = state.ctx.auth.district(&caller, &raw).await?;
    let limit = page.limit()?;
    let mut query = job_status::Entity::find()
        .filter(job_status::Column::DistrictId.eq(district.as_str()))
        .order_by_desc(job_status::Column::JobId)
        .limit(limit);
    if let Some(after) = page.after {
        query = query.filter(job_status::Column::JobId.lt(after));
    }
    let rows = query.all(&state.ctx.db).await?;
    let next_after = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|j| j.job_id.clone()))
        .flatten();
    let items = rows.iter().map(job_body).collect::<Result<_, _>>()?;
    Ok(Json(Paged { items, next_after }))
}

/// The job's projection; a job accepted a moment ago that reporting has not seen yet is shown as
/// queued from ingest's record, so a status URL works as soon as it is handed out.
async fn find_job(
    state: &ReportingState,
    district: &DistrictId,
    job_id: &str,
) -> Result<job_status::Model, ApiError> {
    let db = &state.ctx.db;
    let projected = job_status::Entity::find_by_id(job_id.to_owned())
        .filter(job_status::Column::DistrictId.eq(district.as_str()))
        .one(db)
        .await?;
    if let Some(row) = projected
        && row.created_seen
    {
        return Ok(row);
    }
    let accepted = job::Entity::find_by_id(job_id.to_owned())
        .filter(job::Column::DistrictId.eq(district.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job {job_id:?} in district {district}")))?;
    Ok(job_status::Model {
        job_id: accepted.id,
        district_id: accepted.district_id,
        state: JobState::Queued.as_str().into(),
        created_seen: true,
        files: accepted.files,
        matched: 0,
        unmatched: 0,
        processed: 0,
        rejected: 0,
        applied: 0,
        warnings: accepted.warnings,
        created_at: accepted.created_at,
        started_at: None,
        finished_at: None,
        updated_at: accepted.created_at,
    })
}

async fn get_job(
    State(state): State<ReportingState>,
    caller: Caller,
    Path((raw, job_id)): Path<(String, String)>,
) -> Result<Json<JobBody>, ApiError> {
    let district = state.ctx.auth.district(&caller, &raw).await?;
    let row = find_job(&state, &district, &job_id).await?;
    Ok(Json(job_body(&row)?))
}

#[derive(Deserialize)]
struct LogQuery {
    format: Option<String>,
}

#[derive(Serialize)]
struct LogRow {
    seq: i32,
    file_name: String,
    outcome: String,
    person_id: Option<String>,
    matched_by: Option<String>,
    photo_id: Option<String>,
    reason: Option<String>,
}

async fn get_log(
    State(state): State<ReportingState>,
    caller: Caller,
    headers: HeaderMap,
    Path((raw, job_id)): Path<(String, String)>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let district = state.ctx.auth.district(&caller, &raw).await?;
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
    let rows = file_outcome::Entity::find()
        .filter(file_outcome::Column::JobId.eq(job_id.as_str()))
        .filter(file_outcome::Column::DistrictId.eq(district.as_str()))
        .order_by_asc(file_outcome::Column::Seq)
        .all(&state.ctx.db)
        .await?;
    let rows: Vec<LogRow> = rows
        .into_iter()
        .map(|f| LogRow {
            seq: f.seq,
            file_name: f.file_name,
            outcome: f.outcome,
            person_id: f.person_id,
            matched_by: f.matched_by,
            photo_id: f.photo_id,
            reason: f.reason,
        })
        .collect();
    if !csv_wanted {
        return Ok(Json(serde_json::json!({ "job_id": job_id, "items": rows })).into_response());
    }
    let mut csv = CsvBuilder::new();
    let fail = |e: csv::Error| ApiError::internal(e);
    csv.row(["file_name", "outcome", "person_id", "matched_by", "reason"])
        .map_err(fail)?;
    for row in &rows {
        csv.row([
            row.file_name.as_str(),
            row.outcome.as_str(),
            row.person_id.as_deref().unwrap_or(""),
            row.matched_by.as_deref().unwrap_or(""),
            row.reason.as_deref().unwrap_or(""),
        ])
        .map_err(fail)?;
    }
    let body = csv.finish().map_err(fail)?;
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
