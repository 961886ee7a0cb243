//! Roster uploads over HTTP: `POST /v1/districts/{d}/roster` spools the CSV, records an import
//! and waits a little for it; the import's status, the district's imports and an import's row
//! errors (streamed) under `/v1/districts/{d}/roster/imports`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use pictureday_access::{Caller, Role};
use pictureday_contract::DistrictId;
use pictureday_platform::csv_out::CsvBuilder;
use pictureday_platform::db::begin_write;
use pictureday_platform::http::{ApiError, Page, Paged};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::api::RosterState;
use crate::db::{roster_import, roster_import_error};
use crate::imports::{ImportState, RosterImportId, db_time, spool_key, spool_prefix};
use crate::roster_csv::RosterReader;
use crate::sources::oneroster::{self, IdentifierMap};

/// The largest roster CSV accepted: a district of well over a million people. It is spooled to
/// disk and storage as it arrives, never held in memory.
pub const MAX_ROSTER_BYTES: u64 = 512 * 1024 * 1024;
/// The longest wait a post may ask for (`?wait=<seconds>`).
pub const MAX_WAIT_SECS: u64 = 60;
/// Row errors in a finished post's answer; the whole log is at the import's `errors_url`.
const ANSWERED_ERRORS: u64 = 1000;
/// Rows per query of a streamed error log.
const PAGE_ROWS: u64 = 1000;

pub fn routes() -> Router<RosterState> {
    use axum::routing::{get, post};
    Router::new()
        .route(
            "/v1/districts/{district}/roster",
            // The limit is checked while the body streams to disk.
            post(upload_roster).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v1/districts/{district}/roster/imports", get(list_imports))
        .route(
            "/v1/districts/{district}/roster/imports/{import}",
            get(get_import),
        )
        .route(
            "/v1/districts/{district}/roster/imports/{import}/errors",
            get(get_errors),
        )
}

#[derive(Deserialize)]
struct UploadQuery {
    wait: Option<String>,
}

impl UploadQuery {
    fn patience(&self, default: Duration) -> Result<Duration, ApiError> {
        match self.wait.as_deref() {
            None | Some("true") => Ok(default),
            Some("false") => Ok(Duration::ZERO),
            Some(raw) => match raw.parse::<u64>() {
                Ok(secs) if secs <= MAX_WAIT_SECS => Ok(Duration::from_secs(secs)),
                _ => Err(ApiError::BadRequest(format!(
                    "wait={}: use true, false or a number of seconds from 0 to {MAX_WAIT_SECS}",
                    raw.chars().take(32).collect::<String>()
                ))),
            },
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RosterRowError)]
pub(crate) struct RowErrorBody {
    /// The file of a OneRoster zip the row is in (`users.csv`); absent for a roster CSV.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    row: i64,
    field: String,
    reason: String,
}

impl From<roster_import_error::Model> for RowErrorBody {
    fn from(e: roster_import_error::Model) -> Self {
        Self {
            file: e.file,
            row: e.row,
            field: e.field,
            reason: e.reason,
        }
    }
}

/// The answer to a post whose import finished while it waited: what the synchronous upload
/// always answered, and the import.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RosterImportFinished)]
struct FinishedBody {
    created: i64,
    updated: i64,
    unchanged: i64,
    rejected_rows: i64,
    /// OneRoster zips: people deactivated (`tobedeleted`, `enabledUser=false`, or missing from a
    /// bulk `users.csv`), reactivated, and rows ignored (guardians, parents, relatives).
    #[serde(skip_serializing_if = "Option::is_none")]
    deactivated: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reactivated: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<i64>,
    errors: Vec<RowErrorBody>,
    import: String,
    /// Only when `errors` is not the whole log.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors_truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors_url: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RosterImportAccepted)]
struct AcceptedBody {
    import: String,
    state: ImportState,
    status_url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RosterImport)]
struct ImportBody {
    import: String,
    district: String,
    state: ImportState,
    bytes: i64,
    /// Rows of the file read and applied so far (the header not counted).
    rows_read: i64,
    created: i64,
    updated: i64,
    unchanged: i64,
    rejected_rows: i64,
    /// Entries of the row-error log (a rejected row may have several).
    error_count: i64,
    /// `csv` or `oneroster` (a OneRoster zip; `rows_read` then counts `users.csv` rows).
    format: Option<String>,
    /// People deactivated: a OneRoster `tobedeleted` or `enabledUser=false`, or missing from a
    /// bulk `users.csv`; a roster CSV row with `status` `inactive`.
    deactivated: i64,
    reactivated: i64,
    /// Rows skipped on purpose: OneRoster guardians, parents and relatives.
    ignored: i64,
    /// Why the import failed.
    error: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    status_url: String,
    errors_url: String,
}

fn status_url(district: &str, id: &str) -> String {
    format!("/v1/districts/{district}/roster/imports/{id}")
}

impl From<roster_import::Model> for ImportBody {
    fn from(m: roster_import::Model) -> Self {
        let status_url = status_url(&m.district_id, &m.id);
        Self {
            errors_url: format!("{status_url}/errors"),
            status_url,
            state: ImportState::of(&m.state),
            rows_read: (m.last_row - 1).max(0),
            import: m.id,
            district: m.district_id,
            bytes: m.bytes,
            created: m.created,
            updated: m.updated,
            unchanged: m.unchanged,
            rejected_rows: m.rejected_rows,
            error_count: m.errors,
            format: m.format,
            deactivated: m.deactivated,
            reactivated: m.reactivated,
            ignored: m.ignored,
            error: m.error,
            created_at: m.created_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
        }
    }
}

/// A spooled upload, removed however the request ends unless storage took it.
struct Spooled {
    path: tempfile::TempPath,
    bytes: u64,
}

fn size_text(bytes: u64) -> String {
    format!("{} MB", bytes / (1024 * 1024))
}

/// Streams the request body to a file in the spool directory, refusing it once it passes
/// [`MAX_ROSTER_BYTES`].
async fn spool_body(dir: &std::path::Path, body: Body) -> Result<Spooled, ApiError> {
    tokio::fs::create_dir_all(dir).await.map_err(ApiError::io)?;
    let (file, path) = tempfile::NamedTempFile::new_in(dir)
        .map_err(ApiError::io)?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut bytes = 0u64;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::BadRequest(format!("the roster could not be read: {error}"))
        })?;
        bytes += chunk.len() as u64;
        if bytes > MAX_ROSTER_BYTES {
            return Err(ApiError::PayloadTooLarge(format!(
                "the roster is larger than the {} limit",
                size_text(MAX_ROSTER_BYTES)
            )));
        }
        file.write_all(&chunk).await.map_err(ApiError::io)?;
    }
    file.flush().await.map_err(ApiError::io)?;
    file.sync_all().await.map_err(ApiError::io)?;
    Ok(Spooled { path, bytes })
}

