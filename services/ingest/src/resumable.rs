//! Resumable uploads: a zip sent in pieces, over as many requests as it takes, then imported as
//! `POST …/imports` imports an archive. Each piece is stored as it arrives — a request cut off
//! part-way keeps the bytes that came — so an interrupted upload goes on from the last byte
//! stored instead of starting again (the `Upload-Offset` handshake of the tus protocol). Pieces
//! live in storage and their record in the database, so any replica takes the next piece.
//!
//! - `POST /v1/districts/{d}/uploads` `{"file_name", "size", "fingerprint"}` begins one;
//! - `GET …/uploads` lists those not yet imported (a client finds its own again by name, size
//!   and fingerprint), `GET …/uploads/{id}` says how much is stored (`Upload-Offset`);
//! - `PATCH …/uploads/{id}` with `Upload-Offset: <bytes stored>` sends the next piece;
//! - `POST …/uploads/{id}/import` makes the whole zip a job (asked again, the same job);
//! - `DELETE …/uploads/{id}` abandons it. Uploads untouched for a week are removed.

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use pictureday_access::{Caller, Role};
use pictureday_contract::{DistrictId, JobId, keys};
use pictureday_platform::db::{begin_write, lock_key, write};
use pictureday_platform::http::ApiError;
use pictureday_platform::text::printable;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use crate::Ingest;
use crate::api::{self, Accepted, ImportQuery, SpoolDir};
use crate::db::{job, resumable_upload, resumable_upload_piece};
use crate::upload::{self, Parts};

/// The header saying where a piece starts, and, in answers, how much is stored.
pub const UPLOAD_OFFSET: &str = "upload-offset";
/// An upload neither added to nor imported for this long is removed with what it stored.
pub const EXPIRES_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

pub(crate) fn router(ingest: Ingest) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/uploads",
            post(create_upload).get(list_uploads),
        )
        .route(
            "/v1/districts/{district}/uploads/{upload}",
            // A piece is streamed to disk as it arrives, however large.
            get(get_upload)
                .patch(patch_upload)
                .delete(delete_upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/districts/{district}/uploads/{upload}/import",
            post(import_upload),
        )
        .with_state(ingest)
}

/// What begins an upload.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct NewUpload {
    /// The zip's name, as its job's log will show it.
    file_name: String,
    /// Its size in bytes, all pieces together.
    size: u64,
    /// Anything the client uses to know the file again (a hash of its first mebibyte, its
    /// modification time): kept and listed, never interpreted.
    #[serde(default)]
    fingerprint: Option<String>,
}

/// Where an upload stands.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct UploadStatus {
    upload_id: String,
    file_name: String,
    size: u64,
    /// Bytes stored: the next piece starts here.
    offset: u64,
    complete: bool,
    fingerprint: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The job it became, once imported.
    job_id: Option<String>,
    upload_url: String,
    import_url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct UploadList {
    items: Vec<UploadStatus>,
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    file_name: Option<String>,
    size: Option<u64>,
    fingerprint: Option<String>,
}

fn status_of(district: &DistrictId, row: &resumable_upload::Model) -> UploadStatus {
    let size = u64::try_from(row.size).unwrap_or(0);
    let offset = u64::try_from(row.received).unwrap_or(0);
    let url = format!("/v1/districts/{district}/uploads/{}", row.id);
    UploadStatus {
        upload_id: row.id.clone(),
        file_name: row.file_name.clone(),
        size,
        offset,
        complete: offset == size,
        fingerprint: row.fingerprint.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
        job_id: row.job_id.clone(),
        import_url: format!("{url}/import"),
        upload_url: url,
    }
}

/// The answer about an upload, its offset also in `Upload-Offset`.
fn answer(status: StatusCode, district: &DistrictId, row: &resumable_upload::Model) -> Response {
    let body = status_of(district, row);
    let mut response = (status, Json(&body)).into_response();
    let headers = response.headers_mut();
    headers.insert(UPLOAD_OFFSET, HeaderValue::from(body.offset));
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&body.upload_url)
    {
        headers.insert(header::LOCATION, location);
    }
    response
}

fn new_id() -> String {
    let random: u128 = rand::random();
    format!("{random:032x}")
}

