//! Publishes `job.status` events for dashboards: at once when a job's state changes, and at most
//! once a second per job while only its counts move.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pictureday_contract::JobId;
use pictureday_contract::events::{JobState, JobStatus};
use pictureday_contract::subjects::Kind;
use pictureday_platform::bus::{Outgoing, Publisher};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

pub struct StatusPublisher {
    publisher: Publisher,
    throttle: Mutex<Throttle>,
}

#[derive(Default)]
struct Throttle {
    last: HashMap<JobId, (Instant, JobState)>,
    pending: HashMap<JobId, JobStatus>,
}

fn outgoing(status: &JobStatus) -> Option<Outgoing> {
    let c = &status.counts;
    // The same status published twice (a redelivered batch) is deduplicated by JetStream.
    let msg_id = format!(
        "status:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}",
        status.job_id,
        status.state.as_str(),
        c.files,
        c.matched,
        c.unmatched,
        c.processed,
        c.rejected,
        c.applied,
        c.skipped,
        c.previewed,
        c.parked,
        c.replayed,
        u8::from(status.waiting.is_some()),
    );
    match Outgoing::new(
        Kind::JobStatus.subject(&status.district, &status.job_id),
        msg_id,
        status,
    ) {
        Ok(o) => Some(o),
        Err(error) => {
            tracing::error!(%error, "could not encode job status");
            None
        }
    }
}

impl StatusPublisher {
    pub fn new(publisher: Publisher) -> Arc<Self> {
        Arc::new(Self {
            publisher,
            throttle: Mutex::new(Throttle::default()),
        })
    }

    /// Takes the statuses a batch produced; state changes go out now, progress waits its turn.
    pub async fn offer(&self, statuses: Vec<JobStatus>) {
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut throttle = self.throttle.lock().await;
            for status in statuses {
                let changed = throttle.last.get(&status.job_id).is_none_or(|(at, state)| {
                    *state != status.state || now - *at >= PROGRESS_INTERVAL
                });
                if changed {
                    throttle.pending.remove(&status.job_id);
                    if status.state.is_terminal() {
                        throttle.last.remove(&status.job_id);
                    } else {
                        throttle
                            .last
                            .insert(status.job_id.clone(), (now, status.state));
                    }
                    due.push(status);
                } else {
                    throttle.pending.insert(status.job_id.clone(), status);
                }
            }
        }
        self.send(due).await;
    }

    /// Sends progress that has waited long enough.
    async fn flush_due(&self) {
        let now = Instant::now();
        let due: Vec<JobStatus> = {
            let mut throttle = self.throttle.lock().await;
            let ready: Vec<JobId> = throttle
                .pending
                .keys()
                .filter(|job| {
                    throttle
                        .last
                        .get(*job)
                        .is_none_or(|(at, _)| now - *at >= PROGRESS_INTERVAL)
                })
                .cloned()
                .collect();
            let mut due = Vec::new();
            for job in ready {
                if let Some(status) = throttle.pending.remove(&job) {
                    throttle.last.insert(job, (now, status.state));
                    due.push(status);
                }
            }
            due
        };
        self.send(due).await;
    }

    async fn send(&self, statuses: Vec<JobStatus>) {
        if statuses.is_empty() {
            return;
        }
        let events = statuses.iter().filter_map(outgoing).collect();
        // Status events are a view of the projection, which is already stored: a lost one is
        // superseded by the next and the API always has the truth, so failure is only logged.
        if let Err(error) = self.publisher.publish_all(events).await {
            tracing::warn!(%error, "publishing job status failed");
        }
    }

    pub async fn run_flusher(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(PROGRESS_INTERVAL / 4);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.flush_due().await;
                    return Ok(());
                }
                _ = tick.tick() => self.flush_due().await,
            }
        }
    }
}
