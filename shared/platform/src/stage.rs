//! The one way every pipeline consumer works. A [`Stage`] says how to read its events and how
//! to handle them; the loops here do the rest, the same for every stage:
//!
//! - a message that cannot be read (not JSON, an unknown schema version, the wrong kind for its
//!   subject) is set aside on the dead-letter stream with its reason and counted on its job,
//!   never silently acked;
//! - an event whose input can never succeed ([`Failure::Permanent`]) becomes the file's outcome
//!   at once: the stage's rejection event, with the reason;
//! - an event that failed because a dependency is down ([`Failure::Unavailable`]) is kept and
//!   tried again, with a pause that grows to a few seconds and no limit on attempts: an outage
//!   delays work and never turns into rejections;
//! - an event that failed for a reason the stage cannot classify ([`Failure::Failed`]) is tried
//!   again alone, so one bad event never fails the batch it came in; if it keeps failing alone
//!   while its dependency answers, it is treated as permanent;
//! - what the stage produced is published, and only then are its messages acked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use pictureday_contract::events::{DecodeError, Dependency, SCHEMA_VERSION, StageHealth};
use pictureday_contract::subjects::{PIPELINE_STREAM, STAGE_HEALTH_SUBJECT, dead_letter_subject};
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Outgoing};
use crate::consumer::{Delivery, Puller, Settle, hand_back, settle, spawn_poller, with_heartbeat};

/// Why an event could not be handled.
#[derive(Debug)]
pub enum Failure {
    /// The input can never succeed: recorded at once as the file's outcome, with this reason.
    Permanent(String),
    /// A dependency is unavailable: the message is kept until it is back.
    Unavailable(Dependency, anyhow::Error),
    /// Something failed that may be the event's fault or the dependency's: the loop tries the
    /// event alone and asks the dependency whether it is up.
    Failed(Dependency, anyhow::Error),
}

/// What handling one event gave: the events to publish (its outcome or next step), or why not.
pub type Handled = Result<Vec<Outgoing>, Failure>;

/// One decoded event as a stage receives it.
pub struct Incoming<E> {
    pub event: E,
    /// The span to handle it in: it continues the trace the message carried.
    pub span: tracing::Span,
    pub delivery: Delivery,
}

/// A consumer of the pipeline.
pub trait Stage: Send + Sync + 'static {
    type Event: Send + Sync + 'static;
    /// The durable consumer it reads.
    const CONSUMER: &'static str;
    /// The name of the span each event is handled in (`matcher.match`).
    const SPAN: &'static str;
    /// The stream that consumer is on.
    const STREAM: &'static str = PIPELINE_STREAM;

    /// Reads a message as this stage's event, checking its kind and schema version.
    fn decode(&self, subject: &str, payload: &[u8]) -> Result<Self::Event, DecodeError>;

    /// The event that records that `event`'s file can never be handled, or `None` where the
    /// stage's failures are not a file's outcome (the message is then set aside).
    fn rejection(&self, event: &Self::Event, reason: String) -> Option<Outgoing>;

    /// Whether `dependency` answers now.
    fn probe(&self, dependency: Dependency) -> impl Future<Output = bool> + Send;

    /// Handles a batch: one result per event, in order.
    fn handle(&self, batch: &[Incoming<Self::Event>]) -> impl Future<Output = Vec<Handled>> + Send;
}

/// After this many failures of an event handled alone while its dependency answered, the event
/// itself is taken to be the cause.
const POISON_AFTER: u32 = 3;
/// The longest pause between attempts while a dependency is unavailable: the most a stage lags
/// behind a dependency that has come back.
const MAX_PAUSE: Duration = Duration::from_secs(5);
const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// Runs `stage` on batches of up to `max_batch` messages until shutdown. A batch is whatever has
/// arrived when the stage is free, so a busy consumer batches and an idle one does not wait. At
/// shutdown the batch in hand finishes and messages not yet started are handed back.
pub async fn run_batched<S: Stage>(
    stage: &S,
    bus: &Bus,
    max_batch: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut puller = Puller::bind(&bus.js, S::STREAM, S::CONSUMER).await?;
    let _poller = spawn_poller(puller.consumer.clone(), S::CONSUMER);
    let health = Health::new(bus, S::CONSUMER);
    while !shutdown.is_cancelled() {
        if pause(&health, &shutdown).await {
            break;
        }
        if let Err(error) = puller.request(max_batch).await {
            tracing::warn!(error = format!("{error:#}"), "pull request failed");
            health.waiting(Dependency::Nats, &error);
            continue;
        }
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            first = puller.next() => first,
        };
        let Some(first) = first else {
            continue;
        };
        let mut batch = vec![Delivery::new(first, S::CONSUMER)];
        while batch.len() < max_batch {
            match futures::FutureExt::now_or_never(puller.next()) {
                Some(Some(message)) => batch.push(Delivery::new(message, S::CONSUMER)),
                _ => break,
            }
        }
        let started = std::time::Instant::now();
        let in_hand: Vec<&async_nats::jetstream::Message> =
            batch.iter().map(|d| &d.message).collect();
        let settles = with_heartbeat(
            &in_hand,
            bus.topology.heartbeat(),
            round(stage, bus, &health, &batch),
        )
        .await;
        let took = started.elapsed();
        for (delivery, outcome) in batch.iter().zip(settles) {
            crate::metrics::record_handled(S::CONSUMER, took);
            settle(&delivery.message, outcome).await;
        }
    }
    hand_back(&mut puller, S::CONSUMER).await;
    Ok(())
}