/// Upload ids are what `new_id` makes: anything else names no upload (and no key).
fn check_id(raw: &str) -> Result<&str, ApiError> {
    if raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw)
    } else {
        Err(ApiError::NotFound(format!("no upload {raw}")))
    }
}

async fn find(
    ingest: &Ingest,
    district: &DistrictId,
    id: &str,
) -> Result<resumable_upload::Model, ApiError> {
    resumable_upload::Entity::find_by_id(check_id(id)?)
        .filter(resumable_upload::Column::DistrictId.eq(district.as_str()))
        .one(&ingest.db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no upload {id} in {district}")))
}

/// Begins a resumable upload of one zip (importer).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/uploads",
    tag = "imports",
    operation_id = "createUpload",
    description = "Begins an upload of one zip sent in pieces (`PATCH …/uploads/{upload}`), for archives too large to send in one request without risk. Answered `201` with where to send the pieces (`Location`, `upload_url`). The zip is imported, as an `archive` part of `POST …/imports` is, by `POST …/uploads/{upload}/import` once every byte is stored.",
    params(("district" = String, Path, description = "The district's id.", example = "springfield")),
    request_body(content = NewUpload, example = json!({"file_name": "picture-day-2026.zip", "size": 734003200_u64, "fingerprint": "sha256:9f86d081884c7d65…"})),
    responses(
        (status = 201, description = "Begun; send the bytes from offset 0.", body = UploadStatus),
        (status = 400, description = "Not a zip's name, or a size of 0.", body = pictureday_platform::openapi::ErrorBody),
        (status = 413, description = "Larger than one upload may be.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn create_upload(
    State(ingest): State<Ingest>,
    caller: Caller,
    Path(raw): Path<String>,
    Json(new): Json<NewUpload>,
) -> Result<Response, ApiError> {
    let district = ingest
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    let name = new.file_name.trim();
    if name.is_empty() || name.len() > 255 || printable(name) != name {
        return Err(ApiError::BadRequest(
            "file_name: give the zip's name, up to 255 printable characters".into(),
        ));
    }
    if !name.to_ascii_lowercase().ends_with(".zip") {
        return Err(ApiError::BadRequest(format!(
            "file_name {name}: a resumable upload is one zip (photos, with a mapping CSV or index inside it if any); send loose files with POST /v1/districts/{district}/imports"
        )));
    }
    if new.size == 0 {
        return Err(ApiError::BadRequest("size: the zip has no bytes".into()));
    }
    let limit = ingest.photos.max_upload_bytes;
    if new.size > limit {
        return Err(ApiError::PayloadTooLarge(format!(
            "size: {} is over the {} limit for one upload; split the photos into several zips",
            upload::size_text(new.size),
            upload::size_text(limit)
        )));
    }
    let fingerprint = match new.fingerprint.as_deref().map(str::trim) {
        Some(f) if f.len() > 200 || printable(f) != f => {
            return Err(ApiError::BadRequest(
                "fingerprint: up to 200 printable characters".into(),
            ));
        }
        Some("") | None => None,
        Some(f) => Some(f.to_owned()),
    };
    let now = Utc::now();
    let row = resumable_upload::ActiveModel {
        id: Set(new_id()),
        district_id: Set(district.as_str().to_owned()),
        file_name: Set(name.to_owned()),
        size: Set(i64::try_from(new.size).map_err(ApiError::internal)?),
        received: Set(0),
        fingerprint: Set(fingerprint),
        created_at: Set(now),
        updated_at: Set(now),
        job_id: Set(None),
    };
    let txn = begin_write(&ingest.db).await?;
    let row = row.insert(&txn).await?;
    txn.commit().await?;
    tracing::info!(%district, upload = %row.id, size = new.size, "resumable upload begun");
    Ok(answer(StatusCode::CREATED, &district, &row))
}

/// The district's uploads not yet imported, newest first (importer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/uploads",
    tag = "imports",
    operation_id = "listUploads",
    description = "Uploads begun and not yet imported, newest first (at most 100), so a client interrupted can find its own again by `file_name`, `size` and `fingerprint`.",
    params(
        ("district" = String, Path, description = "The district's id.", example = "springfield"),
        ("file_name" = Option<String>, Query, description = "Only uploads of this name."),
        ("size" = Option<u64>, Query, description = "Only uploads of this size."),
        ("fingerprint" = Option<String>, Query, description = "Only uploads with this fingerprint.")
    ),
    responses((status = 200, description = "The uploads.", body = UploadList))
)]
async fn list_uploads(
    State(ingest): State<Ingest>,
    caller: Caller,
    Path(raw): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<UploadList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let district = ingest
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    let mut select = resumable_upload::Entity::find()
        .filter(resumable_upload::Column::DistrictId.eq(district.as_str()))
        .filter(resumable_upload::Column::JobId.is_null());
    if let Some(name) = &query.file_name {
        select = select.filter(resumable_upload::Column::FileName.eq(name.as_str()));
    }
    if let Some(size) = query.size {
        select = select
            .filter(resumable_upload::Column::Size.eq(i64::try_from(size).unwrap_or(i64::MAX)));
    }
    if let Some(fingerprint) = &query.fingerprint {
        select = select.filter(resumable_upload::Column::Fingerprint.eq(fingerprint.as_str()));
    }
    let rows = select
        .order_by_desc(resumable_upload::Column::CreatedAt)
        .limit(100)
        .all(&ingest.db)
        .await?;
    Ok(Json(UploadList {
        items: rows.iter().map(|r| status_of(&district, r)).collect(),
    }))
}

