//! The JetStream topology (subjects, streams, durable consumers) and the two ways services use it:
//! publishing events with deterministic ids, and consuming with explicit acks.
//!
//! Streams:
//! - `PICTUREDAY_PIPELINE` (interest retention): every photo event and `job.created`. Several
//!   services each see every message they filter on; a message is removed once all have acked.
//! - `PICTUREDAY_STATUS` (limits retention, 30 days): `job.status` events for dashboards.
//!
//! Every service ensures the whole topology at start, so no service's consumer can be missing
//! when another publishes (interest streams drop messages nobody is interested in).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind, Message};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::DistrictId;

pub const PIPELINE_STREAM: &str = "PICTUREDAY_PIPELINE";
pub const STATUS_STREAM: &str = "PICTUREDAY_STATUS";
pub const ROSTER_LOOKUP_SUBJECT: &str = "pictureday.roster.lookup";

/// How often a consumer may see one message before the consumer gives up on it.
pub const MAX_DELIVER: i64 = 6;
/// Redelivery delays after an ack timeout, as multiples of the ack wait.
const ACK_BACKOFF_FACTORS: [u32; 4] = [1, 2, 5, 10];

/// The settings of streams and consumers an operator may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// How long a consumer waits for an ack before delivering the message again. Workers signal
    /// progress while they work, so this bounds how long a dead worker's messages wait.
    pub ack_wait: Duration,
    /// Copies of each stream JetStream keeps (3 on a production cluster).
    pub replicas: usize,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(60),
            replicas: 1,
        }
    }
}

impl Topology {
    /// Delays before each redelivery after an ack timeout; the first is the ack wait itself.
    pub fn backoff(&self) -> Vec<Duration> {
        ACK_BACKOFF_FACTORS
            .iter()
            .map(|&f| self.ack_wait * f)
            .collect()
    }

    /// How often a worker tells JetStream it is still working on a message.
    pub fn heartbeat(&self) -> Duration {
        self.ack_wait / 3
    }
}

/// The kinds of event that flow through the pipeline, one subject family each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    JobCreated,
    Ingested,
    Matched,
    Unmatched,
    Processed,
    Rejected,
    Applied,
    JobStatus,
}

impl Kind {
    pub fn token(self) -> &'static str {
        match self {
            Kind::JobCreated => "job.created",
            Kind::Ingested => "photo.ingested",
            Kind::Matched => "photo.matched",
            Kind::Unmatched => "photo.unmatched",
            Kind::Processed => "photo.processed",
            Kind::Rejected => "photo.rejected",
            Kind::Applied => "photo.applied",
            Kind::JobStatus => "job.status",
        }
    }

    /// `pictureday.<kind>.<district>.<job>`
    pub fn subject(self, district: &DistrictId, job_id: &str) -> String {
        format!("pictureday.{}.{district}.{job_id}", self.token())
    }

    /// Every subject of this kind.
    pub fn wildcard(self) -> String {
        format!("pictureday.{}.>", self.token())
    }

    /// Reads the kind back from a subject.
    pub fn of_subject(subject: &str) -> Option<Kind> {
        let rest = subject.strip_prefix("pictureday.")?;
        [
            Kind::JobCreated,
            Kind::Ingested,
            Kind::Matched,
            Kind::Unmatched,
            Kind::Processed,
            Kind::Rejected,
            Kind::Applied,
            Kind::JobStatus,
        ]
        .into_iter()
        .find(|k| {
            rest.strip_prefix(k.token())
                .is_some_and(|tail| tail.starts_with('.'))
        })
    }
}

/// The durable consumers, by the service that owns them.
pub mod consumers {
    pub const MATCHER: &str = "matcher";
    pub const IMAGE_PROCESSOR: &str = "image-processor";
    pub const ROSTER: &str = "roster";
    pub const REPORTING: &str = "reporting";
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("creating stream {stream}: {source}")]
    Stream {
        stream: &'static str,
        source: async_nats::jetstream::context::CreateStreamError,
    },
    #[error("creating consumer {consumer}: {source}")]
    Consumer {
        consumer: &'static str,
        source: async_nats::jetstream::stream::ConsumerError,
    },
    #[error("publishing to {subject}: {source}")]
    Publish {
        subject: String,
        source: async_nats::jetstream::context::PublishError,
    },
    #[error("encoding event for {subject}: {source}")]
    Encode {
        subject: String,
        source: serde_json::Error,
    },
}

