//! Reporting: turns every pipeline event into the job projection (per-file outcomes, counts,
//! state), publishes `job.status` events, serves jobs and their logs, and sees to it that every
//! file ends in an outcome: it keeps set-aside events on their jobs (`dead_letters`), has files
//! whose events were lost published again and fails jobs past their deadline (`reconcile`), and
//! says on open jobs what the pipeline waits for (`waiting`). It answers roster's question of how
//! a job stands (`requests`) before a preview is applied. Dashboards follow job status as it
//! happens (`sse`) and districts receive it as webhooks (`webhooks`): reporting owns job status,
//! and webhook delivery runs on consumers and workers of its own, so a slow endpoint never
//! slows the pipeline.

mod api;
pub mod db;
mod dead_letters;
mod job_lookup;
mod log_stream;
pub mod openapi;
pub mod projection;
mod reconcile;
mod requests;
mod sse;
mod status;
mod undo_records;
mod waiting;
pub mod webhooks;

use std::sync::Arc;

use pictureday_access::Auth;
use pictureday_contract::events::{DecodeError, Dependency};
use pictureday_contract::subjects::consumers;
use pictureday_platform::Connections;
use pictureday_platform::bus::{Bus, Outgoing};
use pictureday_platform::runtime::{Component, Dependency as Needs};
use pictureday_platform::stage::{self, Handled, Incoming, Stage};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::projection::Event;
use crate::status::StatusPublisher;
use crate::waiting::Waiting;

const MAX_BATCH: usize = 1000;

/// What reporting works with.
#[derive(Clone)]
pub(crate) struct Reporting {
    pub db: DatabaseConnection,
    pub bus: Bus,
    pub statuses: Arc<StatusPublisher>,
    pub waiting: Arc<Waiting>,
    pub settings: Arc<pictureday_platform::config::Settings>,
    /// Ends long-lived responses (event streams) when the service stops.
    pub shutdown: CancellationToken,
}

pub async fn component(
    connections: &Connections,
    shutdown: &CancellationToken,
) -> anyhow::Result<Component> {
    let db = connections
        .migrated_database::<db::Migrator>("reporting")
        .await?;
    let auth = Auth::open(db.clone(), connections.settings().operator_token()?).await?;
    let bus = connections.bus().await?;
    let reporting = Reporting {
        db: db.clone(),
        statuses: StatusPublisher::new(bus.publisher.clone()),
        waiting: Waiting::new(),
        bus: bus.clone(),
        settings: connections.settings().clone(),
        shutdown: shutdown.clone(),
    };
    webhooks::ensure_topology(&bus).await?;
    undo_records::ensure_consumer(&bus).await?;
    let undos = Arc::new(undo_records::UndoRecords { db: db.clone() });
    let undos_stop = shutdown.clone();
    let bus_for_undos = bus.clone();
    let hooks = webhooks::Webhooks::new(
        db.clone(),
        bus.clone(),
        connections.settings().webhooks.clone(),
    )?;
    let fanout = Arc::new(webhooks::Fanout(hooks.clone()));
    let (sender, fanout_stop, sender_stop) = (hooks.clone(), shutdown.clone(), shutdown.clone());
    let project = Arc::new(Project(reporting.clone()));
    let dead = Arc::new(dead_letters::DeadLetters(reporting.clone()));
    let stop = shutdown.clone();
    let (flush, flush_stop) = (reporting.statuses.clone(), shutdown.clone());
    let (listen, listen_stop) = (reporting.clone(), shutdown.clone());
    let (reconciler, reconcile_stop) = (reporting.clone(), shutdown.clone());
    let (answerer, answer_stop) = (reporting.clone(), shutdown.clone());
    let dead_stop = shutdown.clone();
    Ok(Component::new("reporting")
        .routes(api::router(reporting.clone(), auth.clone()))
        .routes(sse::router(reporting, auth.clone()))
        .routes(webhooks::api::router(hooks, auth))
        .worker("project", move || {
            let (project, shutdown) = (project.clone(), stop.clone());
            async move { stage::run_batched(&*project, &project.0.bus, MAX_BATCH, shutdown).await }
        })
        .worker("dead-letters", move || {
            let (dead, shutdown) = (dead.clone(), dead_stop.clone());
            async move { stage::run_batched(&*dead, &dead.0.bus, MAX_BATCH, shutdown).await }
        })
        .worker("status", move || {
            flush.clone().run_flusher(flush_stop.clone())
        })
        .worker("waiting", move || {
            waiting::listen(listen.clone(), listen_stop.clone())
        })
        .worker("reconcile", move || {
            reconcile::run(reconciler.clone(), reconcile_stop.clone())
        })
        .worker("requests", move || {
            requests::serve(answerer.clone(), answer_stop.clone())
        })
        .worker("webhooks", move || {
            let (fanout, shutdown) = (fanout.clone(), fanout_stop.clone());
            async move { stage::run_batched(&*fanout, &fanout.0.bus, MAX_BATCH, shutdown).await }
        })
        .worker("job-undos", move || {
            let (undos, bus, shutdown) = (undos.clone(), bus_for_undos.clone(), undos_stop.clone());
            async move { stage::run_batched(&*undos, &bus, MAX_BATCH, shutdown).await }
        })
        .worker("webhook-deliveries", move || {
            webhooks::run_sender(sender.clone(), sender_stop.clone())
        })
        .depends_on(Needs::Nats(bus))
        .depends_on(Needs::Database(db)))
}

/// Reporting's consumer of the whole pipeline stream.
struct Project(Reporting);

impl Stage for Project {
    type Event = Event;
    const CONSUMER: &'static str = consumers::REPORTING;
    const SPAN: &'static str = "reporting.project";

    fn decode(&self, subject: &str, payload: &[u8]) -> Result<Event, DecodeError> {
        Event::decode(subject, payload)
    }

    /// The projection records outcomes; an event it cannot record is set aside.
    fn rejection(&self, _event: &Event, _reason: String) -> Option<Outgoing> {
        None
    }

    async fn probe(&self, _dependency: Dependency) -> bool {
        pictureday_platform::db::ping(&self.0.db).await
    }

    async fn handle(&self, batch: &[Incoming<Event>]) -> Vec<Handled> {
        let events: Vec<Event> = batch.iter().map(|i| i.event.clone()).collect();
        let result = async {
            let txn = pictureday_platform::db::begin_write(&self.0.db).await?;
            let touched = projection::apply(&txn, &events).await?;
            txn.commit().await?;
            Ok::<_, sea_orm::DbErr>(touched)
        }
        .await;
        match result {
            Ok(touched) => {
                let touched = self.0.waiting.annotate(touched);
                self.0.statuses.offer(touched).await;
                batch.iter().map(|_| Ok(Vec::new())).collect()
            }
            Err(error) => pictureday_platform::db::batch_failed(batch.len(), &error),
        }
    }
}