/// How much of an upload is stored (importer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/uploads/{upload}",
    tag = "imports",
    operation_id = "getUpload",
    description = "Where the upload stands: `offset` (also the `Upload-Offset` header; `HEAD` gives the header alone) is how many bytes are stored, where the next piece starts.",
    params(
        ("district" = String, Path, description = "The district's id.", example = "springfield"),
        ("upload" = String, Path, description = "The upload's id.")
    ),
    responses(
        (status = 200, description = "The upload.", body = UploadStatus),
        (status = 404, description = "No such upload in this district.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn get_upload(
    State(ingest): State<Ingest>,
    caller: Caller,
    Path((raw, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let district = ingest
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    let row = find(&ingest, &district, &id).await?;
    Ok(answer(StatusCode::OK, &district, &row))
}

/// Sends the next piece of an upload (importer).
#[utoipa::path(
    patch,
    path = "/v1/districts/{district}/uploads/{upload}",
    tag = "imports",
    operation_id = "sendUploadPiece",
    description = "The next bytes of the zip as the raw body (`Content-Type: application/offset+octet-stream`), starting at `Upload-Offset`, which must be the bytes stored so far. The piece is stored as it arrives: a request cut off part-way keeps the bytes that came, and the client goes on from the offset `GET` gives. Answered with the new offset.",
    params(
        ("district" = String, Path, description = "The district's id.", example = "springfield"),
        ("upload" = String, Path, description = "The upload's id."),
        ("Upload-Offset" = u64, Header, description = "Where this piece starts: the bytes stored so far.")
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 200, description = "Stored; the next piece starts at `offset`.", body = UploadStatus),
        (status = 400, description = "No or a bad `Upload-Offset`, or a request cut off (its bytes are kept).", body = pictureday_platform::openapi::ErrorBody),
        (status = 404, description = "No such upload in this district.", body = pictureday_platform::openapi::ErrorBody),
        (status = 409, description = "`Upload-Offset` is not where the upload stands (the message says where), or it was imported already.", body = pictureday_platform::openapi::ErrorBody),
        (status = 413, description = "More bytes than the upload's size.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn patch_upload(
    State(ingest): State<Ingest>,
    caller: Caller,
    Path((raw, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let district = ingest
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    let row = find(&ingest, &district, &id).await?;
    let offset: u64 = headers
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Upload-Offset: send the number of bytes already stored (GET the upload to learn it)"
                    .into(),
            )
        })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !matches!(
        content_type,
        "application/offset+octet-stream" | "application/octet-stream"
    ) {
        return Err(ApiError::BadRequest(format!(
            "Content-Type {content_type:?}: send the bytes as application/offset+octet-stream"
        )));
    }
    check_open(&row, offset)?;
    // Read in a task of its own: when the client goes away mid-piece the request is dropped,
    // but what arrived is still stored, so the client can go on from there.
    let span = tracing::info_span!("ingest.upload_piece", %district, upload = %row.id, offset);
    tokio::spawn(receive_piece(ingest, district, row, offset, body).instrument(span))
        .await
        .map_err(ApiError::internal)?
}

/// Refuses a piece that does not start where the upload stands, or an upload imported already.
fn check_open(row: &resumable_upload::Model, offset: u64) -> Result<(), ApiError> {
    if let Some(job) = &row.job_id {
        return Err(ApiError::Conflict(format!(
            "upload {} was imported already, as job {job}",
            row.id
        )));
    }
    let stored = u64::try_from(row.received).unwrap_or(0);
    if offset != stored {
        return Err(ApiError::Conflict(format!(
            "Upload-Offset {offset}: {stored} bytes are stored; send the piece that starts at {stored}"
        )));
    }
    Ok(())
}

async fn receive_piece(
    ingest: Ingest,
    district: DistrictId,
    row: resumable_upload::Model,
    offset: u64,
    body: Body,
) -> Result<Response, ApiError> {
    let size = u64::try_from(row.size).unwrap_or(0);
    let room = size.saturating_sub(offset);
    let piece_id = new_id();
    let spool = SpoolDir::create(ingest.spool.join(format!("piece-{piece_id}"))).await?;
    let path = spool.0.join("piece");
    let mut file = upload::spool_file(&path).await?;
    let mut length = 0u64;
    let mut cut_off = None;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                length += bytes.len() as u64;
                if length > room {
                    return Err(ApiError::PayloadTooLarge(format!(
                        "the piece runs past the upload's {size} bytes: from {offset}, send at most {room}"
                    )));
                }
                file.write_all(&bytes).await.map_err(ApiError::io)?;
            }
            Err(error) => {
                cut_off = Some(error.to_string());
                break;
            }
        }
    }
    file.flush().await.map_err(ApiError::io)?;
    drop(file);
    let row = if length > 0 {
        store_piece(&ingest, &district, &row, offset, length, &piece_id, &path).await?
    } else {
        row
    };
    if let Some(error) = cut_off {
        tracing::info!(%district, upload = %row.id, kept = length, %error, "an upload piece was cut off; what arrived is kept");
        return Err(ApiError::BadRequest(format!(
            "the piece was cut off after {length} bytes, which are kept: go on from offset {}",
            row.received
        )));
    }
    Ok(answer(StatusCode::OK, &district, &row))
}

