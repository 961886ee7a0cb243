//! Sends pending deliveries: each endpoint's in order, one at a time (a lease on the endpoint
//! row keeps it so across reporting instances), many endpoints at once. A failed attempt is
//! tried again on the retry schedule and holds back the endpoint's later deliveries until then,
//! so a failing receiver is asked less and less often; after the last retry the delivery has
//! failed. An endpoint failing without a success for longer than the operator allows is
//! disabled: its pending deliveries are abandoned and `webhook.disabled` is announced.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use http_body_util::BodyExt as _;
use pictureday_contract::DistrictId;
use pictureday_contract::events::SCHEMA_VERSION;
use pictureday_platform::bus::Outgoing;
use pictureday_platform::db::write;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, UpdateMany,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::fanout::{insert_pending, pending};
use super::sign::Secret;
use super::{EventType, WebhookDisabled, Webhooks, net, payload};
use crate::db::webhook_delivery::{self, DeliveryState};
use crate::db::{webhook_attempt, webhook_endpoint};

/// How often the sender looks for due deliveries when nothing wakes it (deliveries another
/// instance added, retries coming due).
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// The most deliveries one endpoint is sent before the sender looks at the others again.
const ROUND: usize = 100;
/// How much of an answer's body the log keeps.
const EXCERPT_BYTES: usize = 1024;
/// How long a settled delivery stays in the log: as long as the events it carried are kept.
const KEEP_LOG: chrono::Duration = chrono::Duration::days(30);
/// How often settled deliveries past [`KEEP_LOG`] are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Runs the sender until `shutdown`; deliveries being sent are finished first.
pub async fn run(hooks: Webhooks, shutdown: CancellationToken) -> anyhow::Result<()> {
    let sending = Arc::new(Semaphore::new(hooks.settings.concurrency));
    let state = Arc::new(Mutex::new(Local::default()));
    let tasks = TaskTracker::new();
    let mut pruned: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = hooks.added.notified() => {}
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned = Some(Instant::now());
            if let Err(error) = prune(&hooks.db).await {
                tracing::warn!(%error, "pruning the webhook delivery log");
            }
        }
        let due = match due_endpoints(&hooks).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "looking for due webhook deliveries");
                continue;
            }
        };
        let now = Utc::now();
        for endpoint in due {
            if !lock(&state).may_start(&endpoint, now) {
                continue;
            }
            let Ok(permit) = sending.clone().try_acquire_owned() else {
                break;
            };
            match claim(&hooks, &endpoint).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!(%error, "claiming a webhook endpoint");
                    continue;
                }
            }
            lock(&state).busy.insert(endpoint.clone());
            let (hooks, state, shutdown) = (hooks.clone(), state.clone(), shutdown.clone());
            tasks.spawn(async move {
                let held_back = match send_endpoint(&hooks, &endpoint, &shutdown).await {
                    Ok(until) => until,
                    Err(error) => {
                        tracing::warn!(%error, endpoint, "sending webhook deliveries");
                        Some(Utc::now() + LOOK_EVERY * 2)
                    }
                };
                release(&hooks, &endpoint).await;
                let mut state = lock(&state);
                state.busy.remove(&endpoint);
                match held_back {
                    Some(until) => state.held_back.insert(endpoint, until),
                    None => state.held_back.remove(&endpoint),
                };
                drop(permit);
            });
        }
    }
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// What this instance knows of the endpoints it sends to.
#[derive(Default)]
struct Local {
    /// Endpoints being sent to now.
    busy: HashSet<String>,
    /// Endpoints whose first pending delivery waits for its retry, and until when.
    held_back: HashMap<String, DateTime<Utc>>,
}

impl Local {
    fn may_start(&mut self, endpoint: &str, now: DateTime<Utc>) -> bool {
        if self.busy.contains(endpoint) {
            return false;
        }
        match self.held_back.get(endpoint) {
            Some(until) if *until > now => false,
            Some(_) => {
                self.held_back.remove(endpoint);
                true
            }
            None => true,
        }
    }
}

