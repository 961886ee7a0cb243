//! Webhooks to real receivers on loopback (which the tests allow explicitly): every delivery
//! signed as Standard Webhooks says and logged; a receiver that fails is retried on the
//! schedule until it answers; one that never answers is disabled, and the district's other
//! endpoints are told; and loopback endpoints are refused when not allowed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use pictureday_platform::config::WebhookArgs;
use pictureday_reporting::webhooks::sign::{Secret, verify};
use pictureday_tests::{AppLayout, Backend, TestApp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::sse::stream_events;

on_each_backend!(
    deliveries_are_signed_in_order_and_logged,
    a_receiver_failing_twice_is_retried_until_it_answers,
    an_endpoint_that_never_answers_is_disabled_and_announced,
    loopback_endpoints_are_refused_unless_allowed
);

const DISTRICT: &str = "springfield";

/// How a test receiver answers.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// `200 ok` to everything.
    Answer,
    /// `500` to the first requests, `200 ok` after.
    FailFirst(usize),
    /// Reads the request and never answers.
    Silent,
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn json(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

/// A plain HTTP/1.1 receiver on loopback, as an integrator's would be.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(behaviour: Behaviour) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks/pictureday", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let log = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, behaviour, count.clone(), log.clone()));
            }
        });
        Ok(Self {
            url,
            received,
            task,
        })
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    behaviour: Behaviour,
    count: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Received>>>,
) {
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let headers: HashMap<String, String> = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buffer[head_end..head_end + length].to_vec();
        buffer.drain(..head_end + length);
        if let Ok(mut log) = log.lock() {
            log.push(Received { headers, body });
        }
        let n = count.fetch_add(1, Ordering::SeqCst);
        let (status, text) = match behaviour {
            Behaviour::Silent => {
                // Holds the connection and says nothing, as a hung server does.
                std::future::pending::<()>().await;
                return;
            }
            Behaviour::FailFirst(k) if n < k => ("500 Internal Server Error", "try again later"),
            _ => ("200 OK", "ok"),
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Loopback allowed (the receivers are there), the retry schedule in seconds.
fn layout(retries: &str) -> AppLayout {
    AppLayout {
        webhooks: WebhookArgs {
            webhook_allow_private: Some(true),
            webhook_retry_schedule: Some(retries.into()),
            ..WebhookArgs::default()
        },
        ..AppLayout::default()
    }
}

async fn set_up(backend: Backend, layout: AppLayout) -> anyhow::Result<(TestApp, String)> {
    let app = TestApp::spawn_with(backend, layout).await?;
    let token = app.create_district(DISTRICT, "Springfield USD").await?;
    app.upload_numbered_roster(&token, DISTRICT, 4).await?;
    Ok((app, token))
}

/// `POST …/webhooks`: the status and the body.
async fn register(app: &TestApp, token: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    let response = app
        .http
        .post(app.url(&format!("/v1/districts/{DISTRICT}/webhooks")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

/// Registers `url` for `types`; returns the endpoint's id and secret.
async fn endpoint(
    app: &TestApp,
    token: &str,
    url: &str,
    types: &[&str],
) -> anyhow::Result<(String, Secret)> {
    let (status, created) =
        register(app, token, json!({ "url": url, "event_types": types })).await?;
    anyhow::ensure!(status == 201, "register: {status}: {created}");
    let secret = Secret::parse(created["secret"].as_str().unwrap_or_default())?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    Ok((id, secret))
}

/// The endpoint's delivery log, oldest first.
async fn deliveries(app: &TestApp, token: &str, id: &str) -> anyhow::Result<Vec<Value>> {
    let page = app
        .get_json(
            token,
            &format!("/v1/districts/{DISTRICT}/webhooks/{id}/deliveries?limit=1000"),
        )
        .await?;
    let mut items = page["items"].as_array().cloned().unwrap_or_default();
    items.reverse();
    Ok(items)
}

/// Waits until `done` holds for the delivery log.
async fn wait_for_log(
    app: &TestApp,
    token: &str,
    id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> anyhow::Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = deliveries(app, token, id).await?;
        if done(&log) {
            return Ok(log);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the delivery log did not settle: {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every `job.status` event of the district on the stream so far, in order.
async fn statuses(app: &TestApp) -> anyhow::Result<Vec<(u64, Value)>> {
    stream_events(app, DISTRICT, 1, u64::MAX).await
}

/// Waits until the stream has the job's final status; returns the district's statuses.
async fn statuses_through(app: &TestApp, job: &str) -> anyhow::Result<Vec<(u64, Value)>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let all = statuses(app).await?;
        if all
            .iter()
            .any(|(_, s)| s["job_id"] == job && s["state"] == "finished")
        {
            return Ok(all);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no final status: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn statuses_of(log: &[Value]) -> Vec<Vec<Value>> {
    log.iter()
        .map(|d| {
            d["attempts"]
                .as_array()
                .map(|a| a.iter().map(|a| a["status"].clone()).collect())
                .unwrap_or_default()
        })
        .collect()
}

async fn deliveries_are_signed_in_order_and_logged(backend: Backend) -> anyhow::Result<()> {
    let (app, token) = set_up(backend, layout("1,1,1")).await?;
    let other = app
        .create_district("shelbyville", "Shelbyville USD")
        .await?;
    let receiver = Receiver::start(Behaviour::Answer).await?;

    // What registration checks, with the documented errors.
    for (body, says) in [
        (
            json!({ "url": receiver.url, "event_types": ["job.created"] }),
            "\"job.created\" is not known",
        ),
        (
            json!({ "url": "ftp://hooks.example.com/x", "event_types": ["job.status"] }),
            "http:// or https://",
        ),
        (
            json!({ "url": receiver.url, "event_types": ["job.status"], "secret": "hunter2" }),
            "whsec_",
        ),
    ] {
        let (status, refused) = register(&app, &token, body).await?;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(refused["error"]["code"], "unprocessable", "{refused}");
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{message}");
    }

    let (id, secret) = endpoint(&app, &token, &receiver.url, &["job.status"]).await?;
    assert!(secret.as_str().starts_with("whsec_"));
    // The secret is shown once; another district sees nothing of the endpoint.
    let shown = app
        .get_json(&token, &format!("/v1/districts/{DISTRICT}/webhooks/{id}"))
        .await?;
    assert_eq!(shown["enabled"], true, "{shown}");
    assert_eq!(shown["event_types"], json!(["job.status"]), "{shown}");
    assert!(shown.get("secret").is_none(), "{shown}");
    let listed = app
        .get_json(&token, &format!("/v1/districts/{DISTRICT}/webhooks"))
        .await?;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert!(listed["items"][0].get("secret").is_none(), "{listed}");
    for path in [
        format!("/v1/districts/{DISTRICT}/webhooks"),
        format!("/v1/districts/{DISTRICT}/webhooks/{id}"),
        format!("/v1/districts/{DISTRICT}/webhooks/{id}/deliveries"),
        format!("/v1/districts/shelbyville/webhooks/{id}"),
    ] {
        assert_eq!(app.get(&other, &path).await?.status(), 404, "{path}");
    }

    // An endpoint may bring its own secret, and be deleted.
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (status, own) = register(
        &app,
        &token,
        json!({ "url": receiver.url, "event_types": ["webhook.disabled"], "secret": given }),
    )
    .await?;
    assert_eq!(
        (status, own["secret"].as_str()),
        (201, Some(given)),
        "{own}"
    );
    let own_path = format!(
        "/v1/districts/{DISTRICT}/webhooks/{}",
        own["id"].as_str().unwrap_or_default()
    );
    let deleted = app
        .http
        .delete(app.url(&own_path))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get(&token, &own_path).await?.status(), 404);

    // Every status of the job is delivered once, in stream order, each signed.
    let job = app
        .import_numbered_photos(&token, DISTRICT, 3, (400, 500))
        .await?;
    app.wait_for_job(&token, DISTRICT, &job).await?;
    let published = statuses_through(&app, &job).await?;
    let log = wait_for_log(&app, &token, &id, |log| {
        log.len() == published.len() && log.iter().all(|d| d["state"] == "delivered")
    })
    .await?;
    let received = receiver.received();
    assert_eq!(received.len(), published.len(), "{received:?}");
    let now = chrono::Utc::now().timestamp();
    for ((request, (_, status)), delivery) in received.iter().zip(&published).zip(&log) {
        let webhook_id = request.header("webhook-id");
        verify(
            &secret,
            webhook_id,
            request.header("webhook-timestamp"),
            request.header("webhook-signature"),
            &request.body,
            now,
        )?;
        assert!(
            verify(
                &Secret::generate(),
                webhook_id,
                request.header("webhook-timestamp"),
                request.header("webhook-signature"),
                &request.body,
                now,
            )
            .is_err(),
            "a signature holds only for its secret"
        );
        assert_eq!(request.header("content-type"), "application/json");
        let body = request.json()?;
        assert_eq!(body["type"], "job.status", "{body}");
        assert_eq!(&body["data"], status, "the status as published");
        assert_eq!(delivery["id"], webhook_id, "the log names the webhook-id");
        assert_eq!(delivery["payload"], body);
        assert_eq!(
            statuses_of(std::slice::from_ref(delivery)),
            vec![vec![json!(200)]]
        );
        assert_eq!(delivery["attempts"][0]["response_excerpt"], "ok");
        assert!(delivery["attempts"][0]["latency_ms"].is_u64(), "{delivery}");
    }
    assert_eq!(
        received
            .last()
            .map(|r| r.json())
            .transpose()?
            .map(|b| b["data"]["state"].clone()),
        Some(json!("finished"))
    );
    app.stop().await
}

async fn a_receiver_failing_twice_is_retried_until_it_answers(
    backend: Backend,
) -> anyhow::Result<()> {
    let (app, token) = set_up(backend, layout("1,1,1,1")).await?;
    let receiver = Receiver::start(Behaviour::FailFirst(2)).await?;
    let (id, secret) = endpoint(&app, &token, &receiver.url, &["job.status"]).await?;

    let job = app
        .import_numbered_photos(&token, DISTRICT, 2, (400, 500))
        .await?;
    app.wait_for_job(&token, DISTRICT, &job).await?;
    let published = statuses_through(&app, &job).await?;
    let log = wait_for_log(&app, &token, &id, |log| {
        log.len() == published.len() && log.iter().all(|d| d["state"] == "delivered")
    })
    .await?;

    // The first delivery took three attempts (500, 500, 200) a retry apart; the ones behind it
    // waited their turn and went through at once.
    let mut expected = vec![vec![json!(200)]; published.len()];
    expected[0] = vec![json!(500), json!(500), json!(200)];
    assert_eq!(statuses_of(&log), expected, "{log:#?}");
    let attempts = log[0]["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts[0]["response_excerpt"], "try again later");
    let at = |a: &Value| {
        a["attempted_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    for pair in attempts.windows(2) {
        let (Some(before), Some(after)) = (at(&pair[0]), at(&pair[1])) else {
            anyhow::bail!("attempts without times: {attempts:?}");
        };
        assert!(
            after - before >= chrono::Duration::seconds(1),
            "{attempts:?}"
        );
    }

    // The receiver saw the same webhook-id three times, each time signed, then the rest in order.
    let received = receiver.received();
    assert_eq!(received.len(), published.len() + 2);
    let first_id = log[0]["id"].as_str().unwrap_or_default();
    assert!(
        received[..3]
            .iter()
            .all(|r| r.header("webhook-id") == first_id)
    );
    let now = chrono::Utc::now().timestamp();
    for request in &received {
        verify(
            &secret,
            request.header("webhook-id"),
            request.header("webhook-timestamp"),
            request.header("webhook-signature"),
            &request.body,
            now,
        )?;
    }
    let in_order: Vec<Value> = received[2..]
        .iter()
        .map(|r| r.json().map(|b| b["data"].clone()))
        .collect::<anyhow::Result<_>>()?;
    let published: Vec<Value> = published.into_iter().map(|(_, s)| s).collect();
    assert_eq!(in_order, published);
    let endpoint = app
        .get_json(&token, &format!("/v1/districts/{DISTRICT}/webhooks/{id}"))
        .await?;
    assert_eq!(endpoint["enabled"], true, "{endpoint}");
    assert_eq!(endpoint["failing_since"], Value::Null, "{endpoint}");
    app.stop().await
}

async fn an_endpoint_that_never_answers_is_disabled_and_announced(
    backend: Backend,
) -> anyhow::Result<()> {
    // Each attempt waits 1 s for an answer, a retry comes 3 s later, and an endpoint failing
    // for 3 s is disabled: the first attempt's failure is too young, the second's is not.
    let mut layout = layout("3,3,3,3");
    layout.webhooks.webhook_timeout_secs = Some(1);
    layout.webhooks.webhook_disable_after_secs = Some(3);
    let (app, token) = set_up(backend, layout).await?;
    let silent = Receiver::start(Behaviour::Silent).await?;
    let watcher = Receiver::start(Behaviour::Answer).await?;
    let (id, _) = endpoint(&app, &token, &silent.url, &["job.status"]).await?;
    let (watcher_id, watcher_secret) =
        endpoint(&app, &token, &watcher.url, &["webhook.disabled"]).await?;
    let nats = pictureday_platform::nats_client::NatsAddress::parse(&app.nats_url)
        .connect("test")
        .await?;
    let mut announced = nats
        .subscribe(format!("pictureday.webhook.disabled.{DISTRICT}.>"))
        .await?;

    let job = app
        .import_numbered_photos(&token, DISTRICT, 1, (400, 500))
        .await?;
    app.wait_for_job(&token, DISTRICT, &job).await?;
    let published = statuses_through(&app, &job).await?;
    let path = format!("/v1/districts/{DISTRICT}/webhooks/{id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let disabled = loop {
        let endpoint = app.get_json(&token, &path).await?;
        if endpoint["enabled"] == false {
            break endpoint;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "never disabled: {endpoint}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reason = disabled["disabled_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no answer within 1 s"), "{disabled}");
    assert!(disabled["failing_since"].is_string(), "{disabled}");
    assert!(disabled["disabled_at"].is_string(), "{disabled}");

    // Two attempts of the first delivery, both unanswered; nothing else was tried, and every
    // delivery is abandoned.
    let log = deliveries(&app, &token, &id).await?;
    assert_eq!(log.len(), published.len(), "{log:#?}");
    assert!(log.iter().all(|d| d["state"] == "abandoned"), "{log:#?}");
    let mut expected = vec![Vec::new(); published.len()];
    expected[0] = vec![Value::Null, Value::Null];
    assert_eq!(statuses_of(&log), expected, "{log:#?}");
    for attempt in log[0]["attempts"].as_array().into_iter().flatten() {
        assert_eq!(attempt["error"], "no answer within 1 s", "{attempt}");
    }
    let received = silent.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );

    // The district's endpoint for webhook.disabled was told, signed, and so was the bus.
    let told = wait_for_log(&app, &token, &watcher_id, |log| {
        log.len() == 1 && log[0]["state"] == "delivered"
    })
    .await?;
    assert_eq!(told[0]["event_type"], "webhook.disabled");
    let notices = watcher.received();
    assert_eq!(notices.len(), 1);
    verify(
        &watcher_secret,
        notices[0].header("webhook-id"),
        notices[0].header("webhook-timestamp"),
        notices[0].header("webhook-signature"),
        &notices[0].body,
        chrono::Utc::now().timestamp(),
    )?;
    let notice = notices[0].json()?;
    assert_eq!(notice["type"], "webhook.disabled", "{notice}");
    assert_eq!(notice["data"]["endpoint_id"], id.as_str(), "{notice}");
    assert_eq!(notice["data"]["url"], silent.url.as_str(), "{notice}");
    assert_eq!(notice["data"]["reason"], reason, "{notice}");
    let message = tokio::time::timeout(Duration::from_secs(10), announced.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no webhook.disabled on the bus"))?;
    let event: Value = serde_json::from_slice(&message.payload)?;
    assert_eq!(event["endpoint_id"], id.as_str(), "{event}");
    assert_eq!(event["district"], DISTRICT, "{event}");

    // Enabled again, it starts afresh.
    let enabled = app
        .http
        .post(app.url(&format!("{path}/enable")))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(enabled.status(), 200);
    let enabled: Value = enabled.json().await?;
    assert_eq!(enabled["enabled"], true, "{enabled}");
    assert_eq!(enabled["disabled_reason"], Value::Null, "{enabled}");
    assert_eq!(enabled["failing_since"], Value::Null, "{enabled}");
    app.stop().await
}

async fn loopback_endpoints_are_refused_unless_allowed(backend: Backend) -> anyhow::Result<()> {
    let (app, token) = set_up(backend, AppLayout::default()).await?;
    let receiver = Receiver::start(Behaviour::Answer).await?;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .and_then(|rest| rest.split('/').next());
    let port = port.unwrap_or_default();
    for (url, says) in [
        (receiver.url.clone(), "127.0.0.1, a loopback address"),
        (
            format!("http://localhost:{port}/hooks"),
            "localhost, a loopback address",
        ),
        (
            format!("http://[::1]:{port}/hooks"),
            "::1, a loopback address",
        ),
        (
            "http://10.0.0.7/hooks".to_owned(),
            "10.0.0.7, a private address",
        ),
        (
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "169.254.169.254, a link-local address",
        ),
    ] {
        let (status, refused) = register(
            &app,
            &token,
            json!({ "url": url, "event_types": ["job.status"] }),
        )
        .await?;
        assert_eq!(status, 422, "{url}: {refused}");
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(says) && message.contains("only to public addresses"),
            "{url}: {message}"
        );
    }
    let listed = app
        .get_json(&token, &format!("/v1/districts/{DISTRICT}/webhooks"))
        .await?;
    assert_eq!(listed["items"], json!([]), "{listed}");
    assert!(receiver.received().is_empty());
    app.stop().await
}
