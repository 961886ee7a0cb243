//! The matcher: resolves each ingested file to a person — the one it was uploaded for, or by the
//! upload's mapping CSV, photographer's index or the file's name — asking the roster service in
//! batches.

mod keys;

use std::collections::BTreeMap;
use std::time::Duration;

use pictureday_contract::DistrictId;
use pictureday_contract::events::{
    self, DecodeError, Dependency, LookupRequest, LookupResponse, LookupResult, MatchQuery,
    PhotoIngested, PhotoMatched, PhotoUnmatched, SCHEMA_VERSION,
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
        // Files needing a lookup, by district: (index in batch, query).
        let mut lookups: BTreeMap<&DistrictId, Vec<(usize, MatchQuery)>> = BTreeMap::new();
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
            let queries: Vec<MatchQuery> = files.iter().map(|(_, q)| q.clone()).collect();
            match lookup(&self.bus, district, queries).await {
                Ok(found) => {
                    for ((i, query), result) in files.into_iter().zip(found) {
                        let incoming = &batch[i];
                        results[i] = Some(
                            incoming
                                .span
                                .in_scope(|| produced(outcome(&incoming.event, &query, result))),
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
    queries: Vec<MatchQuery>,
) -> anyhow::Result<Vec<LookupResult>> {
    let expected = queries.len();
    let request = serde_json::to_vec(&LookupRequest {
        v: SCHEMA_VERSION,
        district: district.clone(),
        queries,
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
        "roster answered {} results for {expected} queries",
        response.results.len()
    );
    Ok(response.results)
}

/// What the file was matched by, as its log row and `photo.matched` show it.
fn key_of(query: &MatchQuery) -> String {
    match query {
        MatchQuery::Identifier { value, .. } => value.clone(),
        MatchQuery::Name(entry) => format!("{} {}", entry.first_name, entry.last_name),
        MatchQuery::Person { person_id } => person_id.to_string(),
    }
}

/// The roster's reason, with where the evidence came from when that was not the file name.
fn located(event: &PhotoIngested, query: &MatchQuery, reason: String) -> String {
    match (query, &event.mapped_key) {
        (MatchQuery::Identifier { .. }, Some(mapped)) => {
            format!("mapping row {}: {reason}", mapped.row)
        }
        (MatchQuery::Name(entry), _) => format!("{} row {}: {reason}", entry.index, entry.row),
        _ => reason,
    }
}

fn outcome(
    event: &PhotoIngested,
    query: &MatchQuery,
    result: LookupResult,
) -> Result<Outgoing, BusError> {
    let file = &event.file;
    match result {
        LookupResult::Found {
            person_id,
            matched_by,
        } => Outgoing::new(
            Kind::Matched.subject(&file.district, &file.job_id),
            file.msg_id("matched"),
            &PhotoMatched {
                // Version 3 when the file was chosen for its person: its `matched_by` is one a
                // version-2 reader does not know.
                v: PhotoIngested::version_for(event.chosen_person.as_ref()),
                file: file.clone(),
                source: event.source.clone(),
                person_id,
                matched_by,
                key: key_of(query),
                options: event.options,
            },
        ),
        LookupResult::Unmatched { reason } => unmatched(event, located(event, query, reason)),
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
