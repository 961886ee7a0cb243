//! Applies a preview: `POST /v1/districts/{district}/jobs/{job}/apply` places exactly the photos
//! the preview stored (no upload, no matching again), in file order, under the job's replace
//! policy, through the same code as photos applied as they arrive (`placement`). One
//! transaction; then `photo.applied` with each final outcome, so the job's report moves from
//! `previewed` to `finished`.
//!
//! Synchronous: the answer (200) comes once every photo is placed and its event is stored by
//! JetStream, with the counts of what happened.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, Path, State};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pictureday_access::{Auth, Caller, Role};
use pictureday_contract::DistrictId;
use pictureday_contract::events::{
    ApplyOutcome, FileRef, ImportMode, JobState, JobStatus, ReplacePolicy,
};
use pictureday_platform::bus::{Bus, Outgoing};
use pictureday_platform::db::{begin_write, lock_key};
use pictureday_platform::http::ApiError;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QueryOrder,
};
use serde::Serialize;

use crate::apply::applied_event;
use crate::db::{person, photo};
use crate::placement::{self, Candidate, Placed};
use pictureday_platform::job_status;

/// What applying a preview works with.
#[derive(Clone)]
pub struct PreviewState {
    pub db: DatabaseConnection,
    pub bus: Bus,
    pub auth: Arc<Auth>,
    /// How long after a preview finished it may still be applied.
    pub preview_ttl: Duration,
}

impl FromRef<PreviewState> for Arc<Auth> {
    fn from_ref(state: &PreviewState) -> Self {
        state.auth.clone()
    }
}

pub fn router(state: PreviewState) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/jobs/{job}/apply",
            post(apply_preview),
        )
        .with_state(state)
}

/// What applying did, by outcome.
#[derive(Debug, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
struct AppliedCounts {
    applied: u32,
    replaced: u32,
    superseded: u32,
    skipped: u32,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PreviewApplied)]
struct AppliedBody {
    job_id: String,
    replace: ReplacePolicy,
    /// The previewed photos placed.
    photos: u32,
    counts: AppliedCounts,
    status_url: String,
    log_url: String,
}