fn lock(state: &Mutex<Local>) -> std::sync::MutexGuard<'_, Local> {
    // The state is a cache of what the database says: one left by a panicked task is as good.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Deletes settled deliveries (and their attempts) older than [`KEEP_LOG`], a page at a time.
async fn prune(db: &sea_orm::DatabaseConnection) -> Result<(), DbErr> {
    const PAGE: u64 = 1000;
    let before = Utc::now() - KEEP_LOG;
    loop {
        let ids: Vec<String> = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::Id)
            .filter(webhook_delivery::Column::State.ne(DeliveryState::Pending))
            .filter(webhook_delivery::Column::UpdatedAt.lt(before))
            .limit(PAGE)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok(());
        }
        let txn = pictureday_platform::db::begin_write(db).await?;
        webhook_attempt::Entity::delete_many()
            .filter(webhook_attempt::Column::DeliveryId.is_in(ids.iter().map(String::as_str)))
            .exec(&txn)
            .await?;
        webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::Id.is_in(ids.iter().map(String::as_str)))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        if (ids.len() as u64) < PAGE {
            return Ok(());
        }
    }
}

/// Endpoints with a delivery due now.
async fn due_endpoints(hooks: &Webhooks) -> Result<Vec<String>, DbErr> {
    webhook_delivery::Entity::find()
        .select_only()
        .column(webhook_delivery::Column::EndpointId)
        .filter(webhook_delivery::Column::State.eq(DeliveryState::Pending))
        .filter(webhook_delivery::Column::NextAttemptAt.lte(Utc::now()))
        .group_by(webhook_delivery::Column::EndpointId)
        .limit(256)
        .into_tuple::<String>()
        .all(&hooks.db)
        .await
}

/// How long an instance holds an endpoint: longer than any attempt, renewed before each.
fn lease(hooks: &Webhooks) -> chrono::Duration {
    chrono::Duration::from_std(hooks.settings.timeout * 2 + Duration::from_secs(30))
        .unwrap_or(chrono::Duration::minutes(10))
}

/// An update that leases the endpoint to this instance for one lease from `now`; the caller adds
/// the condition it may do so on.
fn lease_from(
    hooks: &Webhooks,
    endpoint: &str,
    now: DateTime<Utc>,
) -> UpdateMany<webhook_endpoint::Entity> {
    webhook_endpoint::Entity::update_many()
        .col_expr(
            webhook_endpoint::Column::LeaseUntil,
            Expr::value(Some(now + lease(hooks))),
        )
        .filter(webhook_endpoint::Column::Id.eq(endpoint))
}

/// Takes the endpoint for this instance unless another holds it.
async fn claim(hooks: &Webhooks, endpoint: &str) -> Result<bool, DbErr> {
    let now = Utc::now();
    let claimed = write(
        &hooks.db,
        lease_from(hooks, endpoint, now)
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .filter(
                Condition::any()
                    .add(webhook_endpoint::Column::LeaseUntil.is_null())
                    .add(webhook_endpoint::Column::LeaseUntil.lt(now)),
            ),
    )
    .await?;
    Ok(claimed == 1)
}