fn pipeline_stream_config(topology: &Topology) -> stream::Config {
    stream::Config {
        num_replicas: topology.replicas,
        name: PIPELINE_STREAM.into(),
        subjects: vec!["pictureday.photo.>".into(), Kind::JobCreated.wildcard()],
        retention: RetentionPolicy::Interest,
        storage: StorageType::File,
        // A safety net: anything no consumer could take within a week is surely stuck.
        max_age: Duration::from_secs(7 * 24 * 3600),
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    }
}

fn status_stream_config(topology: &Topology) -> stream::Config {
    stream::Config {
        num_replicas: topology.replicas,
        name: STATUS_STREAM.into(),
        subjects: vec![Kind::JobStatus.wildcard()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        max_age: Duration::from_secs(30 * 24 * 3600),
        max_messages_per_subject: 64,
        ..Default::default()
    }
}

/// `filter` empty: the whole stream.
fn consumer_config(
    topology: &Topology,
    name: &str,
    filter: String,
    max_ack_pending: i64,
) -> pull::Config {
    pull::Config {
        durable_name: Some(name.into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        max_deliver: MAX_DELIVER,
        backoff: topology.backoff(),
        ack_wait: topology.ack_wait,
        num_replicas: topology.replicas,
        max_ack_pending,
        filter_subject: filter,
        ..Default::default()
    }
}

/// The durable consumers and what each filters on.
fn consumer_configs(topology: &Topology) -> Vec<(&'static str, pull::Config)> {
    let config = |name, filter, max_ack_pending| {
        (
            name,
            consumer_config(topology, name, filter, max_ack_pending),
        )
    };
    vec![
        config(consumers::MATCHER, Kind::Ingested.wildcard(), 20_000),
        config(consumers::IMAGE_PROCESSOR, Kind::Matched.wildcard(), 1_000),
        config(consumers::ROSTER, Kind::Processed.wildcard(), 20_000),
        // Reporting sees every message of the pipeline stream, so it needs no filter.
        config(consumers::REPORTING, String::new(), 50_000),
    ]
}

/// Creates both streams and every durable consumer, or brings existing ones to `topology`
/// (so a changed ack wait or replica count takes effect when the services restart). Idempotent.
pub async fn ensure_topology(js: &jetstream::Context, topology: &Topology) -> Result<(), BusError> {
    js.create_or_update_stream(pipeline_stream_config(topology))
        .await
        .map_err(|source| BusError::Stream {
            stream: PIPELINE_STREAM,
            source,
        })?;
    js.create_or_update_stream(status_stream_config(topology))
        .await
        .map_err(|source| BusError::Stream {
            stream: STATUS_STREAM,
            source,
        })?;
    for (name, config) in consumer_configs(topology) {
        js.create_consumer_on_stream(config, PIPELINE_STREAM)
            .await
            .map_err(|source| BusError::Consumer {
                consumer: name,
                source,
            })?;
    }
    Ok(())
}

/// How long one pull request waits for messages before JetStream ends it. Shutdown waits at
/// most this long for the request in flight to end.
const PULL_EXPIRES: Duration = Duration::from_secs(3);

/// Pulls messages from one of the durable consumers (created by [`ensure_topology`]), one
/// request at a time and each for no more than the caller can start, so replicas sharing the
/// consumer share its work and, at shutdown, every message sent to this instance is accounted
/// for.
struct Puller {
    consumer: jetstream::consumer::PullConsumer,
    open: Option<pull::Batch>,
    name: &'static str,
}

impl Puller {
    async fn bind(js: &jetstream::Context, name: &'static str) -> anyhow::Result<Self> {
        let stream = js.get_stream(PIPELINE_STREAM).await?;
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_consumer(name)
            .await
            .map_err(|e| anyhow::anyhow!("binding consumer {name}: {e}"))?;
        Ok(Self {
            consumer,
            open: None,
            name,
        })
    }

    /// Makes sure a pull request is open, asking for up to `room` messages if none is.
    async fn request(&mut self, room: usize) -> anyhow::Result<()> {
        if self.open.is_none() {
            let batch = self
                .consumer
                .batch()
                .max_messages(room.max(1))
                .expires(PULL_EXPIRES)
                .messages()
                .await
                .map_err(|e| anyhow::anyhow!("pulling from consumer {}: {e}", self.name))?;
            self.open = Some(batch);
        }
        Ok(())
    }

    /// The next message of the open request; `None` when it has ended (another must be made).
    /// Cancel-safe: a message not taken stays for the next call.
    async fn next(&mut self) -> Option<Message> {
        let batch = self.open.as_mut()?;
        match batch.next().await {
            Some(Ok(message)) => Some(message),
            Some(Err(error)) => {
                tracing::warn!(%error, consumer = self.name, "pull error");
                self.open = None;
                None
            }
            None => {
                self.open = None;
                None
            }
        }
    }

    /// At shutdown: waits for the open request to end (at most [`PULL_EXPIRES`]) and returns
    /// what it still brought.
    async fn rest(&mut self) -> Vec<Message> {
        let Some(batch) = self.open.take() else {
            return Vec::new();
        };
        batch.filter_map(|m| async move { m.ok() }).collect().await
    }
}

/// How often each process reads its consumers' backlog for the lag gauges.
const CONSUMER_POLL: Duration = Duration::from_secs(10);

/// Reads the consumer's backlog into the metrics until `stop` is cancelled.
async fn poll_consumer_state(
    consumer: jetstream::consumer::PullConsumer,
    name: &'static str,
    stop: CancellationToken,
) {
    loop {
        match consumer.get_info().await {
            Ok(info) => crate::metrics::record_consumer_state(
                name,
                info.num_pending,
                info.num_ack_pending as u64,
            ),
            Err(error) => tracing::debug!(%error, consumer = name, "reading consumer state"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(CONSUMER_POLL) => {}
        }
    }
}

/// Publishes events and waits for JetStream to store them.
#[derive(Clone)]
pub struct Publisher {
    js: jetstream::Context,
}

/// One event ready to publish.
pub struct Outgoing {
    pub subject: String,
    pub msg_id: String,
    pub payload: bytes::Bytes,
    /// W3C trace context of the span the event was made in.
    pub trace_headers: Vec<(String, String)>,
    /// For a rejection, the stage that gave up on the file (for the metrics).
    pub rejected_by: Option<&'static str>,
}

impl Outgoing {
    /// Encodes an event; it carries the trace context of the current span.
    pub fn new<T: Serialize>(subject: String, msg_id: String, event: &T) -> Result<Self, BusError> {
        let payload = serde_json::to_vec(event).map_err(|source| BusError::Encode {
            subject: subject.clone(),
            source,
        })?;
        Ok(Self {
            subject,
            msg_id,
            payload: payload.into(),
            trace_headers: crate::telemetry::current_trace_headers(),
            rejected_by: None,
        })
    }
}

/// How many publishes may wait for their acks at once when publishing many.
const PUBLISH_WINDOW: usize = 512;

impl Publisher {
    pub fn new(js: jetstream::Context) -> Self {
        Self { js }
    }

    /// Publishes one event; returns once JetStream has stored it.
    pub async fn publish(&self, event: Outgoing) -> Result<(), BusError> {
        self.publish_all(vec![event]).await
    }

    /// Publishes many events, pipelined, and returns once every one is stored. A duplicate
    /// (same `Nats-Msg-Id` within the stream's window) counts as stored.
    pub async fn publish_all(&self, events: Vec<Outgoing>) -> Result<(), BusError> {
        let mut pending = futures::stream::iter(events.into_iter().map(|event| async move {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.msg_id.as_str());
            for (name, value) in &event.trace_headers {
                headers.insert(name.as_str(), value.as_str());
            }
            let publish = PublishMessage::build()
                .payload(event.payload)
                .headers(headers);
            let ack = self
                .js
                .send_publish(event.subject.clone(), publish)
                .await
                .map_err(|source| BusError::Publish {
                    subject: event.subject.clone(),
                    source,
                })?;
            let stored = ack.await.map_err(|source| BusError::Publish {
                subject: event.subject.clone(),
                source,
            })?;
            if !stored.duplicate {
                count_published(&event.subject, event.rejected_by);
            }
            Ok::<(), BusError>(())
        }))
        .buffered(PUBLISH_WINDOW);
        while let Some(result) = pending.next().await {
            result?;
        }
        Ok(())
    }
}

fn count_published(subject: &str, rejected_by: Option<&'static str>) {
    let Some(kind) = Kind::of_subject(subject) else {
        return;
    };
    let m = crate::metrics::metrics();
    m.events_published
        .add(1, &[opentelemetry::KeyValue::new("kind", kind.token())]);
    match kind {
        Kind::Processed => m.photos_processed.add(1, &[]),
        Kind::Rejected => m
            .photos_rejected
            .add(1, &crate::metrics::stage(rejected_by.unwrap_or("unknown"))),
        _ => {}
    }
}

/// What to do with a message once its handler has run.
#[derive(Debug)]
pub enum Disposition {
    /// Done (including: its failure was recorded as an outcome).
    Ack,
    /// A transient failure: deliver again after the delay.
    Retry(Duration),
}

/// A received message with its attempt count.
#[derive(Clone)]
pub struct Delivery {
    pub message: Message,
    /// 1 on the first delivery.
    pub attempt: i64,
}

impl Delivery {
    fn new(message: Message, stage: &'static str) -> Self {
        let (attempt, published) = match message.info() {
            Ok(info) => (info.delivered, Some(info.published)),
            Err(_) => (1, None),
        };
        let waited =
            published.and_then(|p| Duration::try_from(time::OffsetDateTime::now_utc() - p).ok());
        crate::metrics::record_delivery(stage, waited, attempt);
        Self { message, attempt }
    }

    /// The last delivery the consumer will make: a handler must now record a failure as an
    /// outcome instead of asking for a retry, so no file is silently dropped.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= MAX_DELIVER
    }

    /// A span for handling this message, continuing the trace it carries.
    pub fn span(&self, stage: &'static str) -> tracing::Span {
        crate::telemetry::message_span(
            stage,
            self.message.headers.as_ref(),
            self.message.subject.as_str(),
        )
    }

    pub fn kind(&self) -> Option<Kind> {
        Kind::of_subject(self.message.subject.as_str())
    }

    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.message.payload)
    }

    /// Growing delays for handler-requested retries.
    pub fn retry_delay(&self) -> Duration {
        let step = u32::try_from(self.attempt.clamp(1, 6)).unwrap_or(1);
        Duration::from_secs(2u64.pow(step))
    }
}

