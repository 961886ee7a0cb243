//! Puts one photo in its place for a person, inside the caller's transaction: the one code path
//! for a photo applied as it arrives (`apply`) and for a preview applied later (`preview`).
//!
//! The replace policy is decided in `policy` and enforced by the conditional UPDATE that makes a
//! photo current, whose condition says the same thing: a photo becomes current only if its
//! upload ranks above the current one's and the policy allows it, so there are never two current
//! photos and the newest upload wins whatever order photos arrive in.

use chrono::Utc;
use pictureday_contract::events::{ApplyOutcome, ReplacePolicy};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::db::{person, photo};
use crate::policy::{self, CurrentPhoto, Decision, Skip};

/// The photo being placed.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub photo_id: &'a str,
    pub job_id: &'a str,
    pub upload_rank: &'a str,
}

/// What placing a photo did (or, for a preview, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub outcome: ApplyOutcome,
    /// The photo that was current when it was decided: the one replaced, the newer one that
    /// superseded it, the one a skip kept, or the one a preview would replace.
    pub previous_photo_id: Option<String>,
    /// Why it was skipped, or what applying a preview would do.
    pub note: Option<String>,
}

/// Why a photo cannot be placed for the person it was matched to, as its note says.
pub const PERSON_GONE: &str = "the person it matched is no longer on the roster";

pub fn display_name(person: &person::Model) -> String {
    format!("{} {}", person.first_name, person.last_name)
}

fn as_current(row: &photo::Model) -> CurrentPhoto<'_> {
    CurrentPhoto {
        upload_rank: &row.upload_rank,
        file_name: &row.file_name,
        job_id: &row.job_id,
        stored_at: row.created_at,
    }
}

async fn find_photo(
    txn: &DatabaseTransaction,
    id: Option<&str>,
) -> Result<Option<photo::Model>, DbErr> {
    match id {
        Some(id) => photo::Entity::find_by_id(id.to_owned()).one(txn).await,
        None => Ok(None),
    }
}

/// Applies the photo under `policy`. The caller holds the person's lock (see [`lock_people`]) and
/// stores the photo row with the outcome.
pub async fn apply(
    txn: &DatabaseTransaction,
    person: &person::Model,
    candidate: &Candidate<'_>,
    policy: ReplacePolicy,
) -> Result<Placed, DbErr> {
    let decision = policy::decide(
        policy,
        person.current_photo_rank.as_deref(),
        candidate.job_id,
        candidate.upload_rank,
    );
    let previous = person.current_photo_id.clone();
    if set_current_if_allowed(txn, &person.id, candidate, policy).await? {
        let outcome = match previous {
            None => ApplyOutcome::Applied,
            Some(_) => ApplyOutcome::Replaced,
        };
        return Ok(Placed {
            outcome,
            previous_photo_id: previous,
            note: None,
        });
    }
    let (outcome, note) = match decision {
        Decision::Skip(skip) => {
            let current = find_photo(txn, previous.as_deref()).await?;
            let note = policy::skip_note(
                skip,
                &display_name(person),
                current.as_ref().map(as_current).as_ref(),
            );
            (ApplyOutcome::Skipped, Some(note))
        }
        Decision::Supersede => (ApplyOutcome::Superseded, None),
        // The locked row said it would win and the UPDATE found a newer photo: only possible if
        // someone wrote the person without its lock; the newer photo stays current.
        Decision::Become => {
            tracing::warn!(
                person = %person.id,
                photo = candidate.photo_id,
                "a newer photo appeared while the person was locked"
            );
            (ApplyOutcome::Superseded, None)
        }
    };
    Ok(Placed {
        outcome,
        previous_photo_id: previous,
        note,
    })
}

/// What applying the photo under `policy` would do, changing nothing: the outcome is `previewed`
/// and the note says it.
pub async fn preview(
    txn: &DatabaseTransaction,
    person: &person::Model,
    candidate: &Candidate<'_>,
    policy: ReplacePolicy,
) -> Result<Placed, DbErr> {
    let current = find_photo(txn, person.current_photo_id.as_deref()).await?;
    let decision = policy::decide(
        policy,
        person.current_photo_rank.as_deref(),
        candidate.job_id,
        candidate.upload_rank,
    );
    let note = policy::preview_note(
        decision,
        &display_name(person),
        current.as_ref().map(as_current).as_ref(),
    );
    Ok(Placed {
        outcome: ApplyOutcome::Previewed,
        previous_photo_id: person.current_photo_id.clone(),
        note: Some(note),
    })
}