async fn release(hooks: &Webhooks, endpoint: &str) {
    let released = write(
        &hooks.db,
        webhook_endpoint::Entity::update_many()
            .col_expr(
                webhook_endpoint::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(webhook_endpoint::Column::Id.eq(endpoint)),
    )
    .await;
    if let Err(error) = released {
        // The lease runs out by itself.
        tracing::debug!(%error, endpoint, "releasing a webhook endpoint");
    }
}

/// Sends the endpoint's due deliveries in order; returns until when its first pending delivery
/// waits, when it does.
async fn send_endpoint(
    hooks: &Webhooks,
    endpoint_id: &str,
    shutdown: &CancellationToken,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    for _ in 0..ROUND {
        if shutdown.is_cancelled() {
            return Ok(None);
        }
        let Some(endpoint) = webhook_endpoint::Entity::find_by_id(endpoint_id)
            .one(&hooks.db)
            .await?
            .filter(|e| e.enabled)
        else {
            return Ok(None);
        };
        let Some(delivery) = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id))
            .filter(webhook_delivery::Column::State.eq(DeliveryState::Pending))
            .order_by_asc(webhook_delivery::Column::Id)
            .one(&hooks.db)
            .await?
        else {
            return Ok(None);
        };
        let now = Utc::now();
        if let Some(due) = delivery.next_attempt_at
            && due > now
        {
            return Ok(Some(due));
        }
        if !claim_again(hooks, endpoint_id).await? {
            // The lease ran out and another instance took the endpoint.
            return Ok(None);
        }
        let attempt = attempt(hooks, &endpoint, &delivery).await;
        let delivered = attempt.delivered();
        let next = record(hooks, &endpoint, &delivery, attempt).await?;
        if !delivered {
            return Ok(next);
        }
    }
    Ok(None)
}

/// Renews this instance's lease on the endpoint before an attempt.
async fn claim_again(hooks: &Webhooks, endpoint: &str) -> Result<bool, DbErr> {
    let now = Utc::now();
    let renewed = write(
        &hooks.db,
        lease_from(hooks, endpoint, now).filter(webhook_endpoint::Column::LeaseUntil.gt(now)),
    )
    .await?;
    Ok(renewed == 1)
}

/// What one attempt gave.
struct Attempt {
    at: DateTime<Utc>,
    status: Option<u16>,
    error: Option<String>,
    latency: Duration,
    excerpt: Option<String>,
}

impl Attempt {
    fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The attempt's result in a few words, for the reason an endpoint is disabled.
    fn summary(&self) -> String {
        match (&self.status, &self.error) {
            (Some(status), _) => format!("HTTP {status}"),
            (None, Some(error)) => error.clone(),
            (None, None) => "no answer".into(),
        }
    }
}

/// Sends one delivery once.
async fn attempt(
    hooks: &Webhooks,
    endpoint: &webhook_endpoint::Model,
    delivery: &webhook_delivery::Model,
) -> Attempt {
    let at = Utc::now();
    let started = Instant::now();
    let outcome = match request(hooks, endpoint, delivery, at) {
        Err(refused) => Err(refused),
        Ok(request) => {
            let timeout = hooks.settings.timeout;
            let exchange = async {
                let response = hooks.client.request(request).await.map_err(|e| chain(&e))?;
                let status = response.status().as_u16();
                Ok::<_, String>((status, excerpt(response.into_body()).await))
            };
            match tokio::time::timeout(timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
            }
        }
    };
    let latency = started.elapsed();
    match outcome {
        Ok((status, excerpt)) => Attempt {
            at,
            status: Some(status),
            error: None,
            latency,
            excerpt,
        },
        Err(error) => Attempt {
            at,
            status: None,
            error: Some(error),
            latency,
            excerpt: None,
        },
    }
}

/// The signed request, or why it may not be sent.
fn request(
    hooks: &Webhooks,
    endpoint: &webhook_endpoint::Model,
    delivery: &webhook_delivery::Model,
    at: DateTime<Utc>,
) -> Result<hyper::Request<http_body_util::Full<bytes::Bytes>>, String> {
    let uri: hyper::Uri = endpoint
        .url
        .parse()
        .map_err(|e| format!("the endpoint's URL is not valid: {e}"))?;
    if !hooks.settings.allow_private
        && let Some((ip, why)) = literal_internal(&uri)
    {
        return Err(format!(
            "{ip} is {why}; this server sends webhooks only to public addresses"
        ));
    }
    let secret = Secret::parse(&endpoint.secret)
        .map_err(|_| "the endpoint's secret is not valid".to_owned())?;
    let timestamp = at.timestamp();
    let body = bytes::Bytes::from(delivery.payload.clone());
    let signature = secret.sign(&delivery.id, timestamp, &body);
    hyper::Request::post(uri)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "Pictureday-Webhooks/1")
        .header("webhook-id", &delivery.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(http_body_util::Full::new(body))
        .map_err(|e| format!("the request could not be made: {e}"))
}