/// Settles a message; a failed ack means JetStream will redeliver, which handlers tolerate.
pub async fn settle(message: &Message, disposition: Disposition) {
    let kind = match disposition {
        Disposition::Ack => AckKind::Ack,
        Disposition::Retry(delay) => AckKind::Nak(Some(delay)),
    };
    if let Err(error) = message.ack_with(kind).await {
        tracing::warn!(%error, subject = %message.subject, "could not settle message; it will be redelivered");
    }
}

/// Runs `work` while telling JetStream, every `every`, that `messages` are still being worked
/// on, so a long task is not redelivered to another worker while this one is alive.
async fn with_heartbeat<T>(
    messages: &[&Message],
    every: Duration,
    work: impl Future<Output = T>,
) -> T {
    let mut work = std::pin::pin!(work);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = ticks.tick() => {
                for message in messages {
                    if let Err(error) = message.ack_with(AckKind::Progress).await {
                        tracing::debug!(%error, "signalling progress");
                    }
                }
            }
        }
    }
}

/// At shutdown: returns to JetStream, for another instance to take at once, what was sent to
/// this one but not started.
async fn hand_back(puller: &mut Puller, stage: &'static str) {
    let unstarted = puller.rest().await;
    for message in &unstarted {
        if let Err(error) = message.ack_with(AckKind::Nak(None)).await {
            tracing::debug!(%error, "handing back a message");
        }
    }
    if !unstarted.is_empty() {
        crate::metrics::metrics()
            .handed_back
            .add(unstarted.len() as u64, &crate::metrics::stage(stage));
        tracing::info!(
            consumer = stage,
            handed_back = unstarted.len(),
            "returned unstarted messages"
        );
    }
}

