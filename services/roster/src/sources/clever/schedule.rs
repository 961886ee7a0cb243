//! The Clever sync worker: every [`SCAN_EVERY`] (or at once when a sync is asked for) it looks
//! for districts whose `next_run_at` has come, claims each with a lease on its
//! `clever_sources` row (so two replicas never sync one district at once; a claim left by a
//! replica that died lapses after [`LEASE`](super::sync::LEASE)), and syncs each in a task of
//! its own: one district's failing token or unreachable Clever never holds up another's.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use pictureday_platform::db::{begin_write, lock_key};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use super::sync::{Syncer, lease_end, queued_runs};
use super::{RunError, RunKind, RunStatus, RunTrigger, SOURCE};
use crate::db::{clever_source, source_sync_run};
use crate::imports::db_time;

/// How often due districts are looked for without being told.
pub const SCAN_EVERY: Duration = Duration::from_secs(2);

/// The worker and what the API tells it.
#[derive(Clone)]
pub struct Schedule {
    pub syncer: Arc<Syncer>,
    pub wake: Arc<Notify>,
    /// Districts syncing in this process.
    active: Arc<Mutex<HashSet<String>>>,
}

/// A district syncing here; released when its task ends, however it ends.
struct Slot {
    active: Arc<Mutex<HashSet<String>>>,
    district: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut active) = self.active.lock() {
            active.remove(&self.district);
        }
    }
}

impl Schedule {
    pub fn new(syncer: Arc<Syncer>) -> Self {
        Self {
            syncer,
            wake: Arc::new(Notify::new()),
            active: Default::default(),
        }
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = JoinSet::new();
        loop {
            let wake = self.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            match self.due().await {
                Ok(districts) => {
                    for district in districts {
                        let Some(slot) = self.slot(&district) else {
                            continue;
                        };
                        let this = self.clone();
                        tasks.spawn(async move { this.run_district(slot).await });
                    }
                }
                Err(error) => tracing::warn!(%error, "looking for Clever syncs that are due"),
            }
            while let Some(joined) = tasks.try_join_next() {
                if let Err(error) = joined {
                    tracing::error!(%error, "a Clever sync task failed");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut wake => {}
                _ = tokio::time::sleep(SCAN_EVERY) => {}
            }
        }
        // A sync stopped midway resumes (incrementally, or in full again) on the next claim.
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    fn slot(&self, district: &str) -> Option<Slot> {
        let mut active = self.active.lock().ok()?;
        active.insert(district.to_owned()).then(|| Slot {
            active: self.active.clone(),
            district: district.to_owned(),
        })
    }

    async fn due(&self) -> Result<Vec<String>, DbErr> {
        let now = db_time(Utc::now());
        clever_source::Entity::find()
            .select_only()
            .column(clever_source::Column::DistrictId)
            .filter(clever_source::Column::NextRunAt.lte(now))
            .filter(
                Condition::any()
                    .add(clever_source::Column::LeaseUntil.is_null())
                    .add(clever_source::Column::LeaseUntil.lt(now)),
            )
            .into_tuple::<String>()
            .all(&self.syncer.db)
            .await
    }

    async fn run_district(self, slot: Slot) {
        let district = slot.district.as_str();
        let claimed = match self.claim(district).await {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%district, %error, "claiming a Clever sync");
                return;
            }
        };
        let (source, run) = claimed;
        let span = tracing::info_span!("clever_sync", %district, run = %run.id);
        self.syncer.execute(&source, run).instrument(span).await;
        if let Err(error) = self.release(&source).await {
            tracing::warn!(%district, %error, "releasing a Clever sync");
        }
        self.wake.notify_one();
    }