/// Stores a received piece and moves the upload's offset past it, unless another request
/// moved it first.
async fn store_piece(
    ingest: &Ingest,
    district: &DistrictId,
    row: &resumable_upload::Model,
    offset: u64,
    length: u64,
    piece_id: &str,
    path: &std::path::Path,
) -> Result<resumable_upload::Model, ApiError> {
    let key = keys::resumable_piece(district, &row.id, offset, piece_id);
    ingest.storage.put_file(&key, path).await?;
    let recorded = async {
        let txn = begin_write(&ingest.db).await?;
        lock_key(&txn, "resumable-upload", &row.id).await?;
        let current = resumable_upload::Entity::find_by_id(row.id.as_str())
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("upload {} was abandoned", row.id)))?;
        check_open(&current, offset)?;
        resumable_upload_piece::ActiveModel {
            key: Set(key.clone()),
            upload_id: Set(row.id.clone()),
            start: Set(i64::try_from(offset).map_err(ApiError::internal)?),
            length: Set(i64::try_from(length).map_err(ApiError::internal)?),
        }
        .insert(&txn)
        .await?;
        let mut moved: resumable_upload::ActiveModel = current.into();
        moved.received = Set(i64::try_from(offset + length).map_err(ApiError::internal)?);
        moved.updated_at = Set(Utc::now());
        let moved = moved.update(&txn).await?;
        txn.commit().await?;
        Ok::<_, ApiError>(moved)
    }
    .await;
    if recorded.is_err()
        && let Err(error) = ingest.storage.delete(&key).await
    {
        tracing::warn!(%error, key, "removing a piece that was not recorded");
    }
    recorded
}

