//! `GET /v1/districts/{d}/events`: the district's `job.status` events (and its roster sources'
//! `roster.sync` events) as Server-Sent Events, as they are published. Each request reads the status stream through an ordered consumer of
//! its own, filtered to the district, from the event after `Last-Event-ID` (an event's id is its
//! sequence in the stream) or, without one, from now on. Idle streams get a heartbeat comment,
//! so proxies and clients see the connection is alive; the stream ends when the service stops,
//! and the client resumes where it was.

use std::convert::Infallible;
use std::sync::Arc;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt as _;
use pictureday_access::{Auth, Caller, Role};
use pictureday_contract::subjects::{Kind, STATUS_STREAM};
use pictureday_platform::http::ApiError;
use tokio_util::sync::CancellationToken;

use crate::Reporting;

#[derive(Clone)]
struct EventsState {
    reporting: Reporting,
    auth: Arc<Auth>,
}

impl FromRef<EventsState> for Arc<Auth> {
    fn from_ref(state: &EventsState) -> Self {
        state.auth.clone()
    }
}

pub(crate) fn router(reporting: Reporting, auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/v1/districts/{district}/events", get(events))
        .with_state(EventsState { reporting, auth })
}

/// The sequence to resume after, from `Last-Event-ID`.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>().map(Some).map_err(|_| {
        let shown: String = text.chars().take(64).collect();
        ApiError::BadRequest(format!(
            "Last-Event-ID {shown:?} is not the id of an event of this stream"
        ))
    })
}

/// The district's job status events, as they happen, as Server-Sent Events (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/events",
    tag = "jobs",
    operation_id = "jobEvents",
    description = "`text/event-stream`: each event is `event: job.status`, `id:` its sequence, `data:` the job's status as JSON; idle streams get a heartbeat comment. Reconnect with `Last-Event-ID` to resume after the last event received; without it, from now on.",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received.")),
    responses(
        (status = 200, description = "The event stream.", body = String, content_type = "text/event-stream",
            example = "event: job.status\nid: 42\ndata: {\"job_id\":\"0196f1c2-9e8d-7c4e-8a1b-2c3d4e5f6a7b\",\"state\":\"finished\"}\n\n"),
        (status = 400, description = "A `Last-Event-ID` that is not an event's id.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn events(
    State(state): State<EventsState>,
    caller: Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let after = last_event_id(&headers)?;
    let unavailable = |error: &dyn std::fmt::Display| {
        tracing::warn!(%error, "opening an event stream");
        ApiError::Unavailable("the event stream is unavailable; try again shortly".into())
    };
    let stream = state
        .reporting
        .bus
        .js
        .get_stream(STATUS_STREAM)
        .await
        .map_err(|e| unavailable(&e))?;
    let deliver_policy = match after {
        Some(seq) => DeliverPolicy::ByStartSequence {
            start_sequence: seq.saturating_add(1),
        },
        None => DeliverPolicy::New,
    };
    // The consumer exists before the answer's head is sent: an event published after the
    // client has the head is in its stream.
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            // `job.status` and `roster.sync` (`job.undone`, also matched, is skipped below).
            filter_subject: format!("pictureday.*.*.{district}.>"),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?;
    let messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
    let shutdown = state.reporting.shutdown.clone();
    let events = futures::stream::unfold(
        (Box::pin(messages), shutdown),
        |(mut messages, shutdown): (_, CancellationToken)| async move {
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    next = messages.next() => next?,
                };
                return match next {
                    Ok(message) => {
                        let Some(event) = sse_event(&message) else {
                            continue;
                        };
                        Some((Ok::<_, Infallible>(event), (messages, shutdown)))
                    }
                    Err(error) => {
                        // The client reconnects with the last id it has and loses nothing.
                        tracing::debug!(%error, "event stream ended");
                        None
                    }
                };
            }
        },
    );
    let heartbeat = state.reporting.settings.webhooks.heartbeat;
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response();
    // A buffering proxy (nginx) would hold events back.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The message as an SSE event named by its kind; `None` for a kind the stream does not carry.
fn sse_event(message: &async_nats::jetstream::Message) -> Option<Event> {
    let kind = if message
        .subject
        .starts_with(&format!("pictureday.{}.", Kind::JobStatus.token()))
    {
        Kind::JobStatus.token()
    } else if message.subject.starts_with("pictureday.roster.sync.") {
        "roster.sync"
    } else {
        return None;
    };
    let id = message
        .info()
        .map(|info| info.stream_sequence.to_string())
        .unwrap_or_default();
    Some(
        Event::default()
            .id(id)
            .event(kind)
            .data(String::from_utf8_lossy(&message.payload)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_is_a_sequence() {
        let mut headers = HeaderMap::new();
        assert!(matches!(last_event_id(&headers), Ok(None)));
        headers.insert("last-event-id", HeaderValue::from_static("42"));
        assert!(matches!(last_event_id(&headers), Ok(Some(42))));
        headers.insert("last-event-id", HeaderValue::from_static("abc"));
        assert!(last_event_id(&headers).is_err());
    }
}
