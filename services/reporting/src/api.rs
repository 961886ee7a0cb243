//! Jobs and their logs over HTTP.

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pictureday_access::{Auth, Caller};
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

#[derive(Serialize)]
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
    })
}

async fn list_jobs(
    State(state): State<ReportingState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<JobBody>>, ApiError> {
    let district = state.auth.district(&caller, &raw).await?;
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

async fn get_job(
    State(state): State<ReportingState>,
    caller: Caller,
    Path((raw, job_id)): Path<(String, String)>,
) -> Result<Json<JobBody>, ApiError> {
    let district = state.auth.district(&caller, &raw).await?;
    let row = find_job(&state, &district, &job_id).await?;
    Ok(Json(job_body(&state, &row)?))
}

#[derive(Deserialize)]
struct LogQuery {
    format: Option<String>,
}

async fn get_log(
    State(state): State<ReportingState>,
    caller: Caller,
    headers: HeaderMap,
    Path((raw, job_id)): Path<(String, String)>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let district = state.auth.district(&caller, &raw).await?;
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

#[derive(Serialize)]
struct DeadLetterRow {
    consumer: String,
    subject: String,
    reason: String,
    created_at: DateTime<Utc>,
}

/// Events about the job's files that a service could not read or handle and set aside.
async fn get_dead_letters(
    State(state): State<ReportingState>,
    caller: Caller,
    Path((raw, job_id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let district = state.auth.district(&caller, &raw).await?;
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