/// What an upload is: a roster CSV, or a OneRoster zip (it starts as a zip does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    OneRoster,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::OneRoster => "oneroster",
        }
    }
}

/// A roster whose header is wrong is refused at once (`422`), as it always was, and nothing is
/// recorded; so is a OneRoster zip whose manifest, files or header rows are wrong.
async fn check_header(path: &std::path::Path) -> Result<Format, ApiError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut file = std::fs::File::open(&path)?;
        let mut head = Vec::with_capacity(4);
        std::io::Read::by_ref(&mut file)
            .take(4)
            .read_to_end(&mut head)?;
        if oneroster::is_zip(&head) {
            return Ok::<_, std::io::Error>(
                oneroster::check_file(std::fs::File::open(&path)?)
                    .map(|_| Format::OneRoster)
                    .map_err(|e| format!("OneRoster: {e}")),
            );
        }
        let file = std::fs::File::open(&path)?;
        Ok::<_, std::io::Error>(
            RosterReader::new(std::io::BufReader::new(file))
                .map(|_| Format::Csv)
                .map_err(|e| format!("roster CSV: {e}")),
        )
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::io)?
    .map_err(|message| ApiError::Unprocessable {
        message,
        details: vec![],
    })
}

/// Uploads a roster CSV (importer).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/roster",
    tag = "roster",
    operation_id = "uploadRoster",
    description = "The CSV (up to 512 MB) is streamed to storage and recorded as a roster import, which a background worker applies 1,000 rows per transaction. The post waits for it (10 s by default, or `wait`): `200` when it finished, else `202` with where to follow it. People are upserted by `sis_id`, else by `email`; rows with errors are skipped and reported. A OneRoster 1.1 or 1.2 CSV zip (recognised by its `manifest.csv`) is imported the same way: `orgs.csv` schools, `users.csv` people (a bulk file deactivates the source's people it does not list; a delta's `tobedeleted` deactivates), 1.2 `roles.csv`; `oneroster.<source>=<target>` parameters choose which identifiers become which (see docs/rosters.md).",
    params(
        ("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"),
        ("wait" = Option<String>, Query, description = "`true` (the default wait), `false` (do not wait) or seconds, 0–60.", example = "false"),
        ("oneroster.userIds.SIS" = Option<String>, Query, description = "OneRoster zips: which Pictureday identifier (`sis_id`, `student_number`, `state_id`, `staff_id`, `none`) a source fills; sources are `identifier` (default: `student_number` for students, `staff_id` for staff), `sourcedId`, `username`, `userMasterIdentifier` and `userIds.<type>`, each as `oneroster.<source>`.", example = "sis_id")
    ),
    request_body(content = String, content_type = "text/csv", description = "A header row with `role`, `first_name`, `last_name` and `sis_id` or `email` (and optionally `email`, `sis_id`, `student_number`, `school`, `state_id`, `staff_id`, `preferred_first_name`, `grade`, `homeroom`, `teacher`), in any order.",
        example = "role,email,sis_id,student_number,first_name,last_name,school\nstudent,ada@springfield.k12.us,S1001,1001,Ada,Lovelace,North\n"),
    responses(
        (status = 200, description = "The import finished within the wait.", body = FinishedBody,
            example = json!({"created": 9, "updated": 0, "unchanged": 0, "rejected_rows": 1, "errors": [{"row": 12, "field": "role", "reason": "must be student or staff, not \"teacher\""}], "import": "0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b"})),
        (status = 202, description = "Recorded, still queued or running; `Location` is its status.", body = AcceptedBody,
            headers(("Location" = String, description = "The import's status URL.")),
            example = json!({"import": "0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b", "state": "running", "status_url": "/v1/districts/springfield/roster/imports/0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b"})),
        (status = 400, description = "A bad `wait`.", body = pictureday_platform::openapi::ErrorBody),
        (status = 413, description = "A body over 512 MB.", body = pictureday_platform::openapi::ErrorBody),
        (status = 422, description = "A bad header row or an empty body (nothing is recorded), or an import that failed within the wait because of the file (its id in `details`).", body = pictureday_platform::openapi::ErrorBody,
            example = json!({"error": {"code": "unprocessable", "message": "roster CSV: missing required column last_name"}}))
    )
)]
async fn upload_roster(
    State(state): State<RosterState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(query): Query<UploadQuery>,
    Query(parameters): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<Response, ApiError> {
    let district = state
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    let patience = query.patience(state.roster_wait)?;
    let mapping =
        IdentifierMap::from_parameters(parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(ApiError::BadRequest)?;
    let imports = &state.imports;
    let spooled = spool_body(imports.spool(), body).await?;
    let format = check_header(&spooled.path).await?;
    let options = match format {
        Format::OneRoster if !mapping.is_default() => {
            Some(serde_json::to_string(&mapping).map_err(ApiError::internal)?)
        }
        _ => None,
    };
    let id = RosterImportId::new();
    let key = spool_key(&district, &id);
    imports.storage().put_file(&key, &spooled.path).await?;
    let recorded = async {
        let txn = begin_write(imports.db()).await?;
        roster_import::queued(
            id.as_str(),
            district.as_str(),
            key,
            spooled.bytes,
            Some(format.as_str().to_owned()),
            options,
            db_time(Utc::now()),
        )
        .insert(&txn)
        .await?;
        txn.commit().await
    }
    .await;
    if let Err(error) = recorded {
        if let Err(e) = imports
            .storage()
            .delete_prefix(&spool_prefix(&district, &id))
            .await
        {
            tracing::warn!(error = %e, "removing an unrecorded roster upload");
        }
        return Err(error.into());
    }
    imports.wake();
    tracing::info!(%district, import = %id, bytes = spooled.bytes, "roster import queued");
    // Recorded: from here on the answer is about the import, never a refusal to be retried (a
    // retry would import the roster again).
    let import = match imports.wait(&id, patience).await {
        Ok(Some(import)) => import,
        Ok(None) => {
            return Err(ApiError::internal(anyhow::anyhow!(
                "roster import {id} disappeared"
            )));
        }
        Err(error) => {
            tracing::warn!(import = %id, %error, "reading a roster import while waiting for it");
            return Ok(accepted(&district, id.as_str(), ImportState::Queued));
        }
    };
    match ImportState::of(&import.state) {
        ImportState::Completed => {
            let id = import.id.clone();
            match finished_answer(imports.db(), &district, import).await {
                Ok(answer) => Ok(answer),
                Err(error) => {
                    tracing::warn!(import = %id, %error, "reading a finished roster import's errors");
                    Ok(accepted(&district, &id, ImportState::Completed))
                }
            }
        }
        ImportState::Failed => {
            let message = import.error.unwrap_or_default();
            if message.starts_with("roster CSV:") || message.starts_with("OneRoster:") {
                Err(ApiError::Unprocessable {
                    message,
                    details: vec![serde_json::json!({ "import": import.id })],
                })
            } else {
                Err(ApiError::internal(anyhow::anyhow!(
                    "roster import {} failed: {message}",
                    import.id
                )))
            }
        }
        state @ (ImportState::Queued | ImportState::Running) => {
            Ok(accepted(&district, &import.id, state))
        }
    }
}

/// `202`: the import is recorded and will run; where to follow it.
fn accepted(district: &DistrictId, id: &str, state: ImportState) -> Response {
    let url = status_url(district.as_str(), id);
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&url) {
        headers.insert(header::LOCATION, location);
    }
    (
        StatusCode::ACCEPTED,
        headers,
        Json(AcceptedBody {
            import: id.to_owned(),
            state,
            status_url: url,
        }),
    )
        .into_response()
}

async fn finished_answer(
    db: &DatabaseConnection,
    district: &DistrictId,
    import: roster_import::Model,
) -> Result<Response, ApiError> {
    let oneroster = import.format.as_deref() == Some(Format::OneRoster.as_str());
    let errors = roster_import_error::Entity::find()
        .filter(roster_import_error::Column::ImportId.eq(import.id.as_str()))
        .order_by_asc(roster_import_error::Column::Seq)
        .limit(ANSWERED_ERRORS)
        .all(db)
        .await
        .map_err(ApiError::from)?;
    let truncated = u64::try_from(import.errors).unwrap_or(0) > ANSWERED_ERRORS;
    let url = status_url(district.as_str(), &import.id);
    Ok(Json(FinishedBody {
        created: import.created,
        updated: import.updated,
        unchanged: import.unchanged,
        rejected_rows: import.rejected_rows,
        // A roster CSV says them too when its `status` column changed anyone.
        deactivated: (oneroster || import.deactivated + import.reactivated > 0)
            .then_some(import.deactivated),
        reactivated: (oneroster || import.deactivated + import.reactivated > 0)
            .then_some(import.reactivated),
        ignored: oneroster.then_some(import.ignored),
        errors: errors.into_iter().map(Into::into).collect(),
        import: import.id,
        errors_truncated: truncated.then_some(true),
        errors_url: truncated.then(|| format!("{url}/errors")),
    })
    .into_response())
}

fn import_id(raw: &str) -> Result<RosterImportId, ApiError> {
    RosterImportId::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

async fn find_import(
    db: &DatabaseConnection,
    district: &DistrictId,
    id: &RosterImportId,
) -> Result<roster_import::Model, ApiError> {
    roster_import::Entity::find_by_id(id.as_str().to_owned())
        .filter(roster_import::Column::DistrictId.eq(district.as_str()))
        .one(db)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("no roster import {id} in district {district}")))
}