/// Runs `stage` on up to `concurrency` messages at a time, each on its own, until shutdown. At
/// shutdown the messages in hand finish and are settled, and those not yet started are handed
/// back.
pub async fn run_concurrent<S: Stage>(
    stage: &S,
    bus: &Bus,
    concurrency: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut puller = Puller::bind(&bus.js, S::STREAM, S::CONSUMER).await?;
    let _poller = spawn_poller(puller.consumer.clone(), S::CONSUMER);
    let health = Health::new(bus, S::CONSUMER);
    let heartbeat = bus.topology.heartbeat();
    let health_ref = &health;
    let run = |message: async_nats::jetstream::Message| async move {
        let delivery = Delivery::new(message, S::CONSUMER);
        let started = std::time::Instant::now();
        let settles = with_heartbeat(
            &[&delivery.message],
            heartbeat,
            round(stage, bus, health_ref, std::slice::from_ref(&delivery)),
        )
        .await;
        crate::metrics::record_handled(S::CONSUMER, started.elapsed());
        for outcome in settles {
            settle(&delivery.message, outcome).await;
        }
    };
    let mut in_hand = futures::stream::FuturesUnordered::new();
    while !shutdown.is_cancelled() {
        // While a dependency is down, one message at a time tries it again, after a pause.
        let waiting = health.pause();
        let limit = if waiting.is_some() { 1 } else { concurrency };
        let room = limit.saturating_sub(in_hand.len());
        if room > 0
            && in_hand.is_empty()
            && let Some(pause) = waiting
        {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        // A request is made only when there is room, and for no more than the room, so every
        // message that arrives can be started at once; and only once half the room is free
        // (or nothing is in hand), so one request brings several messages where one per message
        // cost the server a request each.
        let ask = room > 0 && (in_hand.is_empty() || room * 2 >= limit);
        if ask && let Err(error) = puller.request(room).await {
            tracing::warn!(error = format!("{error:#}"), "pull request failed");
            health.waiting(Dependency::Nats, &error);
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = in_hand.next(), if !in_hand.is_empty() => {}
            message = puller.next(), if room > 0 && puller.is_open() => {
                if let Some(message) = message {
                    in_hand.push(run(message));
                }
            }
        }
    }
    // The work in hand goes on while the open request ends and its messages are handed back.
    let finish_in_hand = async { while in_hand.next().await.is_some() {} };
    tokio::join!(hand_back(&mut puller, S::CONSUMER), finish_in_hand);
    Ok(())
}

/// Sleeps while a dependency is unavailable; true if shutdown came first.
async fn pause(health: &Health, shutdown: &CancellationToken) -> bool {
    let Some(pause) = health.pause() else {
        return false;
    };
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(pause) => false,
    }
}

