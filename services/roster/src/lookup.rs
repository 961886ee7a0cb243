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

/// Districts whose index is kept; the least recently used goes first.
const CACHED_DISTRICTS: usize = 32;

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
    used: Instant,
}

/// The indexes of recently matched districts.
#[derive(Clone, Default)]
pub struct MatchIndexes {
    // One lock for reading and building: two batches of one district never build it twice.
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl MatchIndexes {
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
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.get_mut(district)
            && cached.generation == generation
        {
            cached.used = Instant::now();
            return Ok(cached.index.clone());
        }
        let index = Arc::new(load(db, district).await?);
        if cache.len() >= CACHED_DISTRICTS
            && !cache.contains_key(district)
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(d, _)| d.clone())
        {
            cache.remove(&oldest);
        }
        cache.insert(
            district.to_owned(),
            Cached {
                generation,
                index: index.clone(),
                used: Instant::now(),
            },
        );
        Ok(index)
    }
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

/// Answers lookup requests until shutdown. Replicas share the work through a queue group.
pub async fn serve(
    nats: async_nats::Client,
    db: DatabaseConnection,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let indexes = MatchIndexes::default();
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
        let response = match serde_json::from_slice::<LookupRequest>(&message.payload) {
            Ok(request) if request.v == SCHEMA_VERSION => {
                match resolve(&db, &indexes, &request).await {
                    Ok(results) => serde_json::to_vec(&LookupResponse {
                        v: SCHEMA_VERSION,
                        results,
                    })?,
                    Err(error) => {
                        // No reply: the matcher times out and retries, which suits a passing
                        // database failure.
                        tracing::warn!(%error, "roster lookup failed");
                        continue;
                    }
                }
            }
            Ok(request) => {
                tracing::warn!(v = request.v, "lookup request of unknown version");
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "malformed lookup request");
                continue;
            }
        };
        if let Err(error) = nats.publish(reply, response.into()).await {
            tracing::warn!(%error, "could not answer lookup");
        }
    }
}
