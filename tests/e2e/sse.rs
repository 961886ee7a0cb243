//! Job status pushed to dashboards: `GET …/events` streams a district's `job.status` events as
//! Server-Sent Events, in stream order, with heartbeats while idle, and a client that comes
//! back with `Last-Event-ID` receives exactly what it missed. Behind the gateway, as deployed.

use std::pin::Pin;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::{Stream, StreamExt};
use pictureday_contract::subjects::STATUS_STREAM;
use pictureday_platform::config::WebhookArgs;
use pictureday_tests::{AppLayout, Backend, TestApp};
use serde_json::Value;

on_each_backend!(job_status_streams_in_order_and_resumes_after_a_disconnect);

const DISTRICT: &str = "springfield";

/// One item of an event stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Event { id: u64, event: String, data: Value },
    Comment(String),
}

/// An open `GET …/events`, read item by item.
pub(crate) struct EventStream {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl EventStream {
    pub(crate) async fn open(
        app: &TestApp,
        token: &str,
        last_event_id: Option<u64>,
    ) -> anyhow::Result<Self> {
        let mut request = app
            .http
            .get(app.url(&format!("/v1/districts/{DISTRICT}/events")))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await?;
        anyhow::ensure!(response.status() == 200, "events: {}", response.status());
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        anyhow::ensure!(
            content_type.starts_with("text/event-stream"),
            "content type {content_type}"
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
        Ok(Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        })
    }

    /// The next item, or `None` if none came within `patience`.
    pub(crate) async fn next(&mut self, patience: Duration) -> anyhow::Result<Option<Item>> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Ok(Some(parse(&block)?));
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => anyhow::bail!("the event stream ended"),
                Ok(Some(chunk)) => self.buffer.push_str(std::str::from_utf8(&chunk?)?),
            }
        }
    }

    /// The `job.status` events up to and including `job`'s final one.
    pub(crate) async fn until_final(&mut self, job: &str) -> anyhow::Result<Vec<(u64, Value)>> {
        let mut events = Vec::new();
        loop {
            match self.next(Duration::from_secs(60)).await? {
                None => anyhow::bail!("no final status of {job}; got {events:?}"),
                Some(Item::Comment(_)) => {}
                Some(Item::Event { id, event, data }) => {
                    assert_eq!(event, "job.status");
                    let done = data["job_id"] == job && is_final(&data);
                    events.push((id, data));
                    if done {
                        return Ok(events);
                    }
                }
            }
        }
    }
}

fn is_final(status: &Value) -> bool {
    matches!(
        status["state"].as_str(),
        Some("finished" | "finished_with_errors" | "failed" | "previewed")
    )
}

fn parse(block: &str) -> anyhow::Result<Item> {
    let (mut id, mut event, mut data) = (None, String::new(), String::new());
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            return Ok(Item::Comment(comment.trim().to_owned()));
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.parse()?),
            "event" => event = value.to_owned(),
            "data" => data.push_str(value),
            _ => {}
        }
    }
    Ok(Item::Event {
        id: id.ok_or_else(|| anyhow::anyhow!("an event without id: {block:?}"))?,
        event,
        data: serde_json::from_str(&data)?,
    })
}

/// The district's `job.status` events on the stream with sequences in `from..=to`, as the
/// stream has them.
pub(crate) async fn stream_events(
    app: &TestApp,
    district: &str,
    from: u64,
    to: u64,
) -> anyhow::Result<Vec<(u64, Value)>> {
    let stream = app.bus.js.get_stream(STATUS_STREAM).await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("pictureday.job.status.{district}.>"),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut events = Vec::new();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_secs(2), messages.next()).await
    {
        let message = message?;
        let seq = message
            .info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence;
        if seq > to {
            break;
        }
        events.push((seq, serde_json::from_slice(&message.payload)?));
        if seq == to {
            break;
        }
    }
    Ok(events)
}

async fn job_status_streams_in_order_and_resumes_after_a_disconnect(
    backend: Backend,
) -> anyhow::Result<()> {
    let layout = AppLayout {
        behind_gateway: true,
        webhooks: WebhookArgs {
            events_heartbeat_secs: Some(1),
            ..WebhookArgs::default()
        },
        ..AppLayout::default()
    };
    let app = TestApp::spawn_with(backend, layout).await?;
    let token = app.create_district(DISTRICT, "Springfield USD").await?;
    let other = app
        .create_district("shelbyville", "Shelbyville USD")
        .await?;
    app.upload_numbered_roster(&token, DISTRICT, 8).await?;

    // Tenants are isolated: another district's token is told there is no such district.
    let path = format!("/v1/districts/{DISTRICT}/events");
    let refused = app.get(&other, &path).await?;
    assert_eq!(refused.status(), 404);
    let body: Value = refused.json().await?;
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert_eq!(app.get("not-a-token", &path).await?.status(), 401);
    let bad_id = app
        .http
        .get(app.url(&path))
        .bearer_auth(&token)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await?;
    assert_eq!(bad_id.status(), 400);

    // A job's events arrive in order, ending in its final state, exactly as the stream has them.
    let mut events = EventStream::open(&app, &token, None).await?;
    let first = app
        .import_numbered_photos(&token, DISTRICT, 3, (400, 500))
        .await?;
    let seen = events.until_final(&first).await?;
    assert!(
        seen.iter().all(|(_, s)| s["job_id"] == first.as_str()),
        "{seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    let (last_id, last) = seen
        .last()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no events"))?;
    assert_eq!(last["state"], "finished", "{last}");
    assert_eq!(last["counts"]["applied"], 3, "{last}");
    assert!(
        seen[..seen.len() - 1].iter().all(|(_, s)| !is_final(s)),
        "{seen:?}"
    );
    let first_id = seen[0].0;
    assert_eq!(
        stream_events(&app, DISTRICT, first_id, last_id).await?,
        seen,
        "the stream sent every event of the job once"
    );
    // Idle, it says it is alive.
    assert_eq!(
        events.next(Duration::from_secs(5)).await?,
        Some(Item::Comment("heartbeat".into()))
    );

    // Disconnected, the client misses a whole job; coming back with the last id it saw, it
    // receives exactly what it missed, then only heartbeats.
    drop(events);
    let second = app
        .import_numbered_photos(&token, DISTRICT, 5, (400, 500))
        .await?;
    let job = app.wait_for_job(&token, DISTRICT, &second).await?;
    assert_eq!(job["state"], "finished", "{job}");
    let mut resumed = EventStream::open(&app, &token, Some(last_id)).await?;
    let missed = resumed.until_final(&second).await?;
    assert!(missed[0].0 > last_id, "{missed:?}");
    assert!(
        missed.iter().all(|(_, s)| s["job_id"] == second.as_str()),
        "{missed:?}"
    );
    let resumed_to = missed.last().map_or(0, |(id, _)| *id);
    assert_eq!(
        stream_events(&app, DISTRICT, last_id + 1, resumed_to).await?,
        missed,
        "exactly the events after Last-Event-ID"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut heartbeats = 0;
    while let Some(item) = resumed
        .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await?
    {
        assert_eq!(
            item,
            Item::Comment("heartbeat".into()),
            "nothing more was missed"
        );
        heartbeats += 1;
    }
    assert!(heartbeats >= 1, "a heartbeat a second while idle");
    drop(resumed);
    app.stop().await
}