/// The note of a photo already stored, said again as when it was decided (a redelivered event
/// republishes the same outcome and note). It is rebuilt from the photo that was current then
/// (`previous_photo_id`), not from the person's photo now.
pub async fn note_of(
    txn: &DatabaseTransaction,
    stored: &photo::Model,
    policy: ReplacePolicy,
) -> Result<Option<String>, DbErr> {
    if !matches!(
        stored.outcome,
        ApplyOutcome::Skipped | ApplyOutcome::Previewed
    ) {
        return Ok(None);
    }
    let person = person::Entity::find_by_id(stored.person_id.clone())
        .one(txn)
        .await?;
    let Some(person) = person else {
        return Ok(Some(PERSON_GONE.to_owned()));
    };
    let previous = find_photo(txn, stored.previous_photo_id.as_deref()).await?;
    let current = previous.as_ref().map(as_current);
    let name = display_name(&person);
    Ok(Some(match stored.outcome {
        ApplyOutcome::Skipped => {
            let skip = match stored.previous_photo_id {
                Some(_) => Skip::HasPhoto,
                None => Skip::NoPhoto,
            };
            policy::skip_note(skip, &name, current.as_ref())
        }
        _ => {
            let decision = policy::decide(
                policy,
                current.as_ref().map(|c| c.upload_rank),
                &stored.job_id,
                &stored.upload_rank,
            );
            policy::preview_note(decision, &name, current.as_ref())
        }
    }))
}

/// Which current photo the policy lets this one replace, as a condition on the person's row.
fn replaceable(policy: ReplacePolicy, candidate: &Candidate<'_>) -> Condition {
    let rank = person::Column::CurrentPhotoRank;
    let older = rank.lt(candidate.upload_rank);
    match policy {
        ReplacePolicy::Always => Condition::any().add(rank.is_null()).add(older),
        // No photo, or an older one from this same import (see `policy::decide`): every rank of
        // the job sorts from `<job>/` up.
        ReplacePolicy::MissingOnly => Condition::any().add(rank.is_null()).add(
            Condition::all()
                .add(rank.gte(policy::job_rank_prefix(candidate.job_id)))
                .add(older),
        ),
        ReplacePolicy::ExistingOnly => Condition::all().add(rank.is_not_null()).add(older),
    }
}

/// Makes the photo current if the policy allows it and the person has no newer one; one
/// conditional UPDATE, so concurrent appliers cannot both win.
async fn set_current_if_allowed(
    txn: &DatabaseTransaction,
    person_id: &str,
    candidate: &Candidate<'_>,
    policy: ReplacePolicy,
) -> Result<bool, DbErr> {
    let result = person::Entity::update_many()
        .col_expr(
            person::Column::CurrentPhotoId,
            Expr::value(candidate.photo_id),
        )
        .col_expr(
            person::Column::CurrentPhotoRank,
            Expr::value(candidate.upload_rank),
        )
        .col_expr(person::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(person::Column::Id.eq(person_id))
        .filter(replaceable(policy, candidate))
        .exec(txn)
        .await?;
    Ok(result.rows_affected == 1)
}

const LOCK_CHUNK: usize = 10_000;

/// On PostgreSQL, `SELECT … FOR UPDATE` of these people, in id order, so that transactions
/// placing photos of the same person take turns and never deadlock. SQLite's write transaction
/// already excludes every other writer.
pub async fn lock_people(txn: &DatabaseTransaction, mut ids: Vec<&str>) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    // In chunks (a preview may name more people than a statement takes parameters), still in
    // one global order.
    for chunk in ids.chunks(LOCK_CHUNK) {
        person::Entity::find()
            .select_only()
            .column(person::Column::Id)
            .filter(person::Column::Id.is_in(chunk.iter().copied()))
            .order_by_asc(person::Column::Id)
            .lock_exclusive()
            .into_tuple::<String>()
            .all(txn)
            .await?;
    }
    Ok(())
}