/// Waits a moment after a failed pull, so a broken connection does not spin.
async fn pause_after_failure(shutdown: &CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
    }
}

/// Runs `handle` on batches of up to `max_batch` messages until shutdown. A batch is whatever has
/// arrived when the handler is free, so a busy consumer batches and an idle one does not wait.
/// At shutdown the batch in hand finishes and messages not yet started are handed back.
pub async fn consume_batches<F, Fut>(
    js: &jetstream::Context,
    topology: &Topology,
    name: &'static str,
    max_batch: usize,
    shutdown: CancellationToken,
    mut handle: F,
) -> anyhow::Result<()>
where
    F: FnMut(Vec<Delivery>) -> Fut,
    Fut: Future<Output = Vec<Disposition>>,
{
    let mut puller = Puller::bind(js, name).await?;
    let _poller = spawn_poller(puller.consumer.clone(), name);
    while !shutdown.is_cancelled() {
        if let Err(error) = puller.request(max_batch).await {
            tracing::warn!(error = format!("{error:#}"), "pull request failed");
            pause_after_failure(&shutdown).await;
            continue;
        }
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            first = puller.next() => first,
        };
        let Some(first) = first else {
            continue;
        };
        let mut batch = vec![Delivery::new(first, name)];
        while batch.len() < max_batch {
            match futures::FutureExt::now_or_never(puller.next()) {
                Some(Some(message)) => batch.push(Delivery::new(message, name)),
                _ => break,
            }
        }
        let started = std::time::Instant::now();
        let in_hand: Vec<&Message> = batch.iter().map(|d| &d.message).collect();
        let dispositions =
            with_heartbeat(&in_hand, topology.heartbeat(), handle(batch.clone())).await;
        let took = started.elapsed();
        for (delivery, disposition) in batch.iter().zip(dispositions) {
            crate::metrics::record_handled(name, took);
            settle(&delivery.message, disposition).await;
        }
    }
    hand_back(&mut puller, name).await;
    Ok(())
}