/// The address a URL names literally, when it is one webhooks are not sent to.
pub(super) fn literal_internal(uri: &hyper::Uri) -> Option<(std::net::IpAddr, &'static str)> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: std::net::IpAddr = host.parse().ok()?;
    net::internal(ip).map(|why| (ip, why))
}

/// An error with its causes, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// The start of a body, at most [`EXCERPT_BYTES`], read no further.
async fn excerpt(mut body: hyper::body::Incoming) -> Option<String> {
    let mut bytes = Vec::new();
    while bytes.len() < EXCERPT_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    if bytes.is_empty() {
        return None;
    }
    bytes.truncate(EXCERPT_BYTES);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    // A character cut in two at the end is dropped rather than shown as a replacement.
    if bytes.len() == EXCERPT_BYTES && text.ends_with('\u{fffd}') {
        text.pop();
    }
    Some(text)
}

/// Records an attempt and what follows from it; returns until when the delivery waits for its
/// retry, when it does.
async fn record(
    hooks: &Webhooks,
    endpoint: &webhook_endpoint::Model,
    delivery: &webhook_delivery::Model,
    attempt: Attempt,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let now = Utc::now();
    let number = delivery.attempts + 1;
    let delivered = attempt.delivered();
    let retry = usize::try_from(delivery.attempts)
        .ok()
        .and_then(|done| hooks.settings.retry_schedule.get(done))
        .and_then(|wait| chrono::Duration::from_std(*wait).ok())
        .map(|wait| now + wait);
    let (state, next_attempt_at) = match (delivered, retry) {
        (true, _) => (DeliveryState::Delivered, None),
        (false, Some(retry)) => (DeliveryState::Pending, Some(retry)),
        (false, None) => (DeliveryState::Failed, None),
    };
    let failing_since = (!delivered).then(|| endpoint.failing_since.unwrap_or(attempt.at));
    let disable = failing_since.filter(|since| {
        (now - *since)
            .to_std()
            .is_ok_and(|failing| failing >= hooks.settings.disable_after)
    });
    let summary = attempt.summary();
    let txn = pictureday_platform::db::begin_write(&hooks.db).await?;
    webhook_attempt::Entity::insert(webhook_attempt::ActiveModel {
        delivery_id: Set(delivery.id.clone()),
        attempt: Set(number),
        endpoint_id: Set(endpoint.id.clone()),
        attempted_at: Set(attempt.at),
        status: Set(attempt.status.map(i32::from)),
        error: Set(attempt.error),
        latency_ms: Set(i64::try_from(attempt.latency.as_millis()).unwrap_or(i64::MAX)),
        response_excerpt: Set(attempt.excerpt),
    })
    .exec_without_returning(&txn)
    .await?;
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::Attempts, Expr::value(number))
        .col_expr(webhook_delivery::Column::State, Expr::value(state))
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(next_attempt_at),
        )
        .col_expr(
            webhook_delivery::Column::LastStatus,
            Expr::value(attempt.status.map(i32::from)),
        )
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_delivery::Column::Id.eq(delivery.id.as_str()))
        .exec(&txn)
        .await?;
    webhook_endpoint::Entity::update_many()
        .col_expr(
            webhook_endpoint::Column::FailingSince,
            Expr::value(failing_since),
        )
        .filter(webhook_endpoint::Column::Id.eq(endpoint.id.as_str()))
        .exec(&txn)
        .await?;
    let announce = match disable {
        Some(since) => disable_endpoint(&txn, endpoint, since, number, &summary, now).await?,
        None => None,
    };
    txn.commit().await?;
    if let Some(event) = announce {
        hooks.added.notify_waiters();
        tracing::warn!(
            endpoint = event.endpoint_id,
            district = %event.district,
            reason = event.reason,
            "webhook endpoint disabled"
        );
        publish_disabled(hooks, &event).await;
        return Ok(None);
    }
    Ok(next_attempt_at)
}

