//! One district's Clever sync: full (schools, then users page by page, then everyone not listed
//! deactivated) or incremental (the events after the saved cursor, each applied once, the
//! cursor moved in the transaction that applies them). Writes go in short transactions of at
//! most a page of events or [`CHUNK`] people, so no other writer waits long on SQLite.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pictureday_contract::DistrictId;
use pictureday_contract::events::{RosterSync, SCHEMA_VERSION};
use pictureday_contract::subjects::roster_sync_subject;
use pictureday_platform::bus::{Outgoing, Publisher};
use pictureday_platform::db::{begin_write, lock_key};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::client::{CleverClient, CleverError, Pacing};
use super::model::{Change, Event, NotAPerson, School, User};
use super::{EVENT_RETENTION_DAYS, MAX_RUN_ERRORS, RunError, RunKind, RunStatus, SOURCE};
use crate::db::person::{self, PersonStatus, RosterSource};
use crate::db::{clever_source, source_event_applied, source_sync_run};
use crate::imports::db_time;
use crate::sources::people::{self, Listing, SourcePerson, SyncCounts};
use crate::sources::schools;
use crate::sources::secret::SecretKey;

/// People applied per transaction.
pub const CHUNK: usize = 1000;
/// How long a claim on a district holds without progress.
pub const LEASE: Duration = Duration::from_secs(60);

/// What every sync of this process shares.
pub struct Syncer {
    pub db: DatabaseConnection,
    pub publisher: Publisher,
    pub keys: Arc<SecretKey>,
    pub pacing: Pacing,
}

/// What a run did so far.
#[derive(Debug, Default)]
pub struct Tally {
    pub counts: SyncCounts,
    pub schools: u64,
    pub errors: Vec<RunError>,
    pub error_count: u64,
    /// Events skipped because they were applied before (a replayed feed).
    pub replayed: u64,
}

impl Tally {
    fn error(&mut self, kind: &str, message: impl Into<String>, record: Option<&str>) {
        self.error_count += 1;
        if self.errors.len() < MAX_RUN_ERRORS {
            self.errors.push(RunError {
                kind: kind.to_owned(),
                message: message.into(),
                record: record.map(str::to_owned),
            });
        }
    }
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Clever(#[from] CleverError),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("the token could not be opened: {0}")]
    Token(String),
    #[error("{0}")]
    Refused(String),
    #[error("this worker no longer holds the district")]
    LostLease,
}

impl SyncError {
    fn kind(&self) -> &'static str {
        match self {
            SyncError::Clever(e) => e.kind(),
            SyncError::Database(_) => "database",
            SyncError::Token(_) => "token",
            SyncError::Refused(_) => "empty_listing",
            SyncError::LostLease => "interrupted",
        }
    }
}

pub fn lease_end(now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::seconds(60))
}

impl Syncer {
    /// Runs `run` (already marked running) for the source, records its end and announces it.
    pub async fn execute(&self, source: &clever_source::Model, run: source_sync_run::Model) {
        let Ok(district) = DistrictId::parse(&source.district_id) else {
            return;
        };
        let mut tally = Tally::default();
        let mut kind = RunKind::parse(&run.kind).unwrap_or(RunKind::Full);
        self.announce(&run, RunStatus::Running, &tally).await;
        let result = self
            .sync(&district, source, &run, &mut kind, &mut tally)
            .await;
        let status = match &result {
            Ok(()) => RunStatus::Finished,
            Err(error) => {
                tracing::warn!(%district, run = %run.id, %error, "Clever sync failed");
                tally.error(error.kind(), error.to_string(), None);
                RunStatus::Failed
            }
        };
        match self.finish(&run, kind, status, &tally).await {
            Ok(finished) => {
                tracing::info!(
                    %district, run = %run.id, kind = kind.as_str(), status = status.as_str(),
                    counts = ?tally.counts, schools = tally.schools, errors = tally.error_count,
                    replayed = tally.replayed, "Clever sync ended"
                );
                self.announce(&finished, status, &tally).await;
            }
            Err(error) => {
                tracing::warn!(%district, run = %run.id, %error, "recording a Clever sync's end")
            }
        }
    }

