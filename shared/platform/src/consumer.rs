//! Pulling from a durable consumer: one request at a time and each for no more messages than the
//! caller can start, heartbeats for long work, and handing back what was not started at
//! shutdown. [`crate::stage`] builds the pipeline's consumer loops on it.

use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::{self, AckKind, Message};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// How long one pull request waits for messages before JetStream ends it. Shutdown waits at
/// most this long for the request in flight to end.
const PULL_EXPIRES: Duration = Duration::from_secs(3);

/// How long a starting consumer keeps asking JetStream for its durable consumer.
const BIND_PATIENCE: Duration = Duration::from_secs(60);

async fn bind_once(
    js: &jetstream::Context,
    stream: &str,
    name: &'static str,
) -> anyhow::Result<jetstream::consumer::PullConsumer> {
    let stream = js
        .get_stream(stream)
        .await
        .map_err(|e| anyhow::anyhow!("finding stream {stream}: {e}"))?;
    stream
        .get_consumer(name)
        .await
        .map_err(|e| anyhow::anyhow!("binding consumer {name}: {e}"))
}

pub(crate) struct Puller {
    pub(crate) consumer: jetstream::consumer::PullConsumer,
    open: Option<pull::Batch>,
    name: &'static str,
}

impl Puller {
    /// Binds to the durable consumer `name`, asking again for up to [`BIND_PATIENCE`] (a
    /// loaded server delays a start; it does not fail it).
    pub(crate) async fn bind(
        js: &jetstream::Context,
        stream: &str,
        name: &'static str,
    ) -> anyhow::Result<Self> {
        let consumer = crate::bus::patiently(
            "binding a consumer",
            BIND_PATIENCE,
            |_| true,
            || bind_once(js, stream, name),
        )
        .await?;
        Ok(Self {
            consumer,
            open: None,
            name,
        })
    }

    /// Makes sure a pull request is open, asking for up to `room` messages if none is.
    pub(crate) async fn request(&mut self, room: usize) -> anyhow::Result<()> {
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

    /// Whether a request is open (messages may still come from it).
    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The next message of the open request; `None` when it has ended (another must be made).
    /// Cancel-safe: a message not taken stays for the next call.
    pub(crate) async fn next(&mut self) -> Option<Message> {
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

/// A received message with its attempt count.
#[derive(Clone)]
pub struct Delivery {
    pub message: Message,
    /// 1 on the first delivery.
    pub attempt: i64,
    /// The message's position in its stream (unique per stream).
    pub stream_sequence: u64,
}

impl Delivery {
    pub(crate) fn new(message: Message, stage: &'static str) -> Self {
        let (attempt, published, stream_sequence) = match message.info() {
            Ok(info) => (info.delivered, Some(info.published), info.stream_sequence),
            Err(_) => (1, None, 0),
        };
        let waited =
            published.and_then(|p| Duration::try_from(time::OffsetDateTime::now_utc() - p).ok());
        crate::metrics::record_delivery(stage, waited, attempt);
        Self {
            message,
            attempt,
            stream_sequence,
        }
    }

    /// A span for handling this message, continuing the trace it carries.
    pub fn span(&self, stage: &'static str) -> tracing::Span {
        crate::telemetry::message_span(
            stage,
            self.message.headers.as_ref(),
            self.message.subject.as_str(),
        )
    }
}

/// What to do with a message once it has been handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Done: its outcome is recorded (or it was set aside as a dead letter).
    Ack,
    /// Not done (a dependency is unavailable): deliver again after the delay.
    Retry(Duration),
}

/// Settles a message; a failed ack means JetStream will redeliver, which handlers tolerate.
pub(crate) async fn settle(message: &Message, settle: Settle) {
    let kind = match settle {
        Settle::Ack => AckKind::Ack,
        Settle::Retry(delay) => AckKind::Nak(Some(delay)),
    };
    if let Err(error) = message.ack_with(kind).await {
        tracing::warn!(%error, subject = %message.subject, "could not settle message; it will be redelivered");
    }
}

/// Runs `work` while telling JetStream, every `every`, that `messages` are still being worked
/// on, so a long task is not redelivered to another worker while this one is alive.
pub(crate) async fn with_heartbeat<T>(
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
pub(crate) async fn hand_back(puller: &mut Puller, stage: &'static str) {
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

/// How often each process reads its consumers' backlog for the lag gauges.
const CONSUMER_POLL: Duration = Duration::from_secs(10);

/// Polls the consumer's backlog for the metrics until the returned guard is dropped.
pub(crate) fn spawn_poller(
    consumer: jetstream::consumer::PullConsumer,
    name: &'static str,
) -> tokio_util::sync::DropGuard {
    let stop = CancellationToken::new();
    let poll_stop = stop.clone();
    tokio::spawn(async move {
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
                _ = poll_stop.cancelled() => return,
                _ = tokio::time::sleep(CONSUMER_POLL) => {}
            }
        }
    });
    stop.drop_guard()
}
