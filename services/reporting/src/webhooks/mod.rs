//! Webhooks: a district's endpoints receive its events as signed HTTP requests (Standard
//! Webhooks). They live in reporting, which owns job status: its `webhooks` consumer of the
//! status stream turns each `job.status` into one pending delivery per matching endpoint
//! (`fanout`), and a sender of its own (`deliver`) works through them with retries, apart from
//! the pipeline, so a slow or dead endpoint never slows an import. An endpoint that fails for
//! days is disabled, which is announced as a `webhook.disabled` event.

pub(crate) mod api;
mod deliver;
mod fanout;
mod net;
pub mod sign;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use chrono::{DateTime, Utc};
use pictureday_contract::DistrictId;
use pictureday_contract::subjects::{Kind, STATUS_STREAM};
use pictureday_platform::bus::Bus;
use pictureday_platform::config::Webhooks as WebhookSettings;
use sea_orm::DatabaseConnection;
use serde::Serialize;
use tokio::sync::Notify;

pub(crate) use deliver::run as run_sender;
pub(crate) use fanout::Fanout;

/// The durable consumer of the status stream that fans `job.status` out to endpoints.
pub const CONSUMER: &str = "webhooks";
/// Events about webhooks themselves (`webhook.disabled`), kept 30 days like job status.
pub const EVENTS_STREAM: &str = "PICTUREDAY_WEBHOOK_EVENTS";
const EVENTS_SUBJECTS: &str = "pictureday.webhook.>";

/// The events an endpoint may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A job's status changed (the `job.status` event).
    JobStatus,
    /// One of the district's endpoints was disabled.
    WebhookDisabled,
}

impl EventType {
    pub const ALL: [EventType; 2] = [EventType::JobStatus, EventType::WebhookDisabled];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::JobStatus => "job.status",
            EventType::WebhookDisabled => "webhook.disabled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// An endpoint's stored list (a JSON array of names); names this build does not know are
    /// left out.
    pub fn list_of(stored: &str) -> Vec<EventType> {
        serde_json::from_str::<Vec<String>>(stored)
            .unwrap_or_default()
            .iter()
            .filter_map(|name| Self::parse(name))
            .collect()
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// `webhook.disabled`: an endpoint failed without a success for longer than the operator allows
/// and is no longer sent anything until it is enabled again.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookDisabled {
    pub v: u32,
    pub district: DistrictId,
    pub endpoint_id: String,
    pub url: String,
    pub reason: String,
    pub failing_since: DateTime<Utc>,
    pub disabled_at: DateTime<Utc>,
}

impl WebhookDisabled {
    pub fn subject(&self) -> String {
        format!(
            "pictureday.webhook.disabled.{}.{}",
            self.district, self.endpoint_id
        )
    }
}

/// A delivery's body, as Standard Webhooks lays it out.
#[derive(Serialize)]
struct Payload<'a, T: Serialize> {
    #[serde(rename = "type")]
    event_type: EventType,
    timestamp: DateTime<Utc>,
    data: &'a T,
}

fn payload<T: Serialize>(
    event_type: EventType,
    timestamp: DateTime<Utc>,
    data: &T,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Payload {
        event_type,
        timestamp,
        data,
    })
}

/// What the webhook parts of reporting share.
#[derive(Clone)]
pub(crate) struct Webhooks {
    pub db: DatabaseConnection,
    pub bus: Bus,
    pub settings: Arc<WebhookSettings>,
    pub client: net::Client,
    /// Woken when deliveries are added, so the sender need not wait for its next look.
    pub added: Arc<Notify>,
}

impl Webhooks {
    pub fn new(
        db: DatabaseConnection,
        bus: Bus,
        settings: WebhookSettings,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: net::client(settings.allow_private, settings.timeout)?,
            db,
            bus,
            settings: Arc::new(settings),
            added: Arc::new(Notify::new()),
        })
    }
}

/// Creates (or brings up to date) the webhooks consumer of the status stream and the stream
/// of webhook events, asking again for a while if JetStream is slow to answer. Idempotent; only
/// reporting reads or writes either.
pub async fn ensure_topology(bus: &Bus) -> anyhow::Result<()> {
    pictureday_platform::bus::patiently(
        "setting up the webhook stream and consumer",
        Duration::from_secs(60),
        |_| true,
        || ensure_topology_once(bus),
    )
    .await
}

async fn ensure_topology_once(bus: &Bus) -> anyhow::Result<()> {
    let topology = &bus.topology;
    bus.js
        .create_or_update_stream(stream::Config {
            name: EVENTS_STREAM.into(),
            subjects: vec![EVENTS_SUBJECTS.into()],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            max_age: Duration::from_secs(30 * 24 * 3600),
            num_replicas: topology.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("creating stream {EVENTS_STREAM}: {e}"))?;
    // From the events published after it first exists: an endpoint registered today is not
    // sent a month of history.
    bus.js
        .create_consumer_on_stream(
            pull::Config {
                durable_name: Some(CONSUMER.into()),
                deliver_policy: DeliverPolicy::New,
                ack_policy: AckPolicy::Explicit,
                max_deliver: -1,
                ack_wait: topology.ack_wait,
                num_replicas: topology.replicas,
                max_ack_pending: 10_000,
                filter_subject: Kind::JobStatus.wildcard(),
                ..Default::default()
            },
            STATUS_STREAM,
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating consumer {CONSUMER}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_read_back() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("job.created"), None);
        assert_eq!(
            EventType::list_of(r#"["job.status","photo.applied","webhook.disabled"]"#),
            vec![EventType::JobStatus, EventType::WebhookDisabled]
        );
    }
}