    async fn sync(
        &self,
        district: &DistrictId,
        source: &clever_source::Model,
        run: &source_sync_run::Model,
        kind: &mut RunKind,
        tally: &mut Tally,
    ) -> Result<(), SyncError> {
        let token = self
            .keys
            .open(district.as_str(), &source.token_sealed)
            .map_err(|e| SyncError::Token(e.to_string()))?;
        let client = CleverClient::new(&source.base_url, &token, self.pacing)?;
        drop(token);
        let stale = !self.cursor_fresh(district).await?;
        let cursor = source.event_cursor.as_deref().filter(|_| !stale);
        if *kind == RunKind::Incremental && cursor.is_none() {
            *kind = RunKind::Full;
            if stale && source.event_cursor.is_some() {
                tally.error(
                    "cursor_expired",
                    format!(
                        "no sync finished in the last {EVENT_RETENTION_DAYS} days: the events feed \
                         no longer goes back to the saved cursor; synced in full"
                    ),
                    None,
                );
            }
        }
        let outcome = match (*kind, cursor) {
            (RunKind::Incremental, Some(cursor)) => {
                match self
                    .incremental(district, &client, cursor, run, tally)
                    .await
                {
                    Err(SyncError::Clever(error @ CleverError::CursorExpired { .. })) => {
                        tally.error(error.kind(), format!("{error}; synced in full"), None);
                        *kind = RunKind::Full;
                        self.set_kind(run, RunKind::Full).await?;
                        self.full(district, &client, run, tally).await
                    }
                    other => other,
                }
            }
            _ => self.full(district, &client, run, tally).await,
        };
        let (limited, retried) = (
            client.rate_limited.load(Ordering::Relaxed),
            client.retried.load(Ordering::Relaxed),
        );
        if limited + retried > 0 {
            tracing::info!(%district, run = %run.id, rate_limited = limited, retried, "Clever sync waited");
        }
        if let Err(error) = self.prune_events(district).await {
            tracing::warn!(%district, %error, "forgetting old applied Clever events");
        }
        outcome
    }