/// Applies a preview exactly as previewed (importer).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/jobs/{job}/apply",
    tag = "jobs",
    operation_id = "applyPreview",
    description = "No body. Places the photos the preview processed, in file order, under the job's `replace` policy, without uploading or matching again, in one transaction. The job's status and log follow within moments.",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("job" = String, Path, description = "The job's id (`job_id`).")),
    responses(
        (status = 200, description = "Applied.", body = AppliedBody,
            example = json!({"job_id": "0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "replace": "missing_only", "photos": 5, "counts": {"applied": 2, "replaced": 1, "superseded": 0, "skipped": 2}, "status_url": "/v1/districts/springfield/jobs/0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b", "log_url": "/v1/districts/springfield/jobs/0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b/log"})),
        (status = 409, description = "Not a preview, still running, already applied, nothing to apply, or failed.", body = pictureday_platform::openapi::ErrorBody),
        (status = 410, description = "The preview expired (`PICTUREDAY_PREVIEW_TTL_SECS` after it finished).", body = pictureday_platform::openapi::ErrorBody),
        (status = 503, description = "Reporting, the database or NATS did not answer; try again.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn apply_preview(
    State(state): State<PreviewState>,
    caller: Caller,
    Path((raw, job_id)): Path<(String, String)>,
) -> Result<Json<AppliedBody>, ApiError> {
    let district = state
        .auth
        .district_as(&caller, &raw, Role::Importer)
        .await?;
    let status = job_status::ask(&state.bus.nats, &district, &job_id)
        .await
        .map_err(|error| {
            tracing::warn!(%error, job = %job_id, "asking reporting about a preview");
            ApiError::Unavailable(
                "the reporting service did not say how the job stands; try again shortly".into(),
            )
        })?
        .ok_or_else(|| ApiError::NotFound(format!("no job {job_id:?} in district {district}")))?;
    admit(&status, Utc::now(), state.preview_ttl).map_err(Refusal::into_api)?;
    let policy = status.options.replace;
    match place_previewed(&state.db, &district, &job_id, policy).await? {
        Placing::Done(placed) => {
            let counts = count(&placed);
            let events = final_events(&district, &job_id, placed)?;
            let photos = u32::try_from(events.len()).unwrap_or(u32::MAX);
            publish(&state, events).await?;
            tracing::info!(%district, job = %job_id, ?counts, "preview applied");
            Ok(Json(AppliedBody {
                status_url: format!("/v1/districts/{district}/jobs/{job_id}"),
                log_url: format!("/v1/districts/{district}/jobs/{job_id}/log"),
                job_id,
                replace: policy,
                photos,
                counts,
            }))
        }
        Placing::AlreadyDone(placed) => {
            // Reporting still says `previewed`, so it may not have the final outcomes: an
            // earlier apply committed and then could not publish them, or they are on their
            // way. Publishing them again is harmless (same message ids; reporting moves a file
            // once) and lets a retried call finish what a failed one left.
            publish(&state, final_events(&district, &job_id, placed)?).await?;
            Err(Refusal::Finished {
                nothing_applied: false,
            }
            .into_api())
        }
        Placing::Nothing => Err(Refusal::Finished {
            nothing_applied: true,
        }
        .into_api()),
    }
}

async fn publish(state: &PreviewState, events: Vec<Outgoing>) -> Result<(), ApiError> {
    state
        .bus
        .publisher
        .publish_all(events)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "publishing a preview's final outcomes");
            ApiError::Unavailable(
            "the photos are applied, but their outcomes could not be sent to the job's report; \
             call again to send them"
                .into(),
        )
        })
}

/// Why a job cannot be applied now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    NotAPreview,
    Running(JobState),
    Finished { nothing_applied: bool },
    Failed(Option<String>),
    Expired { at: DateTime<Utc> },
}

