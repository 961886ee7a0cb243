//! `PUT /v1/districts/{district}/people/{person}/photo`: one person's new photo, as the raw
//! request body or as a multipart form with one file. It is an import of one file — same
//! limits, same storage, same job, log row and events as a bulk file — whose file is matched to
//! that person alone (the roster confirms they are still there) and replaces their photo
//! (`replace=always`). With `?wait=true` the answer waits a few seconds for the file's outcome,
//! so a console can show the new photo at once.

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use futures::StreamExt;
use pictureday_access::{Caller, Role};
use pictureday_contract::events::{
    self, ApplyOutcome, ImportOptions, JobState, LookupRequest, LookupResponse, LookupResult,
    MatchQuery, PhotoApplied, PhotoRejected, PhotoUnmatched, SCHEMA_VERSION, Source,
};
use pictureday_contract::subjects::{Kind, ROSTER_LOOKUP_SUBJECT};
use pictureday_contract::{DistrictId, JobId, PersonId, PhotoId, keys};
use pictureday_platform::http::ApiError;
use pictureday_platform::job_status;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tracing::Instrument;

use crate::Ingest;
use crate::api::{self, Accepted, SpoolDir};
use crate::jobs::NewFile;
use crate::mapping::base_name;
use crate::upload::{self, Destination, Received};

/// How long the roster has to say whether the person is on it.
const ROSTER_PATIENCE: Duration = Duration::from_secs(5);
/// How long `?wait=true` waits for the file's outcome and the job's final state.
const WAIT_FOR_OUTCOME: Duration = Duration::from_secs(10);
/// How often reporting is asked whether the job is final once the outcome is known.
const STATUS_POLL: Duration = Duration::from_millis(100);

pub(crate) fn router(ingest: Ingest) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/people/{person}/photo",
            // The body is streamed to disk under the per-photo limit, checked as it arrives.
            put(put_photo).layer(DefaultBodyLimit::disable()),
        )
        .with_state(ingest)
}

#[derive(Deserialize)]
struct PutQuery {
    /// `true` waits for the outcome; anything but `true` or `false` is refused.
    wait: Option<String>,
    /// The name the log shows for a raw body (a form's file part has its own).
    file_name: Option<String>,
}

/// What became of the one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = OnePhotoOutcome)]
#[serde(rename_all = "snake_case")]
enum FileOutcome {
    Applied,
    Replaced,
    Superseded,
    Skipped,
    Previewed,
    Unmatched,
    Rejected,
}

impl From<ApplyOutcome> for FileOutcome {
    fn from(outcome: ApplyOutcome) -> Self {
        match outcome {
            ApplyOutcome::Applied => FileOutcome::Applied,
            ApplyOutcome::Replaced => FileOutcome::Replaced,
            ApplyOutcome::Superseded => FileOutcome::Superseded,
            ApplyOutcome::Skipped => FileOutcome::Skipped,
            ApplyOutcome::Previewed => FileOutcome::Previewed,
        }
    }
}

/// The file's outcome event, as it was published.
#[derive(Debug)]
struct Settled {
    outcome: FileOutcome,
    reason: Option<String>,
    photo_id: Option<PhotoId>,
}

/// `202`: accepted, not final yet.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OnePhotoAccepted)]
struct AcceptedBody {
    #[serde(flatten)]
    accepted: Accepted,
    #[schema(value_type = String)]
    person_id: PersonId,
}

/// `200` to `?wait=true`: the job is final, and this is what became of the photo.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OnePhotoSettled)]
struct FinalBody {
    #[schema(value_type = String)]
    job_id: JobId,
    #[schema(value_type = String)]
    person_id: PersonId,
    state: JobState,
    outcome: FileOutcome,
    reason: Option<String>,
    #[schema(value_type = Option<String>)]
    photo_id: Option<PhotoId>,
    status_url: String,
    log_url: String,
}