/// Disables the endpoint (unless it was already), abandons its pending deliveries and queues
/// `webhook.disabled` for the district's other endpoints that asked for it.
async fn disable_endpoint(
    txn: &sea_orm::DatabaseTransaction,
    endpoint: &webhook_endpoint::Model,
    failing_since: DateTime<Utc>,
    attempt: i32,
    last: &str,
    now: DateTime<Utc>,
) -> Result<Option<WebhookDisabled>, DbErr> {
    let reason = format!(
        "every delivery failed since {}; the last attempt ({attempt} of its delivery) gave: {last}",
        failing_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let disabled = webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Enabled, Expr::value(false))
        .col_expr(
            webhook_endpoint::Column::DisabledReason,
            Expr::value(Some(reason.clone())),
        )
        .col_expr(webhook_endpoint::Column::DisabledAt, Expr::value(Some(now)))
        .filter(webhook_endpoint::Column::Id.eq(endpoint.id.as_str()))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .exec(txn)
        .await?;
    if disabled.rows_affected != 1 {
        return Ok(None);
    }
    webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::State,
            Expr::value(DeliveryState::Abandoned),
        )
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id.as_str()))
        .filter(webhook_delivery::Column::State.eq(DeliveryState::Pending))
        .exec(txn)
        .await?;
    let Ok(district) = DistrictId::parse(&endpoint.district_id) else {
        return Err(DbErr::Custom(format!(
            "webhook endpoint {} has a bad district",
            endpoint.id
        )));
    };
    let event = WebhookDisabled {
        v: SCHEMA_VERSION,
        district,
        endpoint_id: endpoint.id.clone(),
        url: endpoint.url.clone(),
        reason,
        failing_since,
        disabled_at: now,
    };
    let others = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::DistrictId.eq(endpoint.district_id.as_str()))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .all(txn)
        .await?;
    let body = payload(EventType::WebhookDisabled, now, &event)
        .map_err(|e| DbErr::Custom(format!("encoding a webhook payload: {e}")))?;
    let key = format!(
        "{}:{}:{}",
        EventType::WebhookDisabled.as_str(),
        endpoint.id,
        now.timestamp_millis()
    );
    let rows = others
        .iter()
        .filter(|other| {
            EventType::list_of(&other.event_types).contains(&EventType::WebhookDisabled)
        })
        .map(|other| {
            pending(
                other,
                EventType::WebhookDisabled,
                key.clone(),
                body.clone(),
                now,
            )
        })
        .collect();
    insert_pending(txn, rows).await?;
    Ok(Some(event))
}

