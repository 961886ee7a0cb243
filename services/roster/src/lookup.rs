//! Answers the matcher's lookups over NATS request/reply: each file's identifier, file stem or
//! index row resolved against the district's people by the rules in `matching`. A district's
//! people are indexed once per roster generation and kept for the lookups that follow, so a job
//! of 50,000 files reads the roster once, not 50,000 times.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use pictureday_contract::DistrictId;
use pictureday_contract::events::{LookupRequest, LookupResponse, LookupResult, SCHEMA_VERSION};
use pictureday_contract::subjects::ROSTER_LOOKUP_SUBJECT;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QuerySelect,
};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::db::{person, roster_generation};
use crate::matching::{self, DistrictIndex, PersonRecord};

/// The memory the kept indexes may hold together (a district of 100,000 people takes about
/// 116 MB by `approx_bytes`); the least recently used go first.
const INDEX_MEMORY_BUDGET: usize = 512 * 1024 * 1024;

/// Lookups answered at once by one roster instance: one district's index build does not hold
/// up the others'.
const CONCURRENT_LOOKUPS: usize = 16;

/// Marks a district's roster as changed, inside the transaction that changes it: cached indexes
/// of the district are rebuilt at their next lookup.
pub async fn roster_changed(db: &impl ConnectionTrait, district: &DistrictId) -> Result<(), DbErr> {
    roster_generation::Entity::insert(roster_generation::ActiveModel {
        district_id: Set(district.as_str().to_owned()),
        generation: Set(1),
    })
    .on_conflict(
        OnConflict::column(roster_generation::Column::DistrictId)
            .value(
                roster_generation::Column::Generation,
                Expr::col((
                    roster_generation::Entity,
                    roster_generation::Column::Generation,
                ))
                .add(1),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

struct Cached {
    generation: i64,
    index: Arc<DistrictIndex>,
    /// What the index holds, estimated (`approx_bytes`).
    bytes: usize,
    used: Instant,
}

/// The indexes of recently matched districts, within a memory budget: the least recently used
/// go first, and a district's index is built by one lookup at a time while other districts'
/// lookups go on.
#[derive(Clone)]
pub struct MatchIndexes {
    cache: Arc<std::sync::Mutex<HashMap<String, Cached>>>,
    /// One build lock per district: two batches of one district never build it twice.
    building: Arc<std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>>,
    budget: usize,
}

impl Default for MatchIndexes {
    fn default() -> Self {
        Self::with_budget(INDEX_MEMORY_BUDGET)
    }
}

impl MatchIndexes {
    pub fn with_budget(budget: usize) -> Self {
        Self {
            cache: Arc::default(),
            building: Arc::default(),
            budget,
        }
    }

    /// The district's index as of its current roster generation.
    pub async fn get(
        &self,
        db: &DatabaseConnection,
        district: &str,
    ) -> Result<Arc<DistrictIndex>, DbErr> {
        // The generation is read before the people: a change committed in between makes the
        // index newer than its generation says, which costs one rebuild, never a stale match.
        let generation = roster_generation::Entity::find_by_id(district.to_owned())
            .one(db)
            .await?
            .map_or(0, |g| g.generation);
        if let Some(index) = self.cached(district, generation) {
            return Ok(index);
        }
        let build_lock = lock(&self.building)
            .entry(district.to_owned())
            .or_default()
            .clone();
        let _building = build_lock.lock().await;
        // Another lookup of this district may have built it while this one waited.
        if let Some(index) = self.cached(district, generation) {
            return Ok(index);
        }
        let index = Arc::new(load(db, district).await?);
        self.insert(district, generation, index.clone());
        Ok(index)
    }

    fn cached(&self, district: &str, generation: i64) -> Option<Arc<DistrictIndex>> {
        let mut cache = lock(&self.cache);
        let cached = cache.get_mut(district)?;
        if cached.generation != generation {
            return None;
        }
        cached.used = Instant::now();
        Some(cached.index.clone())
    }

    /// Keeps `index`, then lets the least recently used others go until the budget holds (the
    /// new one stays whatever its size: it is in use).
    fn insert(&self, district: &str, generation: i64, index: Arc<DistrictIndex>) {
        let bytes = approx_bytes(&index);
        let mut cache = lock(&self.cache);
        cache.insert(
            district.to_owned(),
            Cached {
                generation,
                index,
                bytes,
                used: Instant::now(),
            },
        );
        let mut total: usize = cache.values().map(|c| c.bytes).sum();
        while total > self.budget {
            let Some((oldest, freed)) = cache
                .iter()
                .filter(|(d, _)| d.as_str() != district)
                .min_by_key(|(_, c)| c.used)
                .map(|(d, c)| (d.clone(), c.bytes))
            else {
                break;
            };
            cache.remove(&oldest);
            total -= freed;
        }
    }

    /// The districts whose index is kept, and the bytes they hold.
    #[cfg(test)]
    fn kept(&self) -> (usize, usize) {
        let cache = lock(&self.cache);
        (cache.len(), cache.values().map(|c| c.bytes).sum())
    }
}

/// A poisoned lock only means another lookup panicked mid-update of a cache; its contents are
/// still whole maps.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A rough size of an index in memory: its strings plus a fixed cost per person and per entry.
/// It only needs to be proportional, so that many small districts or a few large ones fill
/// the same budget.
pub fn approx_bytes(index: &DistrictIndex) -> usize {
    const PER_ENTRY: usize = 64;
    let people: usize = index
        .people
        .iter()
        .map(|p| {
            std::mem::size_of_val(p)
                + p.id.len()
                + p.display.len()
                + p.ids
                    .iter()
                    .map(|(_, v)| v.len() + PER_ENTRY)
                    .sum::<usize>()
                + p.name_words
                    .iter()
                    .map(|w| w.len() + PER_ENTRY)
                    .sum::<usize>()
                + p.homeroom.as_ref().map_or(0, String::len)
                + p.teacher_words
                    .iter()
                    .map(|w| w.len() + PER_ENTRY)
                    .sum::<usize>()
        })
        .sum();
    let ids: usize = [&index.exact, &index.case_folded, &index.unpadded]
        .iter()
        .flat_map(|map| map.iter())
        .map(|(k, hits)| k.len() + PER_ENTRY + hits.len() * 8)
        .sum();
    let names: usize = index
        .names
        .iter()
        .map(|((last, first), people)| last.len() + first.len() + PER_ENTRY + people.len() * 4)
        .sum();
    people + ids + names
}

/// A person's matching fields.
#[derive(FromQueryResult)]
struct MatchingRow {
    id: String,
    role: crate::roster_csv::Role,
    first_name: String,
    last_name: String,
    preferred_first_name: Option<String>,
    email: Option<String>,
    sis_id: Option<String>,
    student_number: Option<String>,
    state_id: Option<String>,
    staff_id: Option<String>,
    grade: Option<String>,
    homeroom: Option<String>,
    teacher: Option<String>,
    inactive_since: Option<chrono::DateTime<chrono::Utc>>,
}

async fn load(db: &DatabaseConnection, district: &str) -> Result<DistrictIndex, DbErr> {
    let rows: Vec<MatchingRow> = person::Entity::find()
        .select_only()
        .columns([
            person::Column::Id,
            person::Column::Role,
            person::Column::FirstName,
            person::Column::LastName,
            person::Column::PreferredFirstName,
            person::Column::Email,
            person::Column::SisId,
            person::Column::StudentNumber,
            person::Column::StateId,
            person::Column::StaffId,
            person::Column::Grade,
            person::Column::Homeroom,
            person::Column::Teacher,
            person::Column::InactiveSince,
        ])
        .filter(person::Column::DistrictId.eq(district))
        .into_model::<MatchingRow>()
        .all(db)
        .await?;
    Ok(DistrictIndex::build(rows.into_iter().map(|row| {
        PersonRecord {
            id: row.id,
            role: Some(row.role),
            first_name: row.first_name,
            last_name: row.last_name,
            preferred_first_name: row.preferred_first_name,
            email: row.email,
            sis_id: row.sis_id,
            student_number: row.student_number,
            state_id: row.state_id,
            staff_id: row.staff_id,
            grade: row.grade,
            homeroom: row.homeroom,
            teacher: row.teacher,
            inactive_since: row.inactive_since,
        }
    })))
}

pub async fn resolve(
    db: &DatabaseConnection,
    indexes: &MatchIndexes,
    request: &LookupRequest,
) -> Result<Vec<LookupResult>, DbErr> {
    if request.queries.is_empty() {
        // A probe: answering proves a roster instance is up.
        return Ok(Vec::new());
    }
    let index = indexes.get(db, request.district.as_str()).await?;
    Ok(request
        .queries
        .iter()
        .map(|query| matching::resolve(&index, query))
        .collect())
}

/// Answers lookup requests until shutdown. Replicas share the work through a queue group; one
/// instance answers up to `CONCURRENT_LOOKUPS` at once.
pub async fn serve(
    nats: async_nats::Client,
    db: DatabaseConnection,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let indexes = MatchIndexes::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_LOOKUPS));
    let mut requests = nats
        .queue_subscribe(ROSTER_LOOKUP_SUBJECT, "roster".into())
        .await?;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = requests.next() => m,
        };
        let Some(message) = message else {
            anyhow::bail!("lookup subscription ended");
        };
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        let slot = slots.clone().acquire_owned().await?;
        let (nats, db, indexes) = (nats.clone(), db.clone(), indexes.clone());
        tokio::spawn(async move {
            if let Some(response) = answer(&db, &indexes, &message.payload).await
                && let Err(error) = nats.publish(reply, response.into()).await
            {
                tracing::warn!(%error, "could not answer lookup");
            }
            drop(slot);
        });
    }
}