/// Handles one batch of deliveries and says how to settle each.
async fn round<S: Stage>(
    stage: &S,
    bus: &Bus,
    health: &Health,
    deliveries: &[Delivery],
) -> Vec<Settle> {
    let mut settles = vec![Settle::Ack; deliveries.len()];
    let mut incoming = Vec::with_capacity(deliveries.len());
    let mut positions = Vec::with_capacity(deliveries.len());
    for (i, delivery) in deliveries.iter().enumerate() {
        let message = &delivery.message;
        match stage.decode(message.subject.as_str(), &message.payload) {
            Ok(event) => {
                incoming.push(Incoming {
                    event,
                    span: delivery.span(S::SPAN),
                    delivery: delivery.clone(),
                });
                positions.push(i);
            }
            Err(error) => {
                settles[i] = park(bus, health, S::CONSUMER, delivery, &error.to_string()).await;
            }
        }
    }
    if incoming.is_empty() {
        return settles;
    }

    let mut results = handle_all(stage, &incoming).await;
    // One event that fails the whole batch must not hold back the others: try each failed one
    // alone.
    if incoming.len() > 1
        && results
            .iter()
            .any(|r| matches!(r, Err(Failure::Failed(..))))
    {
        for (k, result) in results.iter_mut().enumerate() {
            if matches!(result, Err(Failure::Failed(..)))
                && let Some(alone) = handle_all(stage, std::slice::from_ref(&incoming[k]))
                    .await
                    .pop()
            {
                *result = alone;
            }
        }
    }

    let mut produced: Vec<(usize, Vec<Outgoing>)> = Vec::with_capacity(incoming.len());
    let mut unavailable: Option<(Dependency, anyhow::Error)> = None;
    let mut probed: HashMap<Dependency, bool> = HashMap::new();
    for (k, result) in results.into_iter().enumerate() {
        let i = positions[k];
        let item = &incoming[k];
        let permanent = match result {
            Ok(events) => {
                health.settled(item.delivery.stream_sequence);
                produced.push((i, events));
                continue;
            }
            Err(Failure::Permanent(reason)) => reason,
            Err(Failure::Unavailable(dependency, error)) => {
                settles[i] = Settle::Retry(health.retry_delay());
                unavailable = Some((dependency, error));
                continue;
            }
            Err(Failure::Failed(dependency, error)) => {
                let answers = match probed.get(&dependency) {
                    Some(answers) => *answers,
                    None => {
                        let answers = stage.probe(dependency).await;
                        probed.insert(dependency, answers);
                        answers
                    }
                };
                if !answers {
                    settles[i] = Settle::Retry(health.retry_delay());
                    unavailable = Some((dependency, error));
                    continue;
                }
                let failures = health.failed_alone(item.delivery.stream_sequence);
                if failures < POISON_AFTER {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        attempt = failures,
                        subject = %item.delivery.message.subject,
                        "handling failed while the {} answers; trying again",
                        dependency.describe()
                    );
                    settles[i] = Settle::Retry(FIRST_PAUSE * 4);
                    continue;
                }
                format!("could not be handled: {error:#}")
            }
        };
        health.settled(item.delivery.stream_sequence);
        match item
            .span
            .in_scope(|| stage.rejection(&item.event, permanent.clone()))
        {
            Some(rejection) => produced.push((i, vec![rejection])),
            None => settles[i] = park(bus, health, S::CONSUMER, &item.delivery, &permanent).await,
        }
    }

    let (positions, events): (Vec<usize>, Vec<Vec<Outgoing>>) = produced.into_iter().unzip();
    let events: Vec<Outgoing> = events.into_iter().flatten().collect();
    if !events.is_empty()
        && let Err(error) = bus.publisher.publish_all(events).await
    {
        for i in positions {
            settles[i] = Settle::Retry(health.retry_delay());
        }
        health.waiting(Dependency::Nats, &error.into());
        return settles;
    }
    match unavailable {
        Some((dependency, error)) => health.waiting(dependency, &error),
        None => health.recovered(),
    }
    settles
}

/// The stage's results, one per event whatever the stage returned.
async fn handle_all<S: Stage>(stage: &S, batch: &[Incoming<S::Event>]) -> Vec<Handled> {
    let mut results = stage.handle(batch).await;
    if results.len() != batch.len() {
        tracing::error!(
            expected = batch.len(),
            got = results.len(),
            stage = S::CONSUMER,
            "a stage answered for the wrong number of events"
        );
        results = batch
            .iter()
            .map(|_| {
                Err(Failure::Failed(
                    Dependency::Nats,
                    anyhow::anyhow!("the stage gave no result for this event"),
                ))
            })
            .collect();
    }
    results
}

/// Sets a message aside on the dead-letter stream, with why; acked once it is stored there.
async fn park(
    bus: &Bus,
    health: &Health,
    consumer: &'static str,
    delivery: &Delivery,
    reason: &str,
) -> Settle {
    let message = &delivery.message;
    let original = message.subject.as_str();
    let mut headers = HeaderMap::new();
    headers.insert(
        "Nats-Msg-Id",
        format!("dead:{consumer}:{}", delivery.stream_sequence).as_str(),
    );
    headers.insert("Pictureday-Consumer", consumer);
    headers.insert("Pictureday-Original-Subject", original);
    // Header values are one line.
    headers.insert(
        "Pictureday-Reason",
        reason.replace(['\r', '\n'], " ").as_str(),
    );
    let subject = dead_letter_subject(consumer, original);
    let stored = async {
        bus.js
            .publish_with_headers(subject.clone(), headers, message.payload.clone())
            .await?
            .await
    }
    .await;
    match stored {
        Ok(_) => {
            tracing::error!(
                consumer,
                subject = original,
                reason,
                dead_letter = subject,
                "an event could not be handled and was set aside"
            );
            crate::metrics::metrics()
                .dead_letters
                .add(1, &crate::metrics::stage(consumer));
            Settle::Ack
        }
        Err(error) => {
            health.waiting(Dependency::Nats, &error.into());
            Settle::Retry(health.retry_delay())
        }
    }
}

