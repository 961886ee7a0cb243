//! People who left keep their photos for a while (a student may come back: reactivation shows
//! their photo again), then not: once a person has been inactive longer than their district keeps
//! such photos (`inactive_photos_retention_days`, else `PICTUREDAY_INACTIVE_RETENTION_DAYS`,
//! 365), every photo of theirs is purged — versions, renditions and originals — exactly as a
//! purge by hand, and recorded (`GET …/purges`, `purged_by: retention (inactive since …)`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use pictureday_access::entities::district;
use pictureday_contract::DistrictId;
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio_util::sync::CancellationToken;

use crate::db::person::{self, PersonStatus};
use crate::db::{photo, photo_purge};
use crate::person_photos::{PersonPhotosState, purge_person};

/// People purged per district per round: a round stays short, the next one goes on.
const PER_ROUND: u64 = 200;

/// What `purged_by` starts with for these purges.
const BY_RETENTION: &str = "retention";

#[derive(Clone)]
pub struct InactiveRetention {
    pub photos: PersonPhotosState,
    /// The installation's period.
    pub keep: Duration,
    pub check_every: Duration,
}

/// Purges due photos now and then, until shutdown.
pub async fn run(retention: InactiveRetention, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        match purge_due(&retention).await {
            Ok(0) => {}
            Ok(people) => tracing::info!(
                people,
                "purged the photos of people inactive past retention"
            ),
            // Nothing is lost by waiting: the next round finds them again.
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "purging inactive people's photos failed"
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(retention.check_every) => {}
        }
    }
}

/// One round over every district. Returns how many people's photos were purged.
async fn purge_due(retention: &InactiveRetention) -> anyhow::Result<u64> {
    let db = &retention.photos.db;
    let now = Utc::now();
    let mut purged = 0;
    for row in district::Entity::find().all(db).await? {
        let days = row
            .inactive_photos_retention_days
            .and_then(|d| u64::try_from(d).ok())
            .map_or(retention.keep, |d| {
                Duration::from_secs(d.saturating_mul(86_400))
            });
        let cutoff = now - chrono::Duration::from_std(days)?;
        let district = DistrictId::parse(&row.id)?;
        // One district's trouble does not hold up the others.
        match purge_district(retention, &district, cutoff).await {
            Ok(n) => purged += n,
            Err(error) => tracing::warn!(
                %district,
                error = format!("{error:#}"),
                "purging the photos of people who left failed; the next round tries again"
            ),
        }
    }
    Ok(purged)
}

/// A district's round stops after this many people could not be purged: storage or ingest is
/// likely away, and the next round tries again.
const FAILURES_PER_ROUND: usize = 3;

async fn purge_district(
    retention: &InactiveRetention,
    district: &DistrictId,
    cutoff: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let db = &retention.photos.db;
    // Purges left unfinished (storage or ingest was away) are finished first.
    let unfinished: Vec<String> = photo_purge::Entity::find()
        .select_only()
        .column(photo_purge::Column::PersonId)
        .filter(photo_purge::Column::DistrictId.eq(district.as_str()))
        .filter(photo_purge::Column::FinishedAt.is_null())
        .filter(photo_purge::Column::PurgedBy.starts_with(BY_RETENTION))
        .into_tuple()
        .all(db)
        .await?;
    // People inactive since before the cutoff who still have photos.
    let due: Vec<(String, Option<DateTime<Utc>>)> = person::Entity::find()
        .select_only()
        .column(person::Column::Id)
        .column(person::Column::InactiveSince)
        .filter(person::Column::DistrictId.eq(district.as_str()))
        .filter(person::Column::Status.eq(PersonStatus::Inactive))
        .filter(person::Column::InactiveSince.lte(cutoff))
        .filter(
            person::Column::Id.in_subquery(
                Query::select()
                    .column(photo::Column::PersonId)
                    .from(photo::Entity)
                    .and_where(photo::Column::DistrictId.eq(district.as_str()))
                    .to_owned(),
            ),
        )
        .order_by_asc(person::Column::InactiveSince)
        .limit(PER_ROUND)
        .into_tuple()
        .all(db)
        .await?;
    let mut purged = 0;
    let mut failures = Vec::new();
    for person_id in unfinished {
        if let Err(error) =
            purge_person(&retention.photos, district, &person_id, BY_RETENTION.into()).await
        {
            // One person's purge that fails does not stop everyone else's.
            tracing::warn!(%district, person = %person_id, %error, "finishing a purge failed");
            failures.push(person_id);
            if failures.len() >= FAILURES_PER_ROUND {
                anyhow::bail!("{} purges failed: {}", failures.len(), failures.join(", "));
            }
        }
    }
    for (person_id, since) in due {
        // Checked again just before: a person reactivated since the query keeps their photos.
        let still_due = person::Entity::find_by_id(person_id.clone())
            .one(db)
            .await?
            .is_some_and(|p| {
                p.status == PersonStatus::Inactive && p.inactive_since.is_some_and(|s| s <= cutoff)
            });
        if !still_due {
            continue;
        }
        let by = match since {
            Some(since) => format!(
                "{BY_RETENTION} (inactive since {})",
                since.format("%Y-%m-%d")
            ),
            None => BY_RETENTION.to_owned(),
        };
        if let Err(error) = purge_person(&retention.photos, district, &person_id, by).await {
            tracing::warn!(%district, person = %person_id, %error, "purging a person's photos failed");
            failures.push(person_id);
            if failures.len() >= FAILURES_PER_ROUND {
                anyhow::bail!("{} purges failed: {}", failures.len(), failures.join(", "));
            }
            continue;
        }
        purged += 1;
    }
    Ok(purged)
}