/// A new photo for one person: an import of one file that replaces their photo (importer).
#[utoipa::path(
    put,
    path = "/v1/districts/{district}/people/{person}/photo",
    tag = "people",
    operation_id = "putPhoto",
    description = "The image as the raw body (`Content-Type: image/jpeg`, …), or a `multipart/form-data` form with one file. Same limits, storage, job, log row and events as a file of a bulk import; matched to this person alone (`replace=always`). `202` at once; with `wait=true`, `200` with the file's outcome once the job is final (within a few seconds).",
    params(
        ("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("person" = String, Path, description = "The person's id."),
        ("wait" = Option<bool>, Query, description = "`true`: wait for the file's outcome."),
        ("file_name" = Option<String>, Query, description = "The name the log shows for a raw body.")
    ),
    request_body(content(
        (pictureday_platform::openapi::Jpeg = "image/jpeg"),
        ("image/*"),
        ("multipart/form-data")
    )),
    responses(
        (status = 200, description = "`wait=true`: the job is final; what became of the photo.", body = FinalBody,
            example = json!({"job_id": "0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "person_id": "0196f1c2-7d3a-7c4e-8a1b-2c3d4e5f6a7b", "state": "finished", "outcome": "replaced", "reason": null, "photo_id": "0196f1c3-1a2b-7c4e-8a1b-2c3d4e5f6a7b", "status_url": "/v1/districts/springfield/jobs/0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "log_url": "/v1/districts/springfield/jobs/0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b/log"})),
        (status = 202, description = "Stored and recorded; follow the job at `status_url`.", body = AcceptedBody),
        (status = 400, description = "A bad `wait`, or no file.", body = pictureday_platform::openapi::ErrorBody),
        (status = 404, description = "No such person in the district.", body = pictureday_platform::openapi::ErrorBody),
        (status = 413, description = "Over the per-photo limit.", body = pictureday_platform::openapi::ErrorBody),
        (status = 422, description = "An empty body, more or other than one image, or an image inside an archive.", body = pictureday_platform::openapi::ErrorBody),
        (status = 503, description = "The roster service did not say whether the person is on the roster; nothing was stored.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn put_photo(
    State(state): State<Ingest>,
    caller: Caller,
    headers: HeaderMap,
    Path((raw, person)): Path<(String, String)>,
    query: Result<Query<PutQuery>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let wait = match query.wait.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "wait={other}: use true or false (the default)"
            )));
        }
    };
    let span = tracing::info_span!("ingest.one_photo", district = %raw, person = %person);
    pictureday_platform::telemetry::follow_http(&span, &headers);
    let district = state
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .instrument(span.clone())
        .await?;
    let person = PersonId::from(person);
    let name = file_name(query.file_name.as_deref(), &headers);
    accept(&state, district, person, name, wait, &headers, request)
        .instrument(span)
        .await
}