/// Imports a complete upload (importer).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/uploads/{upload}/import",
    tag = "imports",
    operation_id = "importUpload",
    description = "Makes the whole zip a job, exactly as an `archive` part of `POST …/imports` is (its mapping CSV and photographer's index inside it included), with the same `mode` and `replace`. Asked again, answers with the same job.",
    params(
        ("district" = String, Path, description = "The district's id.", example = "springfield"),
        ("upload" = String, Path, description = "The upload's id."),
        ("mode" = Option<pictureday_contract::events::ImportMode>, Query, description = "`apply` (the default) or `preview`."),
        ("replace" = Option<pictureday_contract::events::ReplacePolicy>, Query, description = "`always` (the default), `missing_only`, `existing_only`.")
    ),
    responses(
        (status = 202, description = "Recorded; follow the job at `status_url`.", body = Accepted),
        (status = 404, description = "No such upload in this district.", body = pictureday_platform::openapi::ErrorBody),
        (status = 409, description = "Not every byte is stored yet (the message says how many are), or the import is under way.", body = pictureday_platform::openapi::ErrorBody),
        (status = 422, description = "Not a zip, or a zip without photos.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn import_upload(
    State(ingest): State<Ingest>,
    caller: Caller,
    Path((raw, id)): Path<(String, String)>,
    query: Result<Query<ImportQuery>, QueryRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let options = query.options()?;
    let district = ingest
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    let row = find(&ingest, &district, &id).await?;
    if let Some(job_id) = &row.job_id {
        return match job::Entity::find_by_id(job_id.as_str())
            .one(&ingest.db)
            .await?
        {
            Some(job) => Ok((
                StatusCode::ACCEPTED,
                Json(Accepted::recorded(&district, &job)),
            )),
            None => Err(ApiError::Conflict(format!(
                "upload {id} is being imported; ask again in a moment"
            ))),
        };
    }
    let (stored, size) = (row.received, row.size);
    if stored < size {
        return Err(ApiError::Conflict(format!(
            "{stored} of the upload's {size} bytes are stored: send the rest from offset {stored}"
        )));
    }
    // Claimed: from here no piece is added and no second import begins.
    let job_id = JobId::new();
    let claimed = write(
        &ingest.db,
        resumable_upload::Entity::update_many()
            .col_expr(
                resumable_upload::Column::JobId,
                Expr::value(job_id.to_string()),
            )
            .col_expr(resumable_upload::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(resumable_upload::Column::Id.eq(row.id.as_str()))
            .filter(resumable_upload::Column::JobId.is_null()),
    )
    .await?;
    if claimed == 0 {
        return Err(ApiError::Conflict(format!(
            "upload {id} is being imported; ask again in a moment"
        )));
    }
    let span = tracing::info_span!("ingest.upload", %district, upload = %row.id, job = %job_id);
    // Once begun, the import runs to its end even if the client goes away.
    tokio::spawn(
        async move {
            let imported = import(&ingest, &district, &row, job_id, options).await;
            if imported.is_err() {
                // Nothing was recorded: the upload can be imported again (or abandoned).
                let released = write(
                    &ingest.db,
                    resumable_upload::Entity::update_many()
                        .col_expr(
                            resumable_upload::Column::JobId,
                            Expr::value(Option::<String>::None),
                        )
                        .filter(resumable_upload::Column::Id.eq(row.id.as_str())),
                )
                .await;
                if let Err(error) = released {
                    tracing::warn!(%error, upload = %row.id, "an upload whose import failed stays claimed");
                }
            }
            imported
        }
        .instrument(span),
    )
    .await
    .map_err(ApiError::internal)?
}

/// Joins the pieces into the zip, then records its job as `POST …/imports` records one.
async fn import(
    ingest: &Ingest,
    district: &DistrictId,
    row: &resumable_upload::Model,
    job_id: JobId,
    options: pictureday_contract::events::ImportOptions,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let pieces = resumable_upload_piece::Entity::find()
        .filter(resumable_upload_piece::Column::UploadId.eq(row.id.as_str()))
        .order_by_asc(resumable_upload_piece::Column::Start)
        .all(&ingest.db)
        .await?;
    let spool = SpoolDir::create(ingest.spool.join(job_id.as_str())).await?;
    let path = spool.0.join("archive.zip");
    let mut file = tokio::fs::File::create(&path).await.map_err(ApiError::io)?;
    let mut at = 0i64;
    for piece in &pieces {
        if piece.start != at {
            return Err(ApiError::internal(anyhow::anyhow!(
                "upload {}: a piece starts at {} where {at} was expected",
                row.id,
                piece.start
            )));
        }
        let length = u64::try_from(piece.length).map_err(ApiError::internal)?;
        crate::object_copy::append_object(&ingest.storage, &piece.key, length, &mut file)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        at += piece.length;
    }
    file.flush().await.map_err(ApiError::io)?;
    drop(file);
    if at != row.size {
        return Err(ApiError::internal(anyhow::anyhow!(
            "upload {}: its pieces hold {at} of {} bytes",
            row.id,
            row.size
        )));
    }
    let key = keys::upload_archive(district, &job_id, 0);
    let mut parts = Parts::default();
    parts.add_archive(&row.file_name, &path, &key).await?;
    parts.pending.push((key, path.clone()));
    let received = parts.finish()?;
    let accepted = api::commit(ingest, district.clone(), job_id, options, received).await?;
    drop(spool);
    // The zip is stored under its job now: the pieces go.
    forget_pieces(ingest, district, &row.id).await;
    Ok(accepted)
}

/// Deletes an upload's stored pieces and their records.
async fn forget_pieces(ingest: &Ingest, district: &DistrictId, id: &str) {
    let prefix = keys::resumable_prefix(district, id);
    if let Err(error) = ingest
        .storage
        .delete_prefix(prefix.trim_end_matches('/'))
        .await
    {
        tracing::warn!(%error, upload = id, "removing an upload's pieces");
    }
    if let Err(error) = write(
        &ingest.db,
        resumable_upload_piece::Entity::delete_many()
            .filter(resumable_upload_piece::Column::UploadId.eq(id)),
    )
    .await
    {
        tracing::warn!(%error, upload = id, "removing an upload's piece records");
    }
}

/// Abandons an upload and what it stored (importer).
#[utoipa::path(
    delete,
    path = "/v1/districts/{district}/uploads/{upload}",
    tag = "imports",
    operation_id = "deleteUpload",
    description = "Abandons an upload not yet imported: its stored bytes are deleted.",
    params(
        ("district" = String, Path, description = "The district's id.", example = "springfield"),
        ("upload" = String, Path, description = "The upload's id.")
    ),
    responses(
        (status = 204, description = "Abandoned."),
        (status = 404, description = "No such upload in this district.", body = pictureday_platform::openapi::ErrorBody),
        (status = 409, description = "Imported already: the job is kept.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn delete_upload(
    State(ingest): State<Ingest>,
    caller: Caller,
    Path((raw, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let district = ingest
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    let row = find(&ingest, &district, &id).await?;
    if let Some(job) = &row.job_id {
        return Err(ApiError::Conflict(format!(
            "upload {id} was imported as job {job}; undo the job instead"
        )));
    }
    let deleted = write(
        &ingest.db,
        resumable_upload::Entity::delete_many()
            .filter(resumable_upload::Column::Id.eq(row.id.as_str()))
            .filter(resumable_upload::Column::JobId.is_null()),
    )
    .await?;
    if deleted == 0 {
        return Err(ApiError::Conflict(format!("upload {id} is being imported")));
    }
    forget_pieces(&ingest, &district, &row.id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes uploads untouched for [`EXPIRES_AFTER`]: those never finished with what they
/// stored, those imported (their pieces already gone) with their record. How many.
pub(crate) async fn expire(ingest: &Ingest) -> anyhow::Result<u32> {
    let cutoff = Utc::now() - chrono::Duration::from_std(EXPIRES_AFTER)?;
    let old = resumable_upload::Entity::find()
        .filter(resumable_upload::Column::UpdatedAt.lt(cutoff))
        .limit(1000)
        .all(&ingest.db)
        .await?;
    let mut removed = 0;
    for row in old {
        let district = DistrictId::parse(&row.district_id)?;
        if row.job_id.is_none() {
            forget_pieces(ingest, &district, &row.id).await;
        }
        write(
            &ingest.db,
            resumable_upload::Entity::delete_by_id(row.id.as_str()),
        )
        .await?;
        removed += 1;
    }
    Ok(removed)
}
