//! The matcher: resolves each ingested file to a person, by the upload's mapping CSV or by the
//! file's name, asking the roster service in batches.

mod keys;

use std::collections::BTreeMap;
use std::time::Duration;

use pictureday_contract::DistrictId;
use pictureday_contract::events::{
    self, DecodeError, Dependency, LookupRequest, LookupResponse, LookupResult, PhotoIngested,
    PhotoMatched, PhotoUnmatched, SCHEMA_VERSION,
};
use pictureday_contract::subjects::{Kind, ROSTER_LOOKUP_SUBJECT, consumers};
use pictureday_platform::Connections;
use pictureday_platform::bus::{Bus, BusError, Outgoing};
use pictureday_platform::runtime::{Component, Dependency as Needs};
use pictureday_platform::stage::{self, Failure, Handled, Incoming, Stage};
use tokio_util::sync::CancellationToken;

pub use keys::{MatchKey, match_key};

const MAX_BATCH: usize = 500;
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);

/// The matcher needs only the bus: it asks roster rather than reading its tables.
pub async fn component(
    connections: &Connections,
    shutdown: &CancellationToken,
) -> anyhow::Result<Component> {
    let bus = connections.bus().await?;
    let (matcher, shutdown) = (Matcher { bus: bus.clone() }, shutdown.clone());
    Ok(Component::new("matcher")
        .worker("match", move || {
            let (matcher, shutdown) = (matcher.clone(), shutdown.clone());
            async move { stage::run_batched(&matcher, &matcher.bus, MAX_BATCH, shutdown).await }
        })
        .depends_on(Needs::Nats(bus)))
}

#[derive(Clone)]
struct Matcher {
    bus: Bus,
}

impl Stage for Matcher {
    type Event = PhotoIngested;
    const CONSUMER: &'static str = consumers::MATCHER;
    const SPAN: &'static str = "matcher.match";

    fn decode(&self, subject: &str, payload: &[u8]) -> Result<PhotoIngested, DecodeError> {
        events::decode(subject, payload)
    }

    fn rejection(&self, event: &PhotoIngested, reason: String) -> Option<Outgoing> {
        Outgoing::rejection_of(consumers::MATCHER, &event.file, None, reason)
    }

    async fn probe(&self, _dependency: Dependency) -> bool {
        // An empty lookup touches no table: it asks whether a roster instance answers.
        let Ok(district) = DistrictId::parse("probe") else {
            return false;
        };
        lookup(&self.bus, &district, Vec::new()).await.is_ok()
    }

    async fn handle(&self, batch: &[Incoming<PhotoIngested>]) -> Vec<Handled> {
        let mut results: Vec<Option<Handled>> = (0..batch.len()).map(|_| None).collect();
        // Files needing a lookup, by district: (index in batch, key).
        let mut lookups: BTreeMap<&DistrictId, Vec<(usize, String)>> = BTreeMap::new();
        for (i, incoming) in batch.iter().enumerate() {
            let event = &incoming.event;
            match match_key(event) {
                MatchKey::Lookup(key) => lookups
                    .entry(&event.file.district)
                    .or_default()
                    .push((i, key)),
                MatchKey::Unmatchable(reason) => {
                    results[i] = Some(
                        incoming
                            .span
                            .in_scope(|| produced(unmatched(event, reason))),
                    );
                }
            }
        }
        for (district, files) in lookups {
            let keys: Vec<String> = files.iter().map(|(_, key)| key.clone()).collect();
            match lookup(&self.bus, district, keys).await {
                Ok(found) => {
                    for ((i, key), result) in files.into_iter().zip(found) {
                        let incoming = &batch[i];
                        results[i] = Some(
                            incoming
                                .span
                                .in_scope(|| produced(outcome(&incoming.event, &key, result))),
                        );
                    }
                }
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), %district, "roster lookup failed");
                    for (i, _) in files {
                        results[i] = Some(Err(Failure::Unavailable(
                            Dependency::Roster,
                            anyhow::anyhow!("{error:#}"),
                        )));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Ok(Vec::new())))
            .collect()
    }
}

/// An event to publish, or (should it not encode) the reason it could not be made.
fn produced(event: Result<Outgoing, BusError>) -> Handled {
    event
        .map(|e| vec![e])
        .map_err(|e| Failure::Permanent(format!("its outcome could not be recorded: {e}")))
}

async fn lookup(
    bus: &Bus,
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
        bus.nats.request(ROSTER_LOOKUP_SUBJECT, request.into()),
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

fn outcome(event: &PhotoIngested, key: &str, result: LookupResult) -> Result<Outgoing, BusError> {
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

fn unmatched(event: &PhotoIngested, reason: String) -> Result<Outgoing, BusError> {
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