async fn accept(
    state: &Ingest,
    district: DistrictId,
    person: PersonId,
    name: String,
    wait: bool,
    headers: &HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    let limit = state.photos.max_file_bytes;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A raw body that says up front it is too large is refused before a byte is read (a form
    // carries more than the image, so its parts are measured instead).
    if !is_multipart(headers)
        && let Some(length) = length
        && length > limit
    {
        return Err(ApiError::PayloadTooLarge(format!(
            "{name} is larger than the {} limit for one photo",
            upload::size_text(limit)
        )));
    }
    check_person(state, &district, &person).await?;
    let job_id = JobId::new();
    let spool = SpoolDir::create(state.spool.join(job_id.as_str())).await?;
    let destination = Destination {
        district: &district,
        job_id: &job_id,
        spool: &spool.0,
        max_file_bytes: limit,
        max_upload_bytes: limit,
    };
    let mut received = if is_multipart(headers) {
        let multipart = Multipart::from_request(request, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        one_image(upload::receive(multipart, destination).await?)?
    } else {
        receive_body(request.into_body(), name, destination).await?
    };
    for file in &mut received.files {
        file.chosen_person = Some(person.clone());
    }
    // Listening before anything is published, so the outcome cannot pass unseen.
    let outcomes = match wait {
        true => Some(
            state
                .bus
                .nats
                .subscribe(format!("pictureday.photo.*.{district}.{job_id}"))
                .await
                .map_err(|error| {
                    tracing::warn!(%error, "could not listen for a photo's outcome");
                    ApiError::Unavailable("NATS is unavailable; try again shortly".into())
                })?,
        ),
        false => None,
    };
    let deadline = Instant::now() + WAIT_FOR_OUTCOME;
    // Every byte is in: from here the photo is stored and recorded even if the client goes
    // away, so no object is left without its job.
    let committer = state.clone();
    let options = ImportOptions::default();
    let commit_district = district.clone();
    let (_, Json(accepted)) = tokio::spawn(
        async move {
            let committed =
                api::commit(&committer, commit_district, job_id, options, received).await;
            drop(spool);
            committed
        }
        .in_current_span(),
    )
    .await
    .map_err(ApiError::internal)??;
    tracing::info!(%district, job = %accepted.job_id, person = %person, "one person's photo accepted");
    if let Some(outcomes) = outcomes
        && let Some(settled) = await_outcome(outcomes, deadline).await
        && let Some(final_state) = await_final(state, &district, &accepted.job_id, deadline).await
    {
        return Ok((
            StatusCode::OK,
            Json(FinalBody {
                status_url: format!("/v1/districts/{district}/jobs/{}", accepted.job_id),
                log_url: format!("/v1/districts/{district}/jobs/{}/log", accepted.job_id),
                job_id: accepted.job_id,
                person_id: person,
                state: final_state,
                outcome: settled.outcome,
                reason: settled.reason,
                photo_id: settled.photo_id,
            }),
        )
            .into_response());
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(AcceptedBody {
            accepted,
            person_id: person,
        }),
    )
        .into_response())
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// The name the job's log shows: `?file_name=`, else `photo` with the extension its
/// `Content-Type` names (the image-processor reads the format from the bytes, not the name).
fn file_name(asked: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(name) = asked.map(|n| base_name(n).trim()).filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    let extension = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .and_then(|v| match v.as_str() {
            "image/jpeg" | "image/jpg" => Some(".jpg"),
            "image/png" => Some(".png"),
            "image/gif" => Some(".gif"),
            "image/tiff" => Some(".tif"),
            "image/webp" => Some(".webp"),
            "image/heic" | "image/heif" | "image/heic-sequence" => Some(".heic"),
            "image/avif" => Some(".avif"),
            _ => None,
        });
    format!("photo{}", extension.unwrap_or_default())
}

/// Asks the roster whether the person is on the district's roster, as the matcher asks it about
/// files: `404` if not, `503` if the roster does not answer.
async fn check_person(
    state: &Ingest,
    district: &DistrictId,
    person: &PersonId,
) -> Result<(), ApiError> {
    let unavailable = || {
        ApiError::Unavailable(
            "the roster service did not say whether this person is on the roster; try again shortly"
                .into(),
        )
    };
    let request = serde_json::to_vec(&LookupRequest {
        v: SCHEMA_VERSION,
        district: district.clone(),
        queries: vec![MatchQuery::Person {
            person_id: person.clone(),
        }],
    })
    .map_err(ApiError::internal)?;
    let reply = tokio::time::timeout(
        ROSTER_PATIENCE,
        state
            .bus
            .nats
            .request(ROSTER_LOOKUP_SUBJECT, request.into()),
    )
    .await;
    let reply = match reply {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => {
            tracing::warn!(%error, "asking the roster about a person");
            return Err(unavailable());
        }
        Err(_) => return Err(unavailable()),
    };
    let response: LookupResponse = serde_json::from_slice(&reply.payload).map_err(|error| {
        tracing::warn!(%error, "the roster's answer about a person");
        unavailable()
    })?;
    match response.results.into_iter().next() {
        Some(LookupResult::Found { person_id, .. }) if person_id == *person => Ok(()),
        Some(_) => Err(ApiError::NotFound(format!(
            "no person {person:?} in district {district}"
        ))),
        None => Err(unavailable()),
    }
}

/// A form's one image, or why the form is not one.
fn one_image(received: Received) -> Result<Received, ApiError> {
    let refuse = |message: String| ApiError::Unprocessable {
        message,
        details: vec![],
    };
    if received.has_mapping || received.index.is_some() {
        return Err(refuse(
            "send one image: a mapping or an index has no use for one person's photo".into(),
        ));
    }
    match received.files.as_slice() {
        [file] if matches!(file.source, Source::Object { .. }) => Ok(received),
        [_] => Err(refuse(
            "send the image itself as a files part, not in an archive".into(),
        )),
        files => Err(refuse(format!(
            "send one image for one person, not {}",
            files.len()
        ))),
    }
}

/// Streams a raw body to the spool under the per-photo limit, as a form's file part is.
async fn receive_body(body: Body, name: String, to: Destination<'_>) -> Result<Received, ApiError> {
    let path = to.spool.join("file-0");
    let mut file = upload::spool_file(&path).await?;
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("the upload could not be read: {e}")))?;
        size += chunk.len() as u64;
        if size > to.max_file_bytes {
            return Err(ApiError::PayloadTooLarge(format!(
                "{name} is larger than the {} limit for one photo",
                upload::size_text(to.max_file_bytes)
            )));
        }
        file.write_all(&chunk).await.map_err(ApiError::io)?;
    }
    file.flush().await.map_err(ApiError::io)?;
    if size == 0 {
        return Err(ApiError::Unprocessable {
            message: "the request has no image: send it as the body, or as the files part of a \
                      multipart form"
                .into(),
            details: vec![],
        });
    }
    let key = keys::upload_file(to.district, to.job_id, 0);
    Ok(Received {
        files: vec![NewFile::new(
            name,
            Source::Object {
                key: key.clone(),
                size,
            },
        )],
        has_mapping: false,
        index: None,
        warnings: Vec::new(),
        pending: vec![(key, path)],
    })
}