/// A roster import: its state and counts (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/roster/imports/{import}",
    tag = "roster",
    operation_id = "getRosterImport",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("import" = String, Path, description = "The import's id (a canonical UUID).")),
    responses(
        (status = 200, description = "The import.", body = ImportBody, example = json!({"import": "0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b", "district": "springfield", "state": "completed", "bytes": 104857600, "rows_read": 1000000, "created": 999990, "updated": 0, "unchanged": 0, "rejected_rows": 10, "error_count": 12, "error": null, "created_at": "2026-11-30T10:00:00Z", "started_at": "2026-11-30T10:00:01Z", "finished_at": "2026-11-30T10:04:10Z", "status_url": "/v1/districts/springfield/roster/imports/0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b", "errors_url": "/v1/districts/springfield/roster/imports/0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b/errors"})),
        (status = 400, description = "Not an import id.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn get_import(
    State(state): State<RosterState>,
    caller: Caller,
    Path((raw, import)): Path<(String, String)>,
) -> Result<Json<ImportBody>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let id = import_id(&import)?;
    Ok(Json(find_import(&state.db, &district, &id).await?.into()))
}

/// The district's roster imports, newest first (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/roster/imports",
    tag = "roster",
    operation_id = "listRosterImports",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), Page),
    responses(
        (status = 200, description = "A page of imports.", body = Paged<ImportBody>, example = json!({"items": [{"import": "0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b", "district": "springfield", "state": "completed", "bytes": 104857600, "rows_read": 1000000, "created": 999990, "updated": 0, "unchanged": 0, "rejected_rows": 10, "error_count": 12, "error": null, "created_at": "2026-11-30T10:00:00Z", "started_at": "2026-11-30T10:00:01Z", "finished_at": "2026-11-30T10:04:10Z", "status_url": "/v1/districts/springfield/roster/imports/0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b", "errors_url": "/v1/districts/springfield/roster/imports/0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b/errors"}], "next_after": null})),
        (status = 400, description = "A bad `limit` or `after`.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn list_imports(
    State(state): State<RosterState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<ImportBody>>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let limit = page.limit()?;
    let mut query = roster_import::Entity::find()
        .filter(roster_import::Column::DistrictId.eq(district.as_str()))
        .order_by_desc(roster_import::Column::Id)
        .limit(limit);
    if let Some(after) = page.after()? {
        query = query.filter(roster_import::Column::Id.lt(after));
    }
    let rows = query.all(&state.db).await.map_err(ApiError::from)?;
    let next_after = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    Ok(Json(Paged {
        items: rows.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

#[derive(Deserialize)]
struct ErrorsQuery {
    format: Option<String>,
}

/// Why a streamed error log stopped in the middle: the client sees its download cut short.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("reading the next page: {0}")]
    Database(#[from] DbErr),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

async fn error_page(
    db: &DatabaseConnection,
    import: &str,
    after: i64,
) -> Result<Vec<roster_import_error::Model>, DbErr> {
    roster_import_error::Entity::find()
        .filter(roster_import_error::Column::ImportId.eq(import))
        .filter(roster_import_error::Column::Seq.gt(after))
        .order_by_asc(roster_import_error::Column::Seq)
        .limit(PAGE_ROWS)
        .all(db)
        .await
}

/// One page of the log, in `csv` or JSON (items separated by commas; `first` says whether an
/// item was written before).
fn encode(
    rows: Vec<roster_import_error::Model>,
    csv_wanted: bool,
    first: bool,
) -> Result<Bytes, StreamError> {
    if csv_wanted {
        let mut csv = CsvBuilder::new();
        for r in &rows {
            let row = r.row.to_string();
            match &r.file {
                // A OneRoster import's log: `file,row,field,reason`.
                Some(file) => csv.row([file.as_str(), &row, &r.field, &r.reason])?,
                None => csv.row([row.as_str(), r.field.as_str(), r.reason.as_str()])?,
            }
        }
        return Ok(csv.finish()?.into());
    }
    let mut out = Vec::new();
    for (i, r) in rows.into_iter().enumerate() {
        if i > 0 || !first {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &RowErrorBody::from(r))?;
    }
    Ok(out.into())
}

/// The import's row errors in file order, streamed: read [`PAGE_ROWS`] per short query, never
/// held whole. JSON `{"import": "…", "items": [{"row", "field", "reason"}…]}`, or CSV
/// `row,field,reason` with `?format=csv` or `Accept: text/csv`.
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/roster/imports/{import}/errors",
    tag = "roster",
    operation_id = "getRosterImportErrors",
    summary = "An import's row errors (viewer).",
    description = "Every row error, in file order: JSON `{\"import\", \"items\": [{\"row\", \"field\", \"reason\"}]}`, or CSV `row,field,reason` (formula-safe) with `format=csv` or `Accept: text/csv`. Streamed, whatever its length: an error after the first rows cuts the download short.",
    params(
        ("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("import" = String, Path, description = "The import's id (a canonical UUID)."),
        ("format" = Option<String>, Query, description = "`csv` or `json` (the default; CSV also with `Accept: text/csv`).")
    ),
    responses(
        (status = 200, description = "Every row error, in file order, streamed.", content(
            (crate::openapi::RowErrors = "application/json", example = json!({"import": "0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b", "items": [{"row": 12, "field": "role", "reason": "must be student or staff, not \"teacher\""}]})),
            (String = "text/csv", example = "row,field,reason\r\n12,role,\"must be student or staff, not \"\"teacher\"\"\"\r\n")
        )),
        (status = 400, description = "Not an import id, or a bad `format`.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn get_errors(
    State(state): State<RosterState>,
    caller: Caller,
    headers: HeaderMap,
    Path((raw, import)): Path<(String, String)>,
    Query(query): Query<ErrorsQuery>,
) -> Result<Response, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let id = import_id(&import)?;
    let import = find_import(&state.db, &district, &id).await?;
    let oneroster = import.format.as_deref() == Some(Format::OneRoster.as_str());
    let csv_wanted = match query.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format={}: use csv or json",
                other.chars().take(32).collect::<String>()
            )));
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
    };
    // The first page is read before answering, so a database that is down is still a 503.
    let first = error_page(&state.db, id.as_str(), 0)
        .await
        .map_err(ApiError::from)?;
    let next = (first.len() as u64 == PAGE_ROWS)
        .then(|| first.last().map(|r| r.seq))
        .flatten();
    let head = if csv_wanted {
        let mut csv = CsvBuilder::new();
        if oneroster {
            csv.row(["file", "row", "field", "reason"])
        } else {
            csv.row(["row", "field", "reason"])
        }
        .map_err(ApiError::internal)?;
        let mut head = csv.finish().map_err(ApiError::internal)?;
        head.extend_from_slice(&encode(first, true, true).map_err(ApiError::internal)?);
        Bytes::from(head)
    } else {
        let mut head = format!(
            "{{\"import\":{},\"items\":[",
            serde_json::to_string(id.as_str()).map_err(ApiError::internal)?
        )
        .into_bytes();
        head.extend_from_slice(&encode(first, false, true).map_err(ApiError::internal)?);
        Bytes::from(head)
    };
    let db = state.db.clone();
    let import_key = id.as_str().to_owned();
    let rest = stream::try_unfold(next, move |after| {
        let (db, import) = (db.clone(), import_key.clone());
        async move {
            let Some(after) = after else {
                return Ok::<_, StreamError>(None);
            };
            let rows = error_page(&db, &import, after).await?;
            let next = (rows.len() as u64 == PAGE_ROWS)
                .then(|| rows.last().map(|r| r.seq))
                .flatten();
            Ok(Some((encode(rows, csv_wanted, false)?, next)))
        }
    });
    let tail = if csv_wanted {
        Bytes::new()
    } else {
        Bytes::from_static(b"]}")
    };
    let logged = id.as_str().to_owned();
    let body = stream::once(async move { Ok(head) })
        .chain(rest)
        .chain(stream::once(async move { Ok(tail) }))
        .try_filter(|chunk| std::future::ready(!chunk.is_empty()))
        // The status is sent already: an error can only cut the body short.
        .inspect_err(move |error| {
            tracing::error!(import = %logged, %error, "roster import error log cut short");
        });
    let body = Body::from_stream(body);
    if csv_wanted {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"roster-import-{id}-errors.csv\""),
                ),
            ],
            body,
        )
            .into_response());
    }
    Ok((
        [(header::CONTENT_TYPE, "application/json".to_owned())],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_true_false_or_seconds() {
        let q = |w: Option<&str>| UploadQuery {
            wait: w.map(str::to_owned),
        };
        let d = Duration::from_secs(10);
        assert_eq!(q(None).patience(d).ok(), Some(d));
        assert_eq!(q(Some("true")).patience(d).ok(), Some(d));
        assert_eq!(q(Some("false")).patience(d).ok(), Some(Duration::ZERO));
        assert_eq!(q(Some("3")).patience(d).ok(), Some(Duration::from_secs(3)));
        assert!(q(Some("61")).patience(d).is_err());
        assert!(q(Some("soon")).patience(d).is_err());
    }

    #[test]
    fn json_pages_join_into_one_array() -> anyhow::Result<()> {
        let row = |seq: i64| roster_import_error::Model {
            import_id: "i".into(),
            seq,
            row: seq + 1,
            field: "role".into(),
            reason: "is \"x\"".into(),
            file: None,
        };
        let mut whole = b"[".to_vec();
        whole.extend_from_slice(&encode(vec![row(1), row(2)], false, true)?);
        whole.extend_from_slice(&encode(vec![row(3)], false, false)?);
        whole.extend_from_slice(b"]");
        let parsed: serde_json::Value = serde_json::from_slice(&whole)?;
        assert_eq!(parsed.as_array().map(Vec::len), Some(3));
        assert_eq!(parsed[2]["row"], 4);
        let csv = encode(vec![row(1)], true, true)?;
        assert_eq!(csv.as_ref(), b"2,role,\"is \"\"x\"\"\"\r\n");
        Ok(())
    }
}
