//! What the pipeline waits on: stages announce when they wait on an unavailable dependency and
//! when they stop (`pictureday.stage.health`, core NATS). Open jobs say so in their status
//! (`waiting: roster service unavailable since …`), and their `job.status` events go out again
//! when that changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use pictureday_contract::events::{Dependency, JobStatus, SCHEMA_VERSION, StageHealth};
use pictureday_contract::subjects::STAGE_HEALTH_SUBJECT;
use tokio_util::sync::CancellationToken;

use crate::Reporting;

/// A stage that stopped announcing its wait (it died, or its message was lost) is forgotten
/// after this long; waiting stages announce every 10 s.
const FORGET_AFTER: Duration = Duration::from_secs(30);

/// What a stage instance waits on, since when, and when it last said so.
type Wait = (Dependency, DateTime<Utc>, Instant);

#[derive(Default)]
pub struct Waiting {
    /// By (stage, instance).
    stages: Mutex<HashMap<(String, String), Wait>>,
}

impl Waiting {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// What the longest wait is, in words: `roster service unavailable since …`.
    pub fn describe(&self) -> Option<String> {
        let mut stages = self
            .stages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stages.retain(|_, (_, _, seen)| seen.elapsed() < FORGET_AFTER);
        stages
            .values()
            .min_by_key(|(_, since, _)| *since)
            .map(|(dependency, since, _)| {
                format!(
                    "{} unavailable since {}",
                    dependency.describe(),
                    since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )
            })
    }

    /// Sets `waiting` on the statuses of jobs that are not final.
    pub fn annotate(&self, mut statuses: Vec<JobStatus>) -> Vec<JobStatus> {
        let waiting = self.describe();
        for status in &mut statuses {
            if !status.state.is_terminal() {
                status.waiting.clone_from(&waiting);
            }
        }
        statuses
    }

    /// Takes one announcement; true if what the pipeline waits on changed.
    fn take(&self, health: StageHealth) -> bool {
        let mut stages = self
            .stages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (health.stage, health.instance);
        match health.waiting_since {
            Some(since) => stages
                .insert(key, (health.dependency, since, Instant::now()))
                .is_none_or(|(dependency, was, _)| dependency != health.dependency || was != since),
            None => stages.remove(&key).is_some(),
        }
    }
}

/// Listens to the stages' announcements until shutdown.
pub(crate) async fn listen(
    reporting: Reporting,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut announcements = reporting.bus.nats.subscribe(STAGE_HEALTH_SUBJECT).await?;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = announcements.next() => m,
        };
        let Some(message) = message else {
            anyhow::bail!("stage health subscription ended");
        };
        let health = match serde_json::from_slice::<StageHealth>(&message.payload) {
            Ok(health) if health.v == SCHEMA_VERSION => health,
            Ok(health) => {
                tracing::debug!(v = health.v, "stage health of another version");
                continue;
            }
            Err(error) => {
                tracing::debug!(%error, "unreadable stage health");
                continue;
            }
        };
        if reporting.waiting.take(health) {
            republish_open_jobs(&reporting).await;
        }
    }
}

/// Sends the status of every open job again, now saying what it waits on (or no longer).
async fn republish_open_jobs(reporting: &Reporting) {
    match crate::reconcile::open_jobs(&reporting.db, 1000).await {
        Ok(jobs) => {
            let statuses = jobs
                .iter()
                .filter_map(crate::projection::status_of)
                .collect();
            reporting
                .statuses
                .offer(reporting.waiting.annotate(statuses))
                .await;
        }
        Err(error) => tracing::debug!(%error, "reading open jobs"),
    }
}