/// The first outcome event of the file (applied, unmatched or rejected) before `deadline`.
async fn await_outcome(mut outcomes: async_nats::Subscriber, deadline: Instant) -> Option<Settled> {
    loop {
        let message = tokio::time::timeout_at(deadline, outcomes.next())
            .await
            .ok()??;
        let (subject, payload) = (message.subject.as_str(), &message.payload);
        let settled = match Kind::of_subject(subject) {
            Some(Kind::Applied) => events::decode::<PhotoApplied>(subject, payload)
                .ok()
                .map(|e| Settled {
                    outcome: e.outcome.into(),
                    reason: e.note,
                    photo_id: Some(e.photo_id),
                }),
            Some(Kind::Rejected) => {
                events::decode::<PhotoRejected>(subject, payload)
                    .ok()
                    .map(|e| Settled {
                        outcome: FileOutcome::Rejected,
                        reason: Some(e.reason),
                        photo_id: None,
                    })
            }
            Some(Kind::Unmatched) => {
                events::decode::<PhotoUnmatched>(subject, payload)
                    .ok()
                    .map(|e| Settled {
                        outcome: FileOutcome::Unmatched,
                        reason: Some(e.reason),
                        photo_id: None,
                    })
            }
            _ => None,
        };
        if settled.is_some() {
            return settled;
        }
    }
}

/// The job's state once reporting has it final, asked until `deadline`: the log and the job
/// then say what the answer says.
async fn await_final(
    state: &Ingest,
    district: &DistrictId,
    job_id: &JobId,
    deadline: Instant,
) -> Option<JobState> {
    loop {
        match job_status::ask(&state.bus.nats, district, job_id).await {
            Ok(Some(status)) if status.state.is_terminal() => return Some(status.state),
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "asking reporting about one person's photo"),
        }
        if Instant::now() + STATUS_POLL > deadline {
            return None;
        }
        tokio::time::sleep(STATUS_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_raw_body_is_named_by_its_type_unless_named() {
        let mut headers = HeaderMap::new();
        assert_eq!(file_name(None, &headers), "photo");
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/png; x=1"),
        );
        assert_eq!(file_name(None, &headers), "photo.png");
        assert_eq!(file_name(Some("dir/ada.jpg"), &headers), "ada.jpg");
        assert_eq!(file_name(Some("  "), &headers), "photo.png");
        assert!(!is_multipart(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Multipart/Form-Data; boundary=x"),
        );
        assert!(is_multipart(&headers));
    }
}