    /// A full sync: schools, users, then deactivation of the Clever people not listed.
    async fn full(
        &self,
        district: &DistrictId,
        client: &CleverClient,
        run: &source_sync_run::Model,
        tally: &mut Tally,
    ) -> Result<(), SyncError> {
        let stamp = db_time(Utc::now());
        // The newest event now: incremental syncs go on from it (what happens during this sync
        // is read again then, and applied over what this sync saw).
        let newest: super::model::Page<Event> = client
            .page(&client.first("events", 1, &[("ending_before", "last")]))
            .await?;
        let cursor = newest
            .data
            .last()
            .map(|e| e.data.id.clone())
            .unwrap_or_default();

        let mut listed_schools = Vec::new();
        let mut uri = Some(client.first("schools", super::client::PAGE_SIZE, &[]));
        while let Some(next) = uri.take() {
            let page: super::model::Page<School> = client.page(&next).await?;
            listed_schools.extend(page.data.iter().map(|s| s.data.to_source()));
            uri = page
                .next()
                .map(str::to_owned)
                .filter(|_| !page.data.is_empty());
        }
        let txn = begin_write(&self.db).await?;
        lock_key(&txn, "clever-sync", district.as_str()).await?;
        let (schools_by_id, _) =
            schools::apply(&txn, district, RosterSource::Clever, &listed_schools, stamp).await?;
        tally.schools = listed_schools.len() as u64;
        txn.commit().await?;

        let mut listed = 0u64;
        let mut uri = Some(client.first("users", super::client::PAGE_SIZE, &[]));
        while let Some(next) = uri.take() {
            let page: super::model::Page<User> = client.page(&next).await?;
            let mut people = Vec::with_capacity(page.data.len());
            let mut skipped = Vec::new();
            for item in &page.data {
                match item.data.to_person() {
                    Ok(person) => people.push(person),
                    Err(NotAPerson::OtherRole) => {}
                    Err(NotAPerson::Unnamed) => {
                        tally.error(
                            "unnamed_user",
                            "a student, teacher or staff member without a first or last name; \
                             skipped (a person already known is left as they are)",
                            Some(&item.data.id),
                        );
                        skipped.push(item.data.id.clone());
                    }
                }
            }
            listed += people.len() as u64;
            if !skipped.is_empty() {
                // Listed, if unreadable: not someone who left.
                pictureday_platform::db::write(
                    &self.db,
                    person::Entity::update_many()
                        .col_expr(person::Column::SourceSeenAt, Expr::value(Some(stamp)))
                        .filter(person::Column::DistrictId.eq(district.as_str()))
                        .filter(person::Column::Source.eq(RosterSource::Clever))
                        .filter(person::Column::SourceId.is_in(skipped)),
                )
                .await?;
            }
            while !people.is_empty() {
                let rest = people.split_off(people.len().min(CHUNK));
                let chunk = std::mem::replace(&mut people, rest);
                self.apply_chunk(district, run, chunk, &schools_by_id, stamp, tally)
                    .await?;
            }
            uri = page
                .next()
                .map(str::to_owned)
                .filter(|_| !page.data.is_empty());
        }

        let txn = begin_write(&self.db).await?;
        lock_key(&txn, "clever-sync", district.as_str()).await?;
        if listed == 0 {
            let active = person::Entity::find()
                .filter(person::Column::DistrictId.eq(district.as_str()))
                .filter(person::Column::Source.eq(RosterSource::Clever))
                .filter(person::Column::Status.eq(PersonStatus::Active))
                .count(&txn)
                .await?;
            if active > 0 {
                return Err(SyncError::Refused(format!(
                    "Clever listed no students, teachers or staff; the district's {active} \
                     Clever people were left as they are"
                )));
            }
        }
        tally.counts.deactivated +=
            people::deactivate_unseen(&txn, district, RosterSource::Clever, stamp).await?;
        clever_source::Entity::update_many()
            .col_expr(
                clever_source::Column::EventCursor,
                Expr::value(Some(cursor)),
            )
            .col_expr(
                clever_source::Column::LastFullSyncAt,
                Expr::value(Some(stamp)),
            )
            .filter(clever_source::Column::DistrictId.eq(district.as_str()))
            .exec(&txn)
            .await?;
        progress(&txn, run, tally).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn apply_chunk(
        &self,
        district: &DistrictId,
        run: &source_sync_run::Model,
        chunk: Vec<SourcePerson>,
        schools_by_id: &HashMap<String, crate::db::school::Model>,
        stamp: DateTime<Utc>,
        tally: &mut Tally,
    ) -> Result<(), SyncError> {
        let txn = begin_write(&self.db).await?;
        lock_key(&txn, "clever-sync", district.as_str()).await?;
        let counts = people::apply(
            &txn,
            district,
            RosterSource::Clever,
            chunk,
            schools_by_id,
            Listing::Complete,
            stamp,
        )
        .await?;
        tally.counts.add(counts);
        progress(&txn, run, tally).await?;
        renew(&txn, district).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The events after `cursor` (empty: the feed's start), a page per transaction.
    async fn incremental(
        &self,
        district: &DistrictId,
        client: &CleverClient,
        cursor: &str,
        run: &source_sync_run::Model,
        tally: &mut Tally,
    ) -> Result<(), SyncError> {
        let query: Vec<(&str, &str)> = if cursor.is_empty() {
            Vec::new()
        } else {
            vec![("starting_after", cursor)]
        };
        let mut uri = Some(client.first("events", super::client::PAGE_SIZE, &query));
        while let Some(next) = uri.take() {
            let page: super::model::Page<Event> = client.page(&next).await?;
            let Some(last) = page.data.last().map(|e| e.data.id.clone()) else {
                break;
            };
            let stamp = db_time(Utc::now());
            let txn = begin_write(&self.db).await?;
            lock_key(&txn, "clever-sync", district.as_str()).await?;
            let ids: Vec<&str> = page.data.iter().map(|e| e.data.id.as_str()).collect();
            let mut done: HashSet<String> = source_event_applied::Entity::find()
                .select_only()
                .column(source_event_applied::Column::EventId)
                .filter(source_event_applied::Column::DistrictId.eq(district.as_str()))
                .filter(source_event_applied::Column::EventId.is_in(ids))
                .into_tuple::<String>()
                .all(&txn)
                .await?
                .into_iter()
                .collect();
            let mut schools_by_id =
                schools::of_source(&txn, district, RosterSource::Clever).await?;
            let mut applied = Vec::new();
            for item in &page.data {
                let event = &item.data;
                if !done.insert(event.id.clone()) {
                    tally.replayed += 1;
                    continue;
                }
                self.apply_event(&txn, district, event, &mut schools_by_id, stamp, tally)
                    .await?;
                applied.push(source_event_applied::ActiveModel {
                    district_id: Set(district.as_str().to_owned()),
                    event_id: Set(event.id.clone()),
                    applied_at: Set(stamp),
                });
            }
            if !applied.is_empty() {
                source_event_applied::Entity::insert_many(applied)
                    .on_conflict_do_nothing_on([
                        source_event_applied::Column::DistrictId,
                        source_event_applied::Column::EventId,
                    ])
                    .exec_without_returning(&txn)
                    .await?;
            }
            // The cursor moves with the changes it covers: committed together or not at all.
            clever_source::Entity::update_many()
                .col_expr(clever_source::Column::EventCursor, Expr::value(Some(last)))
                .filter(clever_source::Column::DistrictId.eq(district.as_str()))
                .exec(&txn)
                .await?;
            progress(&txn, run, tally).await?;
            renew(&txn, district).await?;
            txn.commit().await?;
            uri = page.next().map(str::to_owned);
        }
        Ok(())
    }

    async fn apply_event(
        &self,
        txn: &impl ConnectionTrait,
        district: &DistrictId,
        event: &Event,
        schools_by_id: &mut HashMap<String, crate::db::school::Model>,
        stamp: DateTime<Utc>,
        tally: &mut Tally,
    ) -> Result<(), SyncError> {
        let change = match event.change() {
            Ok(change) => change,
            Err(message) => {
                tally.error("unreadable_event", message, Some(&event.id));
                return Ok(());
            }
        };
        match change {
            Change::UserUpserted(user) => match user.to_person() {
                Ok(person) => {
                    let counts = people::apply(
                        txn,
                        district,
                        RosterSource::Clever,
                        vec![person],
                        schools_by_id,
                        Listing::Changes,
                        stamp,
                    )
                    .await?;
                    tally.counts.add(counts);
                }
                Err(NotAPerson::OtherRole) => {
                    // No longer a student, teacher or staff member (a contact only): as if
                    // deleted, if they were a person.
                    tally.counts.deactivated += people::deactivate(
                        txn,
                        district,
                        RosterSource::Clever,
                        std::slice::from_ref(&user.id),
                        stamp,
                    )
                    .await?;
                }
                Err(NotAPerson::Unnamed) => tally.error(
                    "unnamed_user",
                    "a student, teacher or staff member without a first or last name; skipped",
                    Some(&user.id),
                ),
            },
            Change::UserDeleted(id) => {
                tally.counts.deactivated +=
                    people::deactivate(txn, district, RosterSource::Clever, &[id], stamp).await?;
            }
            Change::SchoolUpserted(school) => {
                let (all, _) = schools::apply(
                    txn,
                    district,
                    RosterSource::Clever,
                    &[school.to_source()],
                    stamp,
                )
                .await?;
                *schools_by_id = all;
                tally.schools += 1;
            }
            Change::SchoolDeleted(_) => tally.schools += 1,
            Change::Ignored => {}
        }
        Ok(())
    }

    /// Whether a sync of the district finished within the feed's retention: otherwise the
    /// saved cursor is older than the events Clever still has.
    async fn cursor_fresh(&self, district: &DistrictId) -> Result<bool, DbErr> {
        let last = source_sync_run::Entity::find()
            .filter(source_sync_run::Column::DistrictId.eq(district.as_str()))
            .filter(source_sync_run::Column::Source.eq(SOURCE))
            .filter(source_sync_run::Column::Status.eq(RunStatus::Finished.as_str()))
            .order_by_desc(source_sync_run::Column::FinishedAt)
            .one(&self.db)
            .await?;
        let horizon = Utc::now() - chrono::Duration::days(EVENT_RETENTION_DAYS);
        Ok(last
            .and_then(|r| r.finished_at)
            .is_some_and(|at| at > horizon))
    }

    /// Forgets applied events the feed no longer has.
    async fn prune_events(&self, district: &DistrictId) -> Result<(), DbErr> {
        let horizon = Utc::now() - chrono::Duration::days(EVENT_RETENTION_DAYS + 1);
        pictureday_platform::db::write(
            &self.db,
            source_event_applied::Entity::delete_many()
                .filter(source_event_applied::Column::DistrictId.eq(district.as_str()))
                .filter(source_event_applied::Column::AppliedAt.lt(horizon)),
        )
        .await?;
        Ok(())
    }

    async fn set_kind(&self, run: &source_sync_run::Model, kind: RunKind) -> Result<(), DbErr> {
        pictureday_platform::db::write(
            &self.db,
            source_sync_run::Entity::update_many()
                .col_expr(source_sync_run::Column::Kind, Expr::value(kind.as_str()))
                .filter(source_sync_run::Column::Id.eq(run.id.as_str())),
        )
        .await?;
        Ok(())
    }

    async fn finish(
        &self,
        run: &source_sync_run::Model,
        kind: RunKind,
        status: RunStatus,
        tally: &Tally,
    ) -> Result<source_sync_run::Model, DbErr> {
        let txn = begin_write(&self.db).await?;
        let mut model: source_sync_run::ActiveModel = run.clone().into();
        model.kind = Set(kind.as_str().to_owned());
        model.status = Set(status.as_str().to_owned());
        model.finished_at = Set(Some(db_time(Utc::now())));
        set_counts(&mut model, tally);
        let finished = source_sync_run::Entity::update(model).exec(&txn).await?;
        txn.commit().await?;
        Ok(finished)
    }

    /// Publishes the run's `roster.sync` event; a lost one is only logged (the run is recorded).
    async fn announce(&self, run: &source_sync_run::Model, status: RunStatus, tally: &Tally) {
        let Ok(district) = DistrictId::parse(&run.district_id) else {
            return;
        };
        let event = RosterSync {
            v: SCHEMA_VERSION,
            district: district.clone(),
            run_id: run.id.clone(),
            source: SOURCE.to_owned(),
            kind: run.kind.clone(),
            trigger: run.trigger.clone(),
            status: status.as_str().to_owned(),
            at: Utc::now(),
            created: tally.counts.created,
            updated: tally.counts.updated,
            deactivated: tally.counts.deactivated,
            reactivated: tally.counts.reactivated,
            unchanged: tally.counts.unchanged,
            schools: tally.schools,
            error_count: tally.error_count,
        };
        let outgoing = Outgoing::new(
            roster_sync_subject(&district, &run.id),
            format!("sync:{}:{}", run.id, status.as_str()),
            &event,
        );
        let published = match outgoing {
            Ok(outgoing) => self
                .publisher
                .publish(outgoing)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = published {
            tracing::warn!(district = %run.district_id, run = %run.id, %error, "could not announce a Clever sync");
        }
    }
}

fn set_counts(model: &mut source_sync_run::ActiveModel, tally: &Tally) {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    model.created = Set(n(tally.counts.created));
    model.updated = Set(n(tally.counts.updated));
    model.deactivated = Set(n(tally.counts.deactivated));
    model.reactivated = Set(n(tally.counts.reactivated));
    model.unchanged = Set(n(tally.counts.unchanged));
    model.schools = Set(n(tally.schools));
    model.error_count = Set(n(tally.error_count));
    model.errors = Set(serde_json::to_string(&tally.errors).unwrap_or_else(|_| "[]".into()));
}

/// The run's counts so far, for whoever looks while it runs.
async fn progress(
    txn: &impl ConnectionTrait,
    run: &source_sync_run::Model,
    tally: &Tally,
) -> Result<(), DbErr> {
    let mut fresh = source_sync_run::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(run.id.clone()),
        ..Default::default()
    };
    set_counts(&mut fresh, tally);
    source_sync_run::Entity::update(fresh).exec(txn).await?;
    Ok(())
}

/// Keeps the district's claim while the run makes progress.
async fn renew(txn: &impl ConnectionTrait, district: &DistrictId) -> Result<(), DbErr> {
    clever_source::Entity::update_many()
        .col_expr(
            clever_source::Column::LeaseUntil,
            Expr::value(Some(lease_end(db_time(Utc::now())))),
        )
        .filter(clever_source::Column::DistrictId.eq(district.as_str()))
        .exec(txn)
        .await?;
    Ok(())
}

/// Every queued run of a source whose row a claim found, oldest first.
pub async fn queued_runs(
    db: &impl ConnectionTrait,
    district: &str,
) -> Result<Vec<source_sync_run::Model>, DbErr> {
    source_sync_run::Entity::find()
        .filter(source_sync_run::Column::DistrictId.eq(district))
        .filter(source_sync_run::Column::Source.eq(SOURCE))
        .filter(source_sync_run::Column::Status.eq(RunStatus::Queued.as_str()))
        .order_by_asc(source_sync_run::Column::RequestedAt)
        .order_by_asc(source_sync_run::Column::Id)
        .all(db)
        .await
}
