//! `POST /v1/districts/{district}/imports`: accepts an upload, answers 202 once its bytes are
//! stored and the job is recorded, and publishes its events.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRef, Multipart, Path, Query, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use pictureday_access::{Auth, Caller, Role};
use pictureday_contract::JobId;
use pictureday_contract::events::{ImportMode, ImportOptions, ReplacePolicy};
use pictureday_platform::http::ApiError;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::Ingest;
use crate::jobs::{self, NewJob};
use crate::upload::{self, Destination};

/// An upload's spool directory, removed however the request ends: refused, failed, or dropped
/// because the client went away mid-upload (the handler is then never resumed).
pub(crate) struct SpoolDir(pub(crate) std::path::PathBuf);

impl SpoolDir {
    pub(crate) async fn create(path: std::path::PathBuf) -> Result<Self, ApiError> {
        tokio::fs::create_dir_all(&path)
            .await
            .map_err(ApiError::io)?;
        Ok(Self(path))
    }
}

impl Drop for SpoolDir {
    fn drop(&mut self) {
        // Blocking, but brief: what is left is at most the parts of one upload.
        match std::fs::remove_dir_all(&self.0) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(%error, spool = %self.0.display(), "could not remove spool directory");
            }
        }
    }
}

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

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ImportAccepted)]
pub(crate) struct Accepted {
    #[schema(value_type = String)]
    pub(crate) job_id: JobId,
    status_url: String,
    log_url: String,
    files: usize,
    warnings: Vec<String>,
    mode: ImportMode,
    replace: ReplacePolicy,
}

impl Accepted {
    /// The answer for a job already recorded (an import asked for again).
    pub(crate) fn recorded(
        district: &pictureday_contract::DistrictId,
        job: &crate::db::job::Model,
    ) -> Self {
        let job_id = JobId::from(job.id.clone());
        Self {
            status_url: format!("/v1/districts/{district}/jobs/{job_id}"),
            log_url: format!("/v1/districts/{district}/jobs/{job_id}/log"),
            files: usize::try_from(job.files).unwrap_or(0),
            warnings: serde_json::from_str(&job.warnings).unwrap_or_default(),
            mode: job.mode,
            replace: job.replace,
            job_id,
        }
    }
}

/// `?mode=preview&replace=missing_only`, as text: unknown values are refused by name below.
#[derive(Deserialize)]
pub(crate) struct ImportQuery {
    mode: Option<String>,
    replace: Option<String>,
}

impl ImportQuery {
    pub(crate) fn options(&self) -> Result<ImportOptions, ApiError> {
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

/// Uploads photos: a zip, files, a SmartPass mapping CSV, a photographer's package (importer).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/imports",
    tag = "imports",
    operation_id = "createImport",
    description = "`multipart/form-data` with any of: `mapping` (a SmartPass mapping CSV: no header; an email or identifier, then the image's file name), `files` (also `files[]`, `file`: image files, any number), `archive` (a zip of images, any size, streamed to disk; one `.csv` or `idlink.txt` inside is its mapping, an `INDEX.TXT` / `MASTER.TXT` its photographer's index). A `files` part over the per-photo limit (50 MB) or a request over the upload limit (10 GB) is a `413`. Answered `202` once the bytes are stored and the job recorded; nothing is kept of a refused upload.",
    params(
        ("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"),
        ("mode" = Option<pictureday_contract::events::ImportMode>, Query, description = "`apply` (the default) or `preview`: run everything up to the roster and change no one's photo."),
        ("replace" = Option<pictureday_contract::events::ReplacePolicy>, Query, description = "Whose photo the import may set: `always` (the default), `missing_only`, `existing_only`.")
    ),
    request_body(content = crate::openapi::ImportForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Stored and recorded; follow the job at `status_url`.", body = Accepted,
            example = json!({"job_id": "0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "status_url": "/v1/districts/springfield/jobs/0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "log_url": "/v1/districts/springfield/jobs/0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b/log", "files": 8, "warnings": [], "mode": "apply", "replace": "always"})),
        (status = 400, description = "An unknown `mode`, `replace` or form part.", body = pictureday_platform::openapi::ErrorBody,
            example = json!({"error": {"code": "bad_request", "message": "mode=later: use apply (the default) or preview"}})),
        (status = 413, description = "A file or the request over its limit.", body = pictureday_platform::openapi::ErrorBody),
        (status = 422, description = "No photos, an archive that is not a zip, or one whose entries overlap.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
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
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    accept(&state, caller, raw, options, length, multipart)
        .instrument(span)
        .await
}

async fn accept(
    state: &Ingest,
    caller: Caller,
    raw: String,
    options: ImportOptions,
    length: Option<u64>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let district = state
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    let limit = state.photos.max_upload_bytes;
    // A request that says up front it is too large is refused before a byte is read.
    if let Some(length) = length
        && length > limit
    {
        return Err(ApiError::PayloadTooLarge(format!(
            "the upload is larger than the {} limit for one request; send it in parts",
            upload::size_text(limit)
        )));
    }
    let job_id = JobId::new();
    let spool = SpoolDir::create(state.spool.join(job_id.as_str())).await?;
    let received = upload::receive(
        multipart,
        Destination {
            district: &district,
            job_id: &job_id,
            spool: &spool.0,
            max_file_bytes: state.photos.max_file_bytes,
            max_upload_bytes: limit,
        },
    )
    .await?;
    // Every byte is in: from here the upload is stored and recorded even if the client goes
    // away, so no object is left without its job.
    let committer = state.clone();
    tokio::spawn(
        async move {
            let committed = commit(&committer, district, job_id, options, received).await;
            drop(spool);
            committed
        }
        .in_current_span(),
    )
    .await
    .map_err(ApiError::internal)?
}

/// Stores an accepted upload's files, records its job and starts publishing it.
/// Deletes what a refused upload had stored already: a child's photo must not stay in storage
/// with no job to account for it. Best effort: storage that just failed may fail again, and then
/// the objects are named in the log for an operator.
async fn forget_upload(state: &Ingest, district: &pictureday_contract::DistrictId, job_id: &JobId) {
    let prefix = pictureday_contract::keys::upload_prefix(district, job_id);
    let prefix = prefix.trim_end_matches('/');
    match state.storage.delete_prefix(prefix).await {
        Ok(deleted) => {
            tracing::info!(%district, job = %job_id, deleted, "removed a refused upload's objects")
        }
        Err(error) => {
            tracing::error!(%district, job = %job_id, %error, prefix, "a refused upload's objects could not be removed")
        }
    }
}

/// Also how one person's photo is accepted (`one_photo`): a job of one file.
pub(crate) async fn commit(
    state: &Ingest,
    district: pictureday_contract::DistrictId,
    job_id: JobId,
    options: ImportOptions,
    received: upload::Received,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    if let Err(error) = received.store(&state.storage).await {
        forget_upload(state, &district, &job_id).await;
        return Err(error);
    }
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
    if let Err(error) = jobs::record(&state.db, &new).await {
        forget_upload(state, &district, &job_id).await;
        return Err(ApiError::from_anyhow(error));
    }
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
