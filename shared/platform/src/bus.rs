//! The JetStream side of the contract: connecting, creating the streams and durable consumers
//! (`pictureday_contract::subjects` names them), and publishing events with deterministic ids.
//! Consuming is in [`crate::consumer`] and [`crate::stage`].

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::jetstream::{self};
use futures::StreamExt;
use pictureday_contract::PersonId;
use pictureday_contract::events::{FileRef, PhotoRejected, SCHEMA_VERSION};
use pictureday_contract::subjects::{
    DEAD_LETTER_STREAM, DEAD_LETTER_WILDCARD, JOB_UNDONE_WILDCARD, Kind, PIPELINE_STREAM,
    ROSTER_SYNC_WILDCARD, STATUS_STREAM, consumers,
};
use serde::Serialize;

use crate::nats_client::NatsAddress;

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
    /// How often a worker tells JetStream it is still working on a message.
    pub fn heartbeat(&self) -> Duration {
        self.ack_wait / 3
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("connecting to NATS at {url} (NATS_URL): {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
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

/// A process's connection to the bus, shared by every component it hosts.
#[derive(Clone)]
pub struct Bus {
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub publisher: Publisher,
    pub topology: Topology,
    /// This process's instance name (in events and logs).
    pub instance: String,
}

/// How long a starting service waits for NATS (it may be starting alongside).
const NATS_CONNECT_PATIENCE: Duration = Duration::from_secs(30);

impl Bus {
    /// Connects (waiting for a server that is still starting) and makes sure every stream and
    /// durable consumer exists as `topology` says.
    pub async fn connect(url: &str, instance: &str, topology: Topology) -> Result<Self, BusError> {
        let deadline = tokio::time::Instant::now() + NATS_CONNECT_PATIENCE;
        // The URL may carry credentials: they become options and are never logged.
        let address = NatsAddress::parse(url);
        let nats = loop {
            match address.connect(&format!("pictureday-{instance}")).await {
                Ok(client) => break client,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(%error, url = %address.masked(), "waiting for NATS");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(source) => {
                    return Err(BusError::Connect {
                        url: address.masked(),
                        source,
                    });
                }
            }
        };
        let js = jetstream::new(nats.clone());
        ensure_topology_patiently(&js, &topology).await?;
        Ok(Self {
            publisher: Publisher::new(js.clone()),
            nats,
            js,
            topology,
            instance: instance.to_owned(),
        })
    }

    /// Whether JetStream answers (a full disk or a lost quorum leaves the connection up but
    /// JetStream silent).
    pub async fn probe(&self) -> Result<(), String> {
        if self.nats.connection_state() != async_nats::connection::State::Connected {
            return Err("not connected".into());
        }
        match tokio::time::timeout(Duration::from_secs(2), self.js.query_account()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("JetStream: {error}")),
            Err(_) => Err("JetStream did not answer within 2 s".into()),
        }
    }
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
        // `job.undone` is kept beside the statuses: a record of what happened to a job.
        // So is `roster.sync`: what a district's roster source's sync runs did.
        subjects: vec![
            Kind::JobStatus.wildcard(),
            JOB_UNDONE_WILDCARD.into(),
            ROSTER_SYNC_WILDCARD.into(),
        ],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        max_age: Duration::from_secs(30 * 24 * 3600),
        max_messages_per_subject: 64,
        ..Default::default()
    }
}

fn dead_letter_stream_config(topology: &Topology) -> stream::Config {
    stream::Config {
        num_replicas: topology.replicas,
        name: DEAD_LETTER_STREAM.into(),
        subjects: vec![DEAD_LETTER_WILDCARD.into()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        max_age: Duration::from_secs(30 * 24 * 3600),
        ..Default::default()
    }
}

/// `filter` empty: the whole stream.
///
/// Deliveries are unlimited: a message is only ever settled by a handler, never given up on by
/// the bus, so an outage delays work and never loses it. There is no ack-wait backoff list:
/// JetStream measures a Nak's delay from the ack wait but an expiry from the backoff entry of the
/// delivery count, so with one a second Nak waited a whole extra ack wait. A message whose worker
/// died comes back after each ack wait.
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
        max_deliver: -1,
        ack_wait: topology.ack_wait,
        num_replicas: topology.replicas,
        max_ack_pending,
        filter_subject: filter,
        ..Default::default()
    }
}

/// The durable consumers: (stream, name, config).
fn consumer_configs(topology: &Topology) -> Vec<(&'static str, &'static str, pull::Config)> {
    let config = |stream, name, filter, max_ack_pending| {
        (
            stream,
            name,
            consumer_config(topology, name, filter, max_ack_pending),
        )
    };
    vec![
        config(
            PIPELINE_STREAM,
            consumers::MATCHER,
            Kind::Ingested.wildcard(),
            20_000,
        ),
        config(
            PIPELINE_STREAM,
            consumers::IMAGE_PROCESSOR,
            Kind::Matched.wildcard(),
            1_000,
        ),
        config(
            PIPELINE_STREAM,
            consumers::ROSTER,
            Kind::Processed.wildcard(),
            20_000,
        ),
        // Reporting sees every message of the pipeline stream, so it needs no filter.
        config(PIPELINE_STREAM, consumers::REPORTING, String::new(), 50_000),
        config(
            DEAD_LETTER_STREAM,
            consumers::REPORTING_DEAD_LETTERS,
            String::new(),
            10_000,
        ),
    ]
}