    /// Takes the district's lease and its oldest queued run (a scheduled one when none was
    /// asked for), marked running. Runs left `running` by a worker that stopped are failed.
    async fn claim(
        &self,
        district: &str,
    ) -> Result<Option<(clever_source::Model, source_sync_run::Model)>, DbErr> {
        let db = &self.syncer.db;
        let txn = begin_write(db).await?;
        lock_key(&txn, "clever-sync-claim", district).await?;
        let now = db_time(Utc::now());
        let Some(source) = clever_source::Entity::find_by_id(district.to_owned())
            .one(&txn)
            .await?
        else {
            txn.commit().await?;
            return Ok(None);
        };
        let due = source.next_run_at <= now && source.lease_until.is_none_or(|until| until < now);
        if !due {
            txn.commit().await?;
            return Ok(None);
        }
        let queued = queued_runs(&txn, district).await?;
        if !source.enabled && queued.is_empty() {
            // Scheduled syncs are off: look again an interval on (a sync asked for runs).
            let interval = chrono::Duration::seconds(source.interval_secs.max(1));
            let mut later: clever_source::ActiveModel = source.into();
            later.next_run_at = Set(now + interval);
            clever_source::Entity::update(later).exec(&txn).await?;
            txn.commit().await?;
            return Ok(None);
        }
        let interrupted = RunError {
            kind: "interrupted".into(),
            message: "the worker running this sync stopped; the next sync goes on from the last \
                      page it committed"
                .into(),
            record: None,
        };
        source_sync_run::Entity::update_many()
            .col_expr(
                source_sync_run::Column::Status,
                Expr::value(RunStatus::Failed.as_str()),
            )
            .col_expr(source_sync_run::Column::FinishedAt, Expr::value(Some(now)))
            .col_expr(source_sync_run::Column::ErrorCount, Expr::value(1i64))
            .col_expr(
                source_sync_run::Column::Errors,
                Expr::value(serde_json::to_string(&[interrupted]).unwrap_or_default()),
            )
            .filter(source_sync_run::Column::DistrictId.eq(district))
            .filter(source_sync_run::Column::Source.eq(SOURCE))
            .filter(source_sync_run::Column::Status.eq(RunStatus::Running.as_str()))
            .exec(&txn)
            .await?;
        let run = match queued.into_iter().next() {
            Some(run) => run,
            None => {
                let run = new_run(&source, RunTrigger::Schedule, false, now);
                source_sync_run::Entity::insert(insertable(&run))
                    .exec_without_returning(&txn)
                    .await?;
                run
            }
        };
        let mut running: source_sync_run::ActiveModel = run.into();
        running.status = Set(RunStatus::Running.as_str().to_owned());
        running.started_at = Set(Some(now));
        let run = source_sync_run::Entity::update(running).exec(&txn).await?;
        let mut leased: clever_source::ActiveModel = source.into();
        leased.lease_until = Set(Some(lease_end(now)));
        let source = clever_source::Entity::update(leased).exec(&txn).await?;
        txn.commit().await?;
        Ok(Some((source, run)))
    }

    /// Ends the lease and sets the next run: at once if another was asked for meanwhile,
    /// else one interval on.
    async fn release(&self, source: &clever_source::Model) -> Result<(), DbErr> {
        let db = &self.syncer.db;
        let now = db_time(Utc::now());
        let pending = !queued_runs(db, &source.district_id).await?.is_empty();
        let interval = chrono::Duration::seconds(source.interval_secs.max(1));
        let next = if pending { now } else { now + interval };
        pictureday_platform::db::write(
            db,
            clever_source::Entity::update_many()
                .col_expr(
                    clever_source::Column::LeaseUntil,
                    Expr::value(None::<chrono::DateTime<Utc>>),
                )
                .col_expr(clever_source::Column::NextRunAt, Expr::value(next))
                .filter(clever_source::Column::DistrictId.eq(source.district_id.as_str())),
        )
        .await?;
        Ok(())
    }
}

/// A queued run: full when asked for, or when there is no cursor to go on from.
pub fn new_run(
    source: &clever_source::Model,
    trigger: RunTrigger,
    full: bool,
    now: chrono::DateTime<Utc>,
) -> source_sync_run::Model {
    let kind = if full || source.event_cursor.is_none() {
        RunKind::Full
    } else {
        RunKind::Incremental
    };
    source_sync_run::Model {
        id: Uuid::now_v7().to_string(),
        district_id: source.district_id.clone(),
        source: SOURCE.to_owned(),
        kind: kind.as_str().to_owned(),
        trigger: trigger.as_str().to_owned(),
        status: RunStatus::Queued.as_str().to_owned(),
        requested_at: now,
        started_at: None,
        finished_at: None,
        created: 0,
        updated: 0,
        deactivated: 0,
        reactivated: 0,
        unchanged: 0,
        schools: 0,
        error_count: 0,
        errors: "[]".to_owned(),
    }
}

/// The run as a row to insert.
pub fn insertable(run: &source_sync_run::Model) -> source_sync_run::ActiveModel {
    source_sync_run::ActiveModel::from(run.clone()).reset_all()
}