impl Refusal {
    fn into_api(self) -> ApiError {
        match self {
            Refusal::NotAPreview => ApiError::Conflict(
                "the job is not a preview (it was imported with mode=apply)".into(),
            ),
            Refusal::Running(state) => ApiError::Conflict(format!(
                "the preview is still running (state {}); apply it once its state is previewed",
                state.as_str()
            )),
            Refusal::Finished {
                nothing_applied: true,
            } => ApiError::Conflict(
                "the preview has nothing to apply: no file of it was matched and processed".into(),
            ),
            Refusal::Finished {
                nothing_applied: false,
            } => ApiError::Conflict("the preview has already been applied".into()),
            Refusal::Failed(reason) => ApiError::Conflict(format!(
                "the preview failed and cannot be applied: {}",
                reason.as_deref().unwrap_or("no reason recorded")
            )),
            Refusal::Expired { at } => ApiError::Gone(format!(
                "the preview expired at {}; upload the photos again for a new preview",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
        }
    }
}

/// Whether a job may be applied now: a preview whose every file has its outcome (`previewed`),
/// within `ttl` of when it finished.
fn admit(status: &JobStatus, now: DateTime<Utc>, ttl: Duration) -> Result<(), Refusal> {
    if status.options.mode != ImportMode::Preview {
        return Err(Refusal::NotAPreview);
    }
    match status.state {
        JobState::Queued | JobState::Processing => Err(Refusal::Running(status.state)),
        JobState::Finished | JobState::FinishedWithErrors => Err(Refusal::Finished {
            nothing_applied: status.counts.applied + status.counts.skipped == 0,
        }),
        JobState::Failed => Err(Refusal::Failed(status.failure.clone())),
        JobState::Previewed => {
            let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
            match status.finished_at.and_then(|at| at.checked_add_signed(ttl)) {
                Some(expiry) if expiry <= now => Err(Refusal::Expired { at: expiry }),
                _ => Ok(()),
            }
        }
    }
}

/// What placing a job's previewed photos found.
enum Placing {
    /// Placed now: each photo (with its final outcome) and its note.
    Done(Vec<(photo::Model, Option<String>)>),
    /// Placed before: the job has photos, none still previewed.
    AlreadyDone(Vec<(photo::Model, Option<String>)>),
    /// The job has no photos at all.
    Nothing,
}

/// Places every previewed photo of the job, in file order, in one transaction. The job's lock
/// makes a second call wait and then find nothing previewed; the people are locked as the
/// pipeline's applier locks them, so the two take turns.
async fn place_previewed(
    db: &DatabaseConnection,
    district: &DistrictId,
    job_id: &str,
    policy: ReplacePolicy,
) -> Result<Placing, DbErr> {
    let txn = begin_write(db).await?;
    lock_key(&txn, "preview", job_id).await?;
    let rows = photo::Entity::find()
        .filter(photo::Column::JobId.eq(job_id))
        .filter(photo::Column::DistrictId.eq(district.as_str()))
        .order_by_asc(photo::Column::Seq)
        .all(&txn)
        .await?;
    if rows.is_empty() {
        return Ok(Placing::Nothing);
    }
    let (previewed, placed_before): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|row| row.outcome == ApplyOutcome::Previewed);
    if previewed.is_empty() {
        let mut placed = Vec::with_capacity(placed_before.len());
        for row in placed_before {
            let note = placement::note_of(&txn, &row, policy).await?;
            placed.push((row, note));
        }
        return Ok(Placing::AlreadyDone(placed));
    }
    placement::lock_people(
        &txn,
        previewed.iter().map(|r| r.person_id.as_str()).collect(),
    )
    .await?;
    let mut placed = Vec::with_capacity(previewed.len());
    for row in previewed {
        let result = place_one(&txn, &row, policy).await?;
        let updated = photo::Entity::update_many()
            .col_expr(photo::Column::Outcome, Expr::value(result.outcome))
            .col_expr(
                photo::Column::PreviousPhotoId,
                Expr::value(result.previous_photo_id.clone()),
            )
            .filter(photo::Column::Id.eq(row.id.as_str()))
            .filter(photo::Column::Outcome.eq(ApplyOutcome::Previewed))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            // The job's lock makes this impossible; refuse rather than publish a wrong outcome.
            return Err(DbErr::Custom(format!(
                "photo {} of job {job_id} was applied by someone else",
                row.id
            )));
        }
        placed.push((
            photo::Model {
                outcome: result.outcome,
                previous_photo_id: result.previous_photo_id,
                ..row
            },
            result.note,
        ));
    }
    txn.commit().await?;
    Ok(Placing::Done(placed))
}

async fn place_one(
    txn: &DatabaseTransaction,
    row: &photo::Model,
    policy: ReplacePolicy,
) -> Result<Placed, DbErr> {
    let person = person::Entity::find_by_id(row.person_id.clone())
        .filter(person::Column::DistrictId.eq(row.district_id.as_str()))
        .one(txn)
        .await?;
    let Some(person) = person else {
        return Ok(Placed {
            outcome: ApplyOutcome::Skipped,
            previous_photo_id: None,
            note: Some(placement::PERSON_GONE.to_owned()),
        });
    };
    let candidate = Candidate {
        photo_id: &row.id,
        job_id: &row.job_id,
        upload_rank: &row.upload_rank,
    };
    placement::apply(txn, &person, &candidate, policy).await
}

fn count(placed: &[(photo::Model, Option<String>)]) -> AppliedCounts {
    let mut counts = AppliedCounts::default();
    for (row, _) in placed {
        match row.outcome {
            ApplyOutcome::Applied => counts.applied += 1,
            ApplyOutcome::Replaced => counts.replaced += 1,
            ApplyOutcome::Superseded => counts.superseded += 1,
            ApplyOutcome::Skipped => counts.skipped += 1,
            ApplyOutcome::Previewed => {}
        }
    }
    counts
}