/// How long a starting service keeps asking JetStream to set up the topology when it does not
/// answer in time (a loaded or still-recovering server can take longer than one request's 5 s).
const TOPOLOGY_PATIENCE: Duration = Duration::from_secs(60);

/// [`ensure_topology`], asked again while JetStream times out or is not yet available, so a slow
/// server delays a start instead of failing it. Other refusals (a bad setting) fail at once.
async fn ensure_topology_patiently(
    js: &jetstream::Context,
    topology: &Topology,
) -> Result<(), BusError> {
    patiently(
        "setting up JetStream streams and consumers",
        TOPOLOGY_PATIENCE,
        BusError::is_transient,
        || ensure_topology(js, topology),
    )
    .await
}

/// Runs `attempt` again, every half second, while it fails in a way `transient` says may pass
/// and `patience` has not run out; for set-up at start, never for handling a message.
pub async fn patiently<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    patience: Duration,
    transient: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> F,
) -> Result<T, E> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match attempt().await {
            Err(error) if transient(&error) && tokio::time::Instant::now() < deadline => {
                tracing::info!(%error, "{what}: not done yet; asking again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            done => return done,
        }
    }
}

impl BusError {
    /// Whether asking again later may succeed: JetStream did not answer in time or was not
    /// ready, as opposed to refusing what was asked.
    fn is_transient(&self) -> bool {
        use async_nats::jetstream::context::CreateStreamErrorKind;
        use async_nats::jetstream::stream::ConsumerErrorKind;
        match self {
            Self::Stream { source, .. } => matches!(
                source.kind(),
                CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable
            ),
            Self::Consumer { source, .. } => matches!(
                source.kind(),
                ConsumerErrorKind::TimedOut | ConsumerErrorKind::Request
            ),
            Self::Connect { .. } | Self::Publish { .. } | Self::Encode { .. } => false,
        }
    }
}

/// Creates the streams and every durable consumer, or brings existing ones to `topology` (so a
/// changed ack wait or replica count takes effect when the services restart). Idempotent.
/// Every service ensures the whole topology, so no consumer can be missing when another service
/// publishes (an interest stream drops what nobody is interested in).
pub async fn ensure_topology(js: &jetstream::Context, topology: &Topology) -> Result<(), BusError> {
    for (name, config) in [
        (PIPELINE_STREAM, pipeline_stream_config(topology)),
        (STATUS_STREAM, status_stream_config(topology)),
        (DEAD_LETTER_STREAM, dead_letter_stream_config(topology)),
    ] {
        js.create_or_update_stream(config)
            .await
            .map_err(|source| BusError::Stream {
                stream: name,
                source,
            })?;
    }
    for (stream, name, config) in consumer_configs(topology) {
        js.create_consumer_on_stream(config, stream)
            .await
            .map_err(|source| BusError::Consumer {
                consumer: name,
                source,
            })?;
    }
    Ok(())
}

/// Publishes events and waits for JetStream to store them.
#[derive(Clone)]
pub struct Publisher {
    js: jetstream::Context,
}

/// One event ready to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub msg_id: String,
    pub payload: bytes::Bytes,
    /// W3C trace context of the span the event was made in, and any other headers.
    pub headers: Vec<(String, String)>,
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
            headers: crate::telemetry::current_trace_headers(),
            rejected_by: None,
        })
    }

    /// The rejection of `file` by `stage`: every stage that gives up on a file says so the same
    /// way.
    pub fn rejection(
        stage: &'static str,
        file: &FileRef,
        person_id: Option<PersonId>,
        reason: String,
    ) -> Result<Self, BusError> {
        let mut outgoing = Self::new(
            Kind::Rejected.subject(&file.district, &file.job_id),
            file.msg_id("rejected"),
            &PhotoRejected {
                v: SCHEMA_VERSION,
                file: file.clone(),
                person_id,
                reason,
            },
        )?;
        outgoing.rejected_by = Some(stage);
        Ok(outgoing)
    }

    /// [`Outgoing::rejection`] for a stage's `rejection`: `None`, logged, in the unlikely case
    /// the event cannot be encoded (the message is then set aside instead).
    pub fn rejection_of(
        stage: &'static str,
        file: &FileRef,
        person_id: Option<PersonId>,
        reason: String,
    ) -> Option<Self> {
        match Self::rejection(stage, file, person_id, reason) {
            Ok(rejection) => Some(rejection),
            Err(error) => {
                tracing::error!(%error, "could not encode a rejection");
                None
            }
        }
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
            for (name, value) in &event.headers {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumers_redeliver_forever() {
        let topology = Topology::default();
        assert!(topology.heartbeat() < topology.ack_wait);
        for (_, _, config) in consumer_configs(&topology) {
            assert_eq!(config.max_deliver, -1);
            assert!(config.backoff.is_empty());
        }
    }
}