/// What a stage instance knows of its dependencies: whether it is waiting on one (and since
/// when), how long to pause, and which events keep failing on their own.
struct Health {
    state: Mutex<HealthState>,
    nats: async_nats::Client,
    stage: &'static str,
    instance: String,
}

#[derive(Default)]
struct HealthState {
    waiting: Option<(Dependency, DateTime<Utc>)>,
    /// Rounds in a row that ended waiting.
    streak: u32,
    /// When the wait was last announced.
    announced: Option<std::time::Instant>,
    /// Failures of events handled alone while their dependency answered, by stream sequence.
    failed_alone: HashMap<u64, u32>,
}

/// How often a stage that is still waiting says so again.
const REANNOUNCE_EVERY: Duration = Duration::from_secs(10);

/// Entries kept of events failing alone; more than this many at once is itself an outage.
const MAX_TRACKED: usize = 10_000;

impl Health {
    fn new(bus: &Bus, stage: &'static str) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(HealthState::default()),
            nats: bus.nats.clone(),
            stage,
            instance: bus.instance.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long to wait before taking more work, while waiting on a dependency.
    fn pause(&self) -> Option<Duration> {
        let state = self.lock();
        state.waiting.map(|_| backoff(state.streak))
    }

    /// When a message that met an outage comes back.
    fn retry_delay(&self) -> Duration {
        backoff(self.lock().streak)
    }

    fn waiting(&self, dependency: Dependency, error: &anyhow::Error) {
        let since = {
            let mut state = self.lock();
            state.streak = state.streak.saturating_add(1);
            match state.waiting {
                Some((current, since)) if current == dependency => {
                    // Said again now and then, so a reader that started later knows too.
                    if state
                        .announced
                        .is_some_and(|at| at.elapsed() < REANNOUNCE_EVERY)
                    {
                        return;
                    }
                    state.announced = Some(std::time::Instant::now());
                    drop(state);
                    self.announce(dependency, Some(since));
                    return;
                }
                _ => {
                    let since = Utc::now();
                    state.waiting = Some((dependency, since));
                    state.announced = Some(std::time::Instant::now());
                    since
                }
            }
        };
        tracing::warn!(
            stage = self.stage,
            error = format!("{error:#}"),
            "waiting: the {} is unavailable; work is kept and resumes when it is back",
            dependency.describe()
        );
        self.announce(dependency, Some(since));
    }

    fn recovered(&self) {
        let was = {
            let mut state = self.lock();
            state.streak = 0;
            state.waiting.take()
        };
        if let Some((dependency, since)) = was {
            let waited = (Utc::now() - since).num_milliseconds() as f64 / 1000.0;
            tracing::info!(
                stage = self.stage,
                waited_seconds = waited,
                "the {} is back; resuming",
                dependency.describe()
            );
            self.announce(dependency, None);
        }
    }

    fn failed_alone(&self, sequence: u64) -> u32 {
        let mut state = self.lock();
        if state.failed_alone.len() >= MAX_TRACKED {
            state.failed_alone.clear();
        }
        let count = state.failed_alone.entry(sequence).or_default();
        *count += 1;
        *count
    }

    fn settled(&self, sequence: u64) {
        let mut state = self.lock();
        if !state.failed_alone.is_empty() {
            state.failed_alone.remove(&sequence);
        }
    }

    /// Tells reporting (and so the jobs' readers) that this stage waits, or no longer does.
    fn announce(&self, dependency: Dependency, waiting_since: Option<DateTime<Utc>>) {
        let health = StageHealth {
            v: SCHEMA_VERSION,
            stage: self.stage.to_owned(),
            instance: self.instance.clone(),
            dependency,
            waiting_since,
        };
        let Ok(payload) = serde_json::to_vec(&health) else {
            return;
        };
        let nats = self.nats.clone();
        tokio::spawn(async move {
            if let Err(error) = nats.publish(STAGE_HEALTH_SUBJECT, payload.into()).await {
                tracing::debug!(%error, "announcing stage health");
            }
        });
    }
}

fn backoff(streak: u32) -> Duration {
    FIRST_PAUSE
        .saturating_mul(1u32 << streak.min(8))
        .min(MAX_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_a_few_seconds() {
        assert_eq!(backoff(0), FIRST_PAUSE);
        assert_eq!(backoff(1), FIRST_PAUSE * 2);
        assert_eq!(backoff(5), MAX_PAUSE);
        assert_eq!(backoff(u32::MAX), MAX_PAUSE);
    }
}