/// Runs `handle` on up to `concurrency` messages at a time until shutdown. At shutdown the
/// messages in hand finish and are settled, and those not yet started are handed back.
pub async fn consume_concurrently<F, Fut>(
    js: &jetstream::Context,
    topology: &Topology,
    name: &'static str,
    concurrency: usize,
    shutdown: CancellationToken,
    handle: F,
) -> anyhow::Result<()>
where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = Disposition>,
{
    let mut puller = Puller::bind(js, name).await?;
    let _poller = spawn_poller(puller.consumer.clone(), name);
    let heartbeat = topology.heartbeat();
    let handle = &handle;
    let run = |message: Message| async move {
        let delivery = Delivery::new(message, name);
        let message = delivery.message.clone();
        let started = std::time::Instant::now();
        let disposition = with_heartbeat(&[&message], heartbeat, handle(delivery)).await;
        crate::metrics::record_handled(name, started.elapsed());
        settle(&message, disposition).await;
    };
    let mut in_hand = futures::stream::FuturesUnordered::new();
    while !shutdown.is_cancelled() {
        let room = concurrency.saturating_sub(in_hand.len());
        // A request is made only when there is room, and for no more than the room, so every
        // message that arrives can be started at once.
        if room > 0
            && let Err(error) = puller.request(room).await
        {
            tracing::warn!(error = format!("{error:#}"), "pull request failed");
            pause_after_failure(&shutdown).await;
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = in_hand.next(), if !in_hand.is_empty() => {}
            message = puller.next(), if room > 0 => {
                if let Some(message) = message {
                    in_hand.push(run(message));
                }
            }
        }
    }
    // The work in hand goes on while the open request ends and its messages are handed back.
    let finish_in_hand = async { while in_hand.next().await.is_some() {} };
    tokio::join!(hand_back(&mut puller, name), finish_in_hand);
    Ok(())
}

/// Polls the consumer's backlog for the metrics until the returned guard is dropped.
fn spawn_poller(
    consumer: jetstream::consumer::PullConsumer,
    name: &'static str,
) -> tokio_util::sync::DropGuard {
    let stop = CancellationToken::new();
    tokio::spawn(poll_consumer_state(consumer, name, stop.clone()));
    stop.drop_guard()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_carry_district_and_job() -> anyhow::Result<()> {
        let district = DistrictId::parse("springfield")?;
        let subject = Kind::Matched.subject(&district, "job-1");
        assert_eq!(subject, "pictureday.photo.matched.springfield.job-1");
        assert_eq!(Kind::of_subject(&subject), Some(Kind::Matched));
        assert_eq!(
            Kind::of_subject("pictureday.job.created.springfield.j"),
            Some(Kind::JobCreated)
        );
        assert_eq!(Kind::of_subject("other.photo.matched.x.y"), None);
        Ok(())
    }

    #[test]
    fn backoff_outlasts_deliveries() {
        // The server refuses a backoff list longer than max_deliver allows.
        let topology = Topology::default();
        assert!((topology.backoff().len() as i64) < MAX_DELIVER);
        assert_eq!(topology.backoff()[0], topology.ack_wait);
        assert!(topology.heartbeat() < topology.ack_wait);
    }
}
