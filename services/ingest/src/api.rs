//! `POST /v1/districts/{district}/imports`: accepts an upload, answers 202 once its bytes are
//! stored and the job is recorded, and publishes its events.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRef, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use pictureday_access::{Auth, Caller};
use pictureday_contract::JobId;
use pictureday_contract::events::{ImportMode, ImportOptions, ReplacePolicy};
use pictureday_platform::http::ApiError;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::Ingest;
use crate::jobs::{self, NewJob};
use crate::upload::{self, Destination};

impl FromRef<Ingest> for Arc<Auth> {
    fn from_ref(state: &Ingest) -> Self {
        state.auth.clone()
    }
}

pub(crate) fn router(ingest: Ingest) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/imports",
            // Archives of a whole district's photos are large; they are streamed to disk.
            post(create_import).layer(DefaultBodyLimit::disable()),
        )
        .with_state(ingest)
}

#[derive(Serialize)]
struct Accepted {
    job_id: JobId,
    status_url: String,
    log_url: String,
    files: usize,
    warnings: Vec<String>,
    mode: ImportMode,
    replace: ReplacePolicy,
}

/// `?mode=preview&replace=missing_only`, as text: unknown values are refused by name below.
#[derive(Deserialize)]
struct ImportQuery {
    mode: Option<String>,
    replace: Option<String>,
}

impl ImportQuery {
    fn options(&self) -> Result<ImportOptions, ApiError> {
        let mode = match self.mode.as_deref() {
            None | Some("apply") => ImportMode::Apply,
            Some("preview") => ImportMode::Preview,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "mode={other}: use apply (the default) or preview"
                )));
            }
        };
        let replace = match self.replace.as_deref() {
            None | Some("always") => ReplacePolicy::Always,
            Some("missing_only") => ReplacePolicy::MissingOnly,
            Some("existing_only") => ReplacePolicy::ExistingOnly,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "replace={other}: use always (the default), missing_only or existing_only"
                )));
            }
        };
        Ok(ImportOptions { mode, replace })
    }
}

async fn create_import(
    State(state): State<Ingest>,
    caller: Caller,
    headers: HeaderMap,
    Path(raw): Path<String>,
    query: Result<Query<ImportQuery>, QueryRejection>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let options = query.options()?;
    // The upload's trace: every event of every file in it continues this span.
    let span = tracing::info_span!("ingest.upload", district = %raw);
    pictureday_platform::telemetry::follow_http(&span, &headers);
    accept(&state, caller, raw, options, multipart)
        .instrument(span)
        .await
}

async fn accept(
    state: &Ingest,
    caller: Caller,
    raw: String,
    options: ImportOptions,
    multipart: Multipart,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let district = state.auth.district(&caller, &raw).await?;
    let job_id = JobId::new();
    let spool = state.spool.join(job_id.as_str());
    tokio::fs::create_dir_all(&spool)
        .await
        .map_err(ApiError::io)?;
    let received = upload::receive(
        multipart,
        Destination {
            storage: &state.storage,
            district: &district,
            job_id: &job_id,
            spool: &spool,
        },
    )
    .await;
    if let Err(error) = tokio::fs::remove_dir_all(&spool).await {
        tracing::warn!(%error, spool = %spool.display(), "could not remove spool directory");
    }
    let received = received?;
    let new = NewJob {
        id: job_id.clone(),
        district: district.clone(),
        created_at: Utc::now(),
        has_mapping: received.has_mapping,
        index: received.index,
        options,
        files: received.files,
        warnings: received.warnings,
    };
    jobs::record(&state.db, &new)
        .await
        .map_err(ApiError::from_anyhow)?;
    tracing::info!(%district, job = %job_id, files = new.files.len(), "upload accepted");
    let accepted = Accepted {
        status_url: format!("/v1/districts/{district}/jobs/{job_id}"),
        log_url: format!("/v1/districts/{district}/jobs/{job_id}/log"),
        files: new.files.len(),
        warnings: new.warnings.clone(),
        mode: new.options.mode,
        replace: new.options.replace,
        job_id,
    };
    // The job is durable; its events go out in the background (and again from the outbox if
    // this process stops first).
    let publisher = state.clone();
    let publish_span = tracing::info_span!("ingest.publish", job = %accepted.job_id);
    tokio::spawn(
        async move {
            if let Err(error) = jobs::publish(&publisher, &new).await {
                tracing::warn!(error = format!("{error:#}"), job = %new.id, "publishing job failed; the outbox will retry");
            }
        }
        .instrument(publish_span),
    );
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}
