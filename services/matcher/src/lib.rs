//! The matcher: resolves each ingested file to a person, by the upload's mapping CSV or by the
//! file's name, asking the roster service in batches.

mod keys;

use std::collections::BTreeMap;
use std::time::Duration;

use pictureday_shared::bus::{
    self, Delivery, Disposition, Kind, Outgoing, ROSTER_LOOKUP_SUBJECT, consumers,
};
use pictureday_shared::events::{
    LookupRequest, LookupResponse, LookupResult, PhotoIngested, PhotoMatched, PhotoRejected,
    PhotoUnmatched, SCHEMA_VERSION,
};
use pictureday_shared::runtime::Component;
use pictureday_shared::{Context, DistrictId};
use tokio_util::sync::CancellationToken;

pub use keys::{MatchKey, match_key};

const MAX_BATCH: usize = 500;
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);

pub fn component(ctx: &Context, shutdown: &CancellationToken) -> anyhow::Result<Component> {
    let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
    Ok(Component::new("matcher").worker("match", move || run(ctx.clone(), shutdown.clone())))
}

pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    bus::consume_batches(
        &ctx.js,
        &ctx.settings.topology,
        consumers::MATCHER,
        MAX_BATCH,
        shutdown,
        |batch| match_batch(&ctx, batch),
    )
    .await
}

async fn match_batch(ctx: &Context, batch: Vec<Delivery>) -> Vec<Disposition> {
    let mut dispositions: Vec<Disposition> = batch.iter().map(|_| Disposition::Ack).collect();
    let mut outgoing = Vec::with_capacity(batch.len());
    // Files needing a lookup, by district: (index in batch, event, key, the file's span).
    let mut lookups: BTreeMap<DistrictId, Vec<Pending>> = BTreeMap::new();
    for (i, delivery) in batch.iter().enumerate() {
        let event: PhotoIngested = match delivery.decode() {
            Ok(e) => e,
            Err(error) => {
                tracing::error!(%error, subject = %delivery.message.subject, "undecodable ingested event; dropped");
                continue;
            }
        };
        let span = delivery.span("matcher.match");
        match match_key(&event) {
            MatchKey::Lookup(key) => lookups
                .entry(event.file.district.clone())
                .or_default()
                .push((i, event, key, span)),
            MatchKey::Unmatchable(reason) => {
                push(&mut outgoing, span.in_scope(|| unmatched(&event, reason)))
            }
        }
    }
    for (district, files) in lookups {
        let keys: Vec<String> = files.iter().map(|(_, _, key, _)| key.clone()).collect();
        match lookup(ctx, &district, keys).await {
            Ok(results) => {
                for ((_, event, key, span), result) in files.iter().zip(results) {
                    push(&mut outgoing, span.in_scope(|| outcome(event, key, result)));
                }
            }
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), %district, "roster lookup failed");
                for (i, event, _, span) in &files {
                    if batch[*i].is_last_attempt() {
                        push(&mut outgoing, span.in_scope(|| given_up(event, &error)));
                    } else {
                        dispositions[*i] = Disposition::Retry(batch[*i].retry_delay());
                    }
                }
            }
        }
    }
    if let Err(error) = ctx.publisher.publish_all(outgoing).await {
        tracing::warn!(%error, "publishing match results failed; will retry");
        return batch
            .iter()
            .map(|d| Disposition::Retry(d.retry_delay()))
            .collect();
    }
    dispositions
}

/// A file waiting for its roster lookup.
type Pending = (usize, PhotoIngested, String, tracing::Span);

fn push(outgoing: &mut Vec<Outgoing>, event: Result<Outgoing, bus::BusError>) {
    match event {
        Ok(event) => outgoing.push(event),
        Err(error) => tracing::error!(%error, "could not encode event"),
    }
}

async fn lookup(
    ctx: &Context,
    district: &DistrictId,
    keys: Vec<String>,
) -> anyhow::Result<Vec<LookupResult>> {
    let expected = keys.len();
    let request = serde_json::to_vec(&LookupRequest {
        v: SCHEMA_VERSION,
        district: district.clone(),
        keys,
    })?;
    let reply = tokio::time::timeout(
        LOOKUP_TIMEOUT,
        ctx.nats.request(ROSTER_LOOKUP_SUBJECT, request.into()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("roster did not answer within {LOOKUP_TIMEOUT:?}"))??;
    let response: LookupResponse = serde_json::from_slice(&reply.payload)?;
    anyhow::ensure!(
        response.results.len() == expected,
        "roster answered {} results for {expected} keys",
        response.results.len()
    );
    Ok(response.results)
}

fn describe_key(event: &PhotoIngested, key: &str) -> String {
    let what = if key.contains('@') {
        format!("email {key}")
    } else {
        format!("student number, SIS id or email {key}")
    };
    match &event.mapped_key {
        Some(mapped) => format!("{what} (mapping row {})", mapped.row),
        None => what,
    }
}

fn outcome(
    event: &PhotoIngested,
    key: &str,
    result: LookupResult,
) -> Result<Outgoing, bus::BusError> {
    let file = &event.file;
    match result {
        LookupResult::Found {
            person_id,
            matched_by,
        } => Outgoing::new(
            Kind::Matched.subject(&file.district, &file.job_id),
            file.msg_id("matched"),
            &PhotoMatched {
                v: SCHEMA_VERSION,
                file: file.clone(),
                source: event.source.clone(),
                person_id,
                matched_by,
                key: key.to_owned(),
            },
        ),
        LookupResult::NotFound => unmatched(
            event,
            format!("no person with {}", describe_key(event, key)),
        ),
        LookupResult::Ambiguous { matched_by, count } => unmatched(
            event,
            format!(
                "{count} people have {} {key}; make it unique in the roster or use a mapping CSV",
                matched_by.describe()
            ),
        ),
    }
}

fn unmatched(event: &PhotoIngested, reason: String) -> Result<Outgoing, bus::BusError> {
    let file = &event.file;
    Outgoing::new(
        Kind::Unmatched.subject(&file.district, &file.job_id),
        file.msg_id("unmatched"),
        &PhotoUnmatched {
            v: SCHEMA_VERSION,
            file: file.clone(),
            reason,
        },
    )
}

fn given_up(event: &PhotoIngested, error: &anyhow::Error) -> Result<Outgoing, bus::BusError> {
    PhotoRejected::outgoing(
        consumers::MATCHER,
        &event.file,
        None,
        format!(
            "could not be matched: the roster did not answer after {} attempts ({error})",
            bus::MAX_DELIVER
        ),
    )
}
