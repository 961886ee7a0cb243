//! `POST /v1/districts/{district}/imports`: accepts an upload, answers 202 once its bytes are
//! stored and the job is recorded, and publishes its events.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use pictureday_shared::Context;
use pictureday_shared::auth::{Auth, Caller};
use pictureday_shared::http::ApiError;
use pictureday_shared::ids::new_time_ordered_id;
use serde::Serialize;
use tracing::Instrument;

use crate::jobs::{self, NewJob};
use crate::upload::{self, Destination};

#[derive(Clone)]
struct IngestState {
    ctx: Context,
}

impl FromRef<IngestState> for Arc<Auth> {
    fn from_ref(state: &IngestState) -> Self {
        state.ctx.auth.clone()
    }
}

pub fn router(ctx: Context) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/imports",
            // Archives of a whole district's photos are large; they are streamed to disk.
            post(create_import).layer(DefaultBodyLimit::disable()),
        )
        .with_state(IngestState { ctx })
}

#[derive(Serialize)]
struct Accepted {
    job_id: String,
    status_url: String,
    log_url: String,
    files: usize,
    warnings: Vec<String>,
}

async fn create_import(
    State(state): State<IngestState>,
    caller: Caller,
    headers: HeaderMap,
    Path(raw): Path<String>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    // The upload's trace: every event of every file in it continues this span.
    let span = tracing::info_span!("ingest.upload", district = %raw);
    pictureday_shared::telemetry::follow_http(&span, &headers);
    accept(&state, caller, raw, multipart)
        .instrument(span)
        .await
}

async fn accept(
    state: &IngestState,
    caller: Caller,
    raw: String,
    multipart: Multipart,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let ctx = &state.ctx;
    let district = ctx.auth.district(&caller, &raw).await?;
    let job_id = new_time_ordered_id();
    let spool = ctx.settings.spool_dir.join(&job_id);
    tokio::fs::create_dir_all(&spool)
        .await
        .map_err(ApiError::internal)?;
    let received = upload::receive(
        multipart,
        Destination {
            storage: &ctx.storage,
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
        files: received.files,
        warnings: received.warnings,
    };
    jobs::record(&ctx.db, &new).await?;
    tracing::info!(%district, job = %job_id, files = new.files.len(), "upload accepted");
    let accepted = Accepted {
        status_url: format!("/v1/districts/{district}/jobs/{job_id}"),
        log_url: format!("/v1/districts/{district}/jobs/{job_id}/log"),
        files: new.files.len(),
        warnings: new.warnings.clone(),
        job_id,
    };
    // The job is durable; its events go out in the background (and again from the outbox if
    // this process stops first).
    let publish_ctx = ctx.clone();
    let publish_span = tracing::info_span!("ingest.publish", job = %accepted.job_id);
    tokio::spawn(
        async move {
            if let Err(error) = jobs::publish(&publish_ctx, &new).await {
                tracing::warn!(error = format!("{error:#}"), job = %new.id, "publishing job failed; the outbox will retry");
            }
        }
        .instrument(publish_span),
    );
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}
