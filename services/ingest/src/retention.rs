//! Originals are kept for a while after their job ends — to process a file again, to apply a
//! preview, to answer a question about a delivery — and then deleted: they are photos of children
//! with their metadata intact, and nothing else needs them (the renditions are the photos). The
//! period is the district's own (`PUT …/retention`) or else `PICTUREDAY_ORIGINALS_RETENTION_DAYS`
//! (default 30; 0 deletes them once the job ends), counted from the job's end as reporting knows
//! it.

use std::collections::HashMap;

use chrono::Utc;
use pictureday_access::entities::district;
use pictureday_contract::{DistrictId, keys};
use pictureday_platform::db::write;
use pictureday_platform::job_status::{self, AskError};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio_util::sync::CancellationToken;

use crate::Ingest;
use crate::db::job;

/// Jobs looked at per query.
const PAGE: u64 = 200;

/// Deletes due originals (and resumable uploads left for a week) now and then, until shutdown.
pub(crate) async fn run(ingest: Ingest, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        match purge_due(&ingest).await {
            Ok(0) => {}
            Ok(jobs) => tracing::info!(jobs, "deleted the originals of jobs past their retention"),
            // Nothing is lost by waiting: the next round tries again.
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "deleting due originals failed"
                )
            }
        }
        match crate::resumable::expire(&ingest).await {
            Ok(0) => {}
            Ok(uploads) => {
                tracing::info!(uploads, "removed resumable uploads untouched for a week")
            }
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "removing old resumable uploads failed"
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(ingest.retention.check_every) => {}
        }
    }
}

/// One round: every job whose originals are still kept and whose end is past the retention
/// period. Returns how many jobs' originals were deleted.
async fn purge_due(ingest: &Ingest) -> anyhow::Result<u32> {
    let now = Utc::now();
    let periods = Periods::load(ingest).await?;
    // Jobs created after the earliest cutoff of all cannot be due yet.
    let cutoff = now - periods.shortest();
    let mut purged = 0;
    let mut after = String::new();
    loop {
        // A job cannot have ended before it was created: only those old enough are asked about.
        let page = job::Entity::find()
            .filter(job::Column::OriginalsPurgedAt.is_null())
            .filter(job::Column::CreatedAt.lte(cutoff))
            .filter(job::Column::Id.gt(after.as_str()))
            .order_by_asc(job::Column::Id)
            .limit(PAGE)
            .all(&ingest.db)
            .await?;
        let Some(last) = page.last() else {
            return Ok(purged);
        };
        after.clone_from(&last.id);
        for row in page {
            let cutoff = now - periods.of(&row.district_id);
            if row.created_at > cutoff {
                continue;
            }
            match purge_if_due(ingest, row, cutoff).await {
                Ok(true) => purged += 1,
                Ok(false) => {}
                // Reporting does not answer: ask again next round.
                Err(Skip::Reporting(error)) => {
                    tracing::debug!(%error, "reporting did not say whether a job has ended");
                    return Ok(purged);
                }
                Err(Skip::Other(error)) => return Err(error),
            }
        }
    }
}

/// The retention period of each district: its own, or the installation's.
struct Periods {
    default: chrono::Duration,
    own: HashMap<String, chrono::Duration>,
}

impl Periods {
    async fn load(ingest: &Ingest) -> anyhow::Result<Self> {
        let default = chrono::Duration::from_std(ingest.retention.originals)?;
        let own = district::Entity::find()
            .all(ingest.auth.database())
            .await?
            .into_iter()
            .filter_map(|d| {
                let days = d.originals_retention_days?;
                Some((d.id, chrono::Duration::days(i64::from(days.max(0)))))
            })
            .collect();
        Ok(Self { default, own })
    }

    fn of(&self, district: &str) -> chrono::Duration {
        self.own.get(district).copied().unwrap_or(self.default)
    }

    fn shortest(&self) -> chrono::Duration {
        self.own
            .values()
            .copied()
            .fold(self.default, chrono::Duration::min)
    }
}

enum Skip {
    Reporting(AskError),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Skip {
    fn from(error: E) -> Self {
        Skip::Other(error.into())
    }
}

async fn purge_if_due(
    ingest: &Ingest,
    row: job::Model,
    cutoff: chrono::DateTime<Utc>,
) -> Result<bool, Skip> {
    let district = DistrictId::parse(&row.district_id)?;
    let status = job_status::ask(&ingest.bus.nats, &district, &row.id)
        .await
        .map_err(Skip::Reporting)?;
    // A job reporting has not seen, or one still running, keeps its originals.
    let Some(status) = status else {
        return Ok(false);
    };
    let ended = match (status.state.is_terminal(), status.finished_at) {
        (true, Some(at)) => at,
        _ => return Ok(false),
    };
    if ended > cutoff {
        return Ok(false);
    }
    let prefix = keys::upload_prefix(&district, &row.id);
    let deleted = ingest
        .storage
        .delete_prefix(prefix.trim_end_matches('/'))
        .await?;
    write(
        &ingest.db,
        job::Entity::update_many()
            .col_expr(
                job::Column::OriginalsPurgedAt,
                Expr::value(Some(Utc::now())),
            )
            .col_expr(
                job::Column::OriginalsPurgedObjects,
                Expr::value(Some(i64::try_from(deleted).unwrap_or(i64::MAX))),
            )
            .filter(job::Column::Id.eq(row.id.as_str())),
    )
    .await?;
    tracing::info!(%district, job = %row.id, deleted, "deleted a job's originals: its retention period is over");
    Ok(true)
}
