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
/// Redelivery delays after an ack timeout; the first is also the time a worker has to ack.
pub const ACK_BACKOFF: [Duration; 4] = [
    Duration::from_secs(60),
    Duration::from_secs(120),
    Duration::from_secs(300),
    Duration::from_secs(600),
];

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

fn pipeline_stream_config() -> stream::Config {
    stream::Config {
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

fn status_stream_config() -> stream::Config {
    stream::Config {
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
fn consumer_config(name: &str, filter: String, max_ack_pending: i64) -> pull::Config {
    pull::Config {
        durable_name: Some(name.into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        max_deliver: MAX_DELIVER,
        backoff: ACK_BACKOFF.to_vec(),
        ack_wait: ACK_BACKOFF[0],
        max_ack_pending,
        filter_subject: filter,
        ..Default::default()
    }
}

/// The durable consumers and what each filters on.
fn consumer_configs() -> Vec<(&'static str, pull::Config)> {
    vec![
        (
            consumers::MATCHER,
            consumer_config(consumers::MATCHER, Kind::Ingested.wildcard(), 20_000),
        ),
        (
            consumers::IMAGE_PROCESSOR,
            consumer_config(consumers::IMAGE_PROCESSOR, Kind::Matched.wildcard(), 1_000),
        ),
        (
            consumers::ROSTER,
            consumer_config(consumers::ROSTER, Kind::Processed.wildcard(), 20_000),
        ),
        // Reporting sees every message of the pipeline stream, so it needs no filter.
        (
            consumers::REPORTING,
            consumer_config(consumers::REPORTING, String::new(), 50_000),
        ),
    ]
}

/// Creates (or updates) both streams and every durable consumer. Idempotent.
pub async fn ensure_topology(js: &jetstream::Context) -> Result<(), BusError> {
    let pipeline = js
        .get_or_create_stream(pipeline_stream_config())
        .await
        .map_err(|source| BusError::Stream {
            stream: PIPELINE_STREAM,
            source,
        })?;
    js.get_or_create_stream(status_stream_config())
        .await
        .map_err(|source| BusError::Stream {
            stream: STATUS_STREAM,
            source,
        })?;
    for (name, config) in consumer_configs() {
        pipeline
            .get_or_create_consumer(name, config)
            .await
            .map_err(|source| BusError::Consumer {
                consumer: name,
                source,
            })?;
    }
    Ok(())
}

/// Binds to one of the durable consumers (created by [`ensure_topology`]), pulling at most
/// `prefetch` messages ahead, so replicas sharing the consumer share its work.
pub async fn consumer(
    js: &jetstream::Context,
    name: &'static str,
    prefetch: usize,
) -> Result<pull::Stream, anyhow::Error> {
    let stream = js.get_stream(PIPELINE_STREAM).await?;
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_consumer(name)
        .await
        .map_err(|e| anyhow::anyhow!("binding consumer {name}: {e}"))?;
    Ok(consumer
        .stream()
        .max_messages_per_batch(prefetch)
        .messages()
        .await?)
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
            ack.await.map_err(|source| BusError::Publish {
                subject: event.subject,
                source,
            })?;
            Ok::<(), BusError>(())
        }))
        .buffered(PUBLISH_WINDOW);
        while let Some(result) = pending.next().await {
            result?;
        }
        Ok(())
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
    fn new(message: Message) -> Self {
        let attempt = message.info().map(|i| i.delivered).unwrap_or(1);
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

/// Runs `handle` on batches of up to `max_batch` messages until shutdown. A batch is whatever has
/// arrived when the handler is free, so a busy consumer batches and an idle one does not wait.
pub async fn consume_batches<F, Fut>(
    js: &jetstream::Context,
    name: &'static str,
    max_batch: usize,
    shutdown: CancellationToken,
    mut handle: F,
) -> anyhow::Result<()>
where
    F: FnMut(Vec<Delivery>) -> Fut,
    Fut: Future<Output = Vec<Disposition>>,
{
    let mut messages = consumer(js, name, max_batch).await?.ready_chunks(max_batch);
    loop {
        let chunk = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            chunk = messages.next() => chunk,
        };
        let Some(chunk) = chunk else {
            anyhow::bail!("consumer {name} ended");
        };
        let mut batch = Vec::with_capacity(chunk.len());
        for message in chunk {
            match message {
                Ok(message) => batch.push(Delivery::new(message)),
                Err(error) => tracing::warn!(%error, consumer = name, "pull error"),
            }
        }
        if batch.is_empty() {
            continue;
        }
        let dispositions = handle(batch.clone()).await;
        for (delivery, disposition) in batch.iter().zip(dispositions) {
            settle(&delivery.message, disposition).await;
        }
    }
}

/// Runs `handle` on up to `concurrency` messages at a time until shutdown; in-flight messages
/// finish before it returns.
pub async fn consume_concurrently<F, Fut>(
    js: &jetstream::Context,
    name: &'static str,
    concurrency: usize,
    shutdown: CancellationToken,
    handle: F,
) -> anyhow::Result<()>
where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = Disposition>,
{
    let messages = consumer(js, name, concurrency * 2).await?;
    let handle = &handle;
    messages
        .take_until(shutdown.cancelled_owned())
        .for_each_concurrent(concurrency, |message| async move {
            match message {
                Ok(message) => {
                    let delivery = Delivery::new(message);
                    let message = delivery.message.clone();
                    let disposition = handle(delivery).await;
                    settle(&message, disposition).await;
                }
                Err(error) => tracing::warn!(%error, consumer = name, "pull error"),
            }
        })
        .await;
    Ok(())
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
        assert!((ACK_BACKOFF.len() as i64) < MAX_DELIVER);
    }
}