/// `photo.applied` with each photo's final outcome, under message ids of their own
/// (`applied:<job>:<seq>:final`).
fn final_events(
    district: &DistrictId,
    job_id: &str,
    placed: Vec<(photo::Model, Option<String>)>,
) -> Result<Vec<Outgoing>, ApiError> {
    placed
        .into_iter()
        .map(|(row, note)| {
            let file = FileRef {
                district: district.clone(),
                job_id: job_id.into(),
                seq: u32::try_from(row.seq).unwrap_or(0),
                file_name: row.file_name.clone(),
                replay: 0,
            };
            applied_event(&file, &row, note, file.final_applied_msg_id())
                .map_err(|reason| ApiError::internal(anyhow::anyhow!(reason)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use pictureday_contract::events::{ImportOptions, JobCounts, SCHEMA_VERSION};

    use super::*;

    fn status(state: JobState, mode: ImportMode) -> anyhow::Result<JobStatus> {
        let finished = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")?.with_timezone(&Utc);
        Ok(JobStatus {
            v: SCHEMA_VERSION,
            district: DistrictId::parse("springfield")?,
            job_id: "j1".into(),
            state,
            counts: JobCounts::default(),
            created_at: finished,
            started_at: Some(finished),
            finished_at: Some(finished),
            waiting: None,
            failure: None,
            options: ImportOptions {
                mode,
                replace: ReplacePolicy::MissingOnly,
            },
        })
    }

    const TTL: Duration = Duration::from_secs(72 * 3600);

    #[test]
    fn only_a_finished_preview_within_its_time_is_applied() -> anyhow::Result<()> {
        let previewed = status(JobState::Previewed, ImportMode::Preview)?;
        let finished = previewed.finished_at.unwrap_or_default();
        let hours = |h: i64| finished + chrono::Duration::hours(h);
        assert_eq!(admit(&previewed, hours(1), TTL), Ok(()));
        assert_eq!(admit(&previewed, hours(71), TTL), Ok(()));
        assert_eq!(
            admit(&previewed, hours(72), TTL),
            Err(Refusal::Expired { at: hours(72) })
        );
        assert_eq!(
            admit(
                &status(JobState::Finished, ImportMode::Apply)?,
                hours(1),
                TTL
            ),
            Err(Refusal::NotAPreview)
        );
        assert_eq!(
            admit(
                &status(JobState::Processing, ImportMode::Preview)?,
                hours(1),
                TTL
            ),
            Err(Refusal::Running(JobState::Processing))
        );
        assert_eq!(
            admit(
                &status(JobState::FinishedWithErrors, ImportMode::Preview)?,
                hours(1),
                TTL
            ),
            Err(Refusal::Finished {
                nothing_applied: true
            })
        );
        let mut applied = status(JobState::Finished, ImportMode::Preview)?;
        applied.counts.applied = 2;
        assert_eq!(
            admit(&applied, hours(1), TTL),
            Err(Refusal::Finished {
                nothing_applied: false
            })
        );
        Ok(())
    }

    #[test]
    fn refusals_are_conflicts_and_an_expired_preview_is_gone() -> anyhow::Result<()> {
        let at = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")?.with_timezone(&Utc);
        let gone = Refusal::Expired { at }.into_api();
        let expected = "the preview expired at 2026-12-04T10:00:00Z; \
                        upload the photos again for a new preview";
        assert!(
            matches!(&gone, ApiError::Gone(m) if m == expected),
            "{gone:?}"
        );
        assert!(matches!(
            Refusal::Finished {
                nothing_applied: false
            }
            .into_api(),
            ApiError::Conflict(_)
        ));
        Ok(())
    }
}
