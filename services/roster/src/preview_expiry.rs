//! A preview that was never applied keeps its photos (renditions of children, stored and
//! recorded but on no one) only until it expires: `PICTUREDAY_PREVIEW_TTL_SECS` after the preview
//! finished, as reporting knows it. Then its renditions are deleted from storage and its photo
//! rows from the database; applying it was already refused (`410`).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use pictureday_contract::DistrictId;
use pictureday_contract::events::{ApplyOutcome, JobState};
use pictureday_platform::bus::Bus;
use pictureday_platform::db::{begin_write, lock_key};
use pictureday_platform::job_status;
use pictureday_platform::storage::Storage;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio_util::sync::CancellationToken;

use crate::db::photo;
use crate::rendition_objects;

/// After expiry, how long before the photos go (at most the period itself, for short ones).
const GRACE: chrono::Duration = chrono::Duration::seconds(60);

/// Previewed photo rows looked at per round, to find the jobs they belong to.
const PAGE: u64 = 1000;

#[derive(Clone)]
pub struct PreviewExpiry {
    pub db: DatabaseConnection,
    pub storage: Storage,
    pub bus: Bus,
    pub preview_ttl: Duration,
    pub check_every: Duration,
}

/// Deletes the photos of expired previews now and then, until shutdown.
pub async fn run(expiry: PreviewExpiry, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        match purge_expired(&expiry).await {
            Ok(0) => {}
            Ok(photos) => tracing::info!(photos, "deleted the photos of expired previews"),
            // Nothing is lost by waiting: the next round tries again.
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "deleting expired previews' photos failed"
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(expiry.check_every) => {}
        }
    }
}

/// One round: every job with previewed photos old enough to have expired, asked about one by
/// one. Returns how many photos were deleted.
async fn purge_expired(expiry: &PreviewExpiry) -> anyhow::Result<u64> {
    let ttl = chrono::Duration::from_std(expiry.preview_ttl)?;
    let grace = GRACE.min(ttl);
    let now = Utc::now();
    // A preview cannot have finished before its photos were stored.
    let rows: Vec<(String, String)> = photo::Entity::find()
        .select_only()
        .column(photo::Column::DistrictId)
        .column(photo::Column::JobId)
        .filter(photo::Column::Outcome.eq(ApplyOutcome::Previewed))
        .filter(photo::Column::CreatedAt.lte(now - ttl))
        .order_by_asc(photo::Column::CreatedAt)
        .limit(PAGE)
        .into_tuple()
        .all(&expiry.db)
        .await?;
    let jobs: BTreeSet<(String, String)> = rows.into_iter().collect();
    let mut deleted = 0;
    for (district, job_id) in jobs {
        let district = DistrictId::parse(&district)?;
        let Ok(status) = job_status::ask(&expiry.bus.nats, &district, &job_id).await else {
            // Reporting does not answer: ask again next round.
            return Ok(deleted);
        };
        // The grace lets an apply admitted just before expiry finish before anything goes.
        let expired = status.is_some_and(|s| {
            s.state == JobState::Previewed
                && s.finished_at.is_some_and(|at| at + ttl + grace <= now)
        });
        if expired {
            deleted += purge_job(expiry, &district, &job_id).await?;
        }
    }
    Ok(deleted)
}

/// Deletes one expired preview's renditions, then its photo rows: a crash in between leaves rows
/// whose objects are gone, and the next round deletes them again.
async fn purge_job(
    expiry: &PreviewExpiry,
    district: &DistrictId,
    job_id: &str,
) -> anyhow::Result<u64> {
    let photos: Vec<String> = photo::Entity::find()
        .filter(photo::Column::DistrictId.eq(district.as_str()))
        .filter(photo::Column::JobId.eq(job_id))
        .filter(photo::Column::Outcome.eq(ApplyOutcome::Previewed))
        .select_only()
        .column(photo::Column::Id)
        .into_tuple()
        .all(&expiry.db)
        .await?;
    let mut objects = 0;
    for photo_id in &photos {
        objects += rendition_objects::delete_photo(&expiry.storage, district, photo_id).await?;
    }
    let txn = begin_write(&expiry.db).await?;
    lock_key(&txn, "preview", job_id).await?;
    let removed = photo::Entity::delete_many()
        .filter(photo::Column::DistrictId.eq(district.as_str()))
        .filter(photo::Column::JobId.eq(job_id))
        .filter(photo::Column::Outcome.eq(ApplyOutcome::Previewed))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    tracing::info!(%district, job = %job_id, photos = removed.rows_affected, objects,
        "deleted an expired preview's photos");
    Ok(removed.rows_affected)
}