/// The reply to one lookup request, or none: the matcher then times out and asks again, which
/// suits a passing database failure.
async fn answer(
    db: &DatabaseConnection,
    indexes: &MatchIndexes,
    payload: &[u8],
) -> Option<Vec<u8>> {
    match serde_json::from_slice::<LookupRequest>(payload) {
        Ok(request) if request.v == SCHEMA_VERSION => match resolve(db, indexes, &request).await {
            Ok(results) => serde_json::to_vec(&LookupResponse {
                v: SCHEMA_VERSION,
                results,
            })
            .inspect_err(|error| tracing::warn!(%error, "encoding a lookup answer"))
            .ok(),
            Err(error) => {
                tracing::warn!(%error, "roster lookup failed");
                None
            }
        },
        Ok(request) => {
            tracing::warn!(v = request.v, "lookup request of unknown version");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "malformed lookup request");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(people: u32) -> Arc<DistrictIndex> {
        Arc::new(DistrictIndex::build((0..people).map(|n| PersonRecord {
            id: format!("p{n}"),
            role: None,
            first_name: format!("First{n}"),
            last_name: format!("Last{n}"),
            preferred_first_name: None,
            email: Some(format!("s{n}@example.org")),
            sis_id: Some(format!("S{n}")),
            student_number: Some(format!("{n:06}")),
            state_id: None,
            staff_id: None,
            grade: None,
            homeroom: None,
            teacher: None,
            inactive_since: None,
        })))
    }

    #[test]
    fn the_least_recently_used_indexes_go_when_the_budget_is_spent() {
        let (small, large) = (index_of(100), index_of(1000));
        let (small_bytes, large_bytes) = (approx_bytes(&small), approx_bytes(&large));
        assert!(large_bytes > 9 * small_bytes, "{small_bytes} {large_bytes}");
        let indexes = MatchIndexes::with_budget(large_bytes + small_bytes);
        indexes.insert("a", 1, small.clone());
        indexes.insert("b", 1, small.clone());
        assert_eq!(indexes.kept(), (2, 2 * small_bytes));
        // `a` was used last: `b` goes to make room.
        assert!(indexes.cached("a", 1).is_some());
        indexes.insert("c", 1, large.clone());
        assert_eq!(indexes.kept(), (2, small_bytes + large_bytes));
        assert!(indexes.cached("b", 1).is_none());
        assert!(indexes.cached("a", 1).is_some());
        // A newer roster generation is not served from the cache.
        assert!(indexes.cached("a", 2).is_none());
        // An index larger than the whole budget is still kept while it is the one in use.
        let tiny = MatchIndexes::with_budget(1);
        tiny.insert("a", 1, small.clone());
        tiny.insert("c", 1, large);
        assert_eq!(tiny.kept(), (1, large_bytes));
    }
}