/// Announces a disabled endpoint on the bus. The endpoint's state is already stored and the
/// API shows it, so a failure is only logged.
async fn publish_disabled(hooks: &Webhooks, event: &WebhookDisabled) {
    let msg_id = format!(
        "webhook-disabled:{}:{}",
        event.endpoint_id,
        event.disabled_at.timestamp_millis()
    );
    let outgoing = match Outgoing::new(event.subject(), msg_id, event) {
        Ok(outgoing) => outgoing,
        Err(error) => {
            tracing::error!(%error, "could not encode webhook.disabled");
            return;
        }
    };
    if let Err(error) = hooks.bus.publisher.publish(outgoing).await {
        tracing::warn!(%error, "publishing webhook.disabled failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_internal_addresses_are_seen_in_urls() -> anyhow::Result<()> {
        let internal = |url: &str| -> anyhow::Result<Option<&'static str>> {
            Ok(literal_internal(&url.parse()?).map(|(_, why)| why))
        };
        assert_eq!(
            internal("http://127.0.0.1:8080/x")?,
            Some("a loopback address")
        );
        assert_eq!(internal("https://[::1]/x")?, Some("a loopback address"));
        assert_eq!(internal("https://10.0.0.8/x")?, Some("a private address"));
        assert_eq!(internal("https://93.184.215.14/x")?, None);
        assert_eq!(internal("https://hooks.example.com/x")?, None);
        Ok(())
    }

    /// A fresh SQLite database with reporting's schema, and its file.
    async fn database() -> anyhow::Result<(sea_orm::DatabaseConnection, std::path::PathBuf)> {
        let path = std::env::temp_dir().join(format!("webhooks-{}.db", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = pictureday_platform::db::connect(&url).await?;
        pictureday_platform::db::migrate::<crate::db::Migrator>(&db).await?;
        Ok((db, path))
    }

    #[tokio::test]
    async fn an_event_is_delivered_once_and_settled_deliveries_are_pruned() -> anyhow::Result<()> {
        use sea_orm::{ActiveModelTrait as _, IntoActiveModel as _, PaginatorTrait as _};
        let (db, path) = database().await?;
        let now = Utc::now();
        let endpoint = webhook_endpoint::Model {
            id: uuid::Uuid::now_v7().to_string(),
            district_id: "springfield".into(),
            url: "https://hooks.example.com/x".into(),
            event_types: r#"["job.status"]"#.into(),
            secret: Secret::generate().as_str().to_owned(),
            enabled: true,
            disabled_reason: None,
            disabled_at: None,
            failing_since: None,
            created_at: now,
            lease_until: None,
        };
        endpoint.clone().into_active_model().insert(&db).await?;
        // The same event handled twice (a redelivery) is one delivery.
        for _ in 0..2 {
            let row = pending(
                &endpoint,
                EventType::JobStatus,
                "job.status:7".into(),
                "{}".into(),
                now,
            );
            insert_pending(&db, vec![row]).await?;
        }
        let other = pending(
            &endpoint,
            EventType::JobStatus,
            "job.status:8".into(),
            "{}".into(),
            now,
        );
        insert_pending(&db, vec![other]).await?;
        assert_eq!(webhook_delivery::Entity::find().count(&db).await?, 2);

        // Settled a month ago: pruned with its attempts; a pending one is kept however old.
        let old = now - chrono::Duration::days(31);
        let deliveries = webhook_delivery::Entity::find()
            .order_by_asc(webhook_delivery::Column::Id)
            .all(&db)
            .await?;
        for (delivery, state) in deliveries
            .iter()
            .zip([DeliveryState::Delivered, DeliveryState::Pending])
        {
            let mut row = delivery.clone().into_active_model();
            row.state = Set(state);
            row.updated_at = Set(old);
            row.update(&db).await?;
            webhook_attempt::ActiveModel {
                delivery_id: Set(delivery.id.clone()),
                attempt: Set(1),
                endpoint_id: Set(endpoint.id.clone()),
                attempted_at: Set(old),
                status: Set(Some(200)),
                error: Set(None),
                latency_ms: Set(5),
                response_excerpt: Set(None),
            }
            .insert(&db)
            .await?;
        }
        prune(&db).await?;
        let kept = webhook_delivery::Entity::find().all(&db).await?;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].state, DeliveryState::Pending);
        let attempts = webhook_attempt::Entity::find().all(&db).await?;
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].delivery_id, kept[0].id);
        db.close().await?;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        Ok(())
    }

    #[test]
    fn an_endpoint_held_back_or_busy_is_not_started() {
        let mut local = Local::default();
        let now = Utc::now();
        assert!(local.may_start("a", now));
        local.busy.insert("a".into());
        assert!(!local.may_start("a", now));
        local
            .held_back
            .insert("b".into(), now + chrono::Duration::seconds(5));
        assert!(!local.may_start("b", now));
        assert!(local.may_start("b", now + chrono::Duration::seconds(6)));
    }
}
