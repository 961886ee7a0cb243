//! Applies processed photos to people: the newest upload becomes a person's photo, older ones are
//! kept as versions. Idempotent on the photo id, so redelivery republishes the same outcome.

use chrono::Utc;
use pictureday_contract::events::{
    self, ApplyOutcome, DecodeError, Dependency, PhotoApplied, PhotoProcessed, SCHEMA_VERSION,
};
use pictureday_contract::ids::upload_rank;
use pictureday_contract::subjects::{Kind, consumers};
use pictureday_platform::bus::{Bus, Outgoing};
use pictureday_platform::db::begin_write;
use pictureday_platform::stage::{Failure, Handled, Incoming, Stage};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tracing::Instrument;

use crate::db::{person, photo};

pub const MAX_BATCH: usize = 256;

/// The roster's consumer of processed photos.
pub struct Apply {
    pub db: DatabaseConnection,
    pub bus: Bus,
}

impl Stage for Apply {
    type Event = PhotoProcessed;
    const CONSUMER: &'static str = consumers::ROSTER;
    const SPAN: &'static str = "roster.apply";

    fn decode(&self, subject: &str, payload: &[u8]) -> Result<PhotoProcessed, DecodeError> {
        events::decode(subject, payload)
    }

    fn rejection(&self, event: &PhotoProcessed, reason: String) -> Option<Outgoing> {
        Outgoing::rejection_of(
            consumers::ROSTER,
            &event.file,
            Some(event.person_id.clone()),
            reason,
        )
    }

    async fn probe(&self, _dependency: Dependency) -> bool {
        pictureday_platform::db::ping(&self.db).await
    }

    /// One transaction for the batch. The people it changes are locked first, in one order, so
    /// replicas applying photos of the same person take turns and never deadlock; photos of
    /// other people are applied concurrently.
    async fn handle(&self, batch: &[Incoming<PhotoProcessed>]) -> Vec<Handled> {
        match self.apply_batch(batch).await {
            Ok(results) => results,
            Err(error) => pictureday_platform::db::batch_failed(batch.len(), &error),
        }
    }
}

impl Apply {
    async fn apply_batch(&self, batch: &[Incoming<PhotoProcessed>]) -> Result<Vec<Handled>, DbErr> {
        let txn = begin_write(&self.db).await?;
        lock_people(&txn, batch).await?;
        let mut results = Vec::with_capacity(batch.len());
        for incoming in batch {
            let applied = apply_one(&txn, &incoming.event)
                .instrument(incoming.span.clone())
                .await?;
            results.push(match applied {
                Ok(outgoing) => Ok(vec![outgoing]),
                Err(reason) => Err(Failure::Permanent(reason)),
            });
        }
        txn.commit().await?;
        Ok(results)
    }
}

/// On PostgreSQL, `SELECT … FOR UPDATE` of the batch's people, in id order. SQLite's write
/// transaction already excludes every other writer.
async fn lock_people(
    txn: &DatabaseTransaction,
    batch: &[Incoming<PhotoProcessed>],
) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let mut ids: Vec<&str> = batch.iter().map(|i| i.event.person_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    person::Entity::find()
        .select_only()
        .column(person::Column::Id)
        .filter(person::Column::Id.is_in(ids))
        .order_by_asc(person::Column::Id)
        .lock_exclusive()
        .into_tuple::<String>()
        .all(txn)
        .await?;
    Ok(())
}

/// Applies one photo inside the batch's transaction: `Ok(Err(reason))` when it can never be
/// applied.
async fn apply_one(
    txn: &DatabaseTransaction,
    event: &PhotoProcessed,
) -> Result<Result<Outgoing, String>, DbErr> {
    let file = &event.file;
    if let Some(existing) = photo::Entity::find_by_id(event.photo_id.clone())
        .one(txn)
        .await?
    {
        return Ok(applied_event(event, &existing));
    }
    let person = person::Entity::find_by_id(event.person_id.clone())
        .filter(person::Column::DistrictId.eq(file.district.as_str()))
        .one(txn)
        .await?;
    let Some(person) = person else {
        return Ok(Err(
            "the person it matched is no longer on the roster".into()
        ));
    };
    let Ok(seq) = i32::try_from(file.seq) else {
        return Ok(Err(format!("file number {} is out of range", file.seq)));
    };
    let Ok(renditions) = serde_json::to_string(&event.renditions) else {
        return Ok(Err("its renditions could not be recorded".into()));
    };
    let rank = upload_rank(&file.job_id, file.seq);
    let became_current = set_current_if_newer(txn, &person.id, &event.photo_id, &rank).await?;
    let (outcome, previous) = match (became_current, &person.current_photo_id) {
        (true, None) => (ApplyOutcome::Applied, None),
        (true, Some(previous)) => (ApplyOutcome::Replaced, Some(previous.clone())),
        (false, current) => (ApplyOutcome::Superseded, current.clone()),
    };
    let model = photo::ActiveModel {
        id: Set(event.photo_id.to_string()),
        district_id: Set(file.district.as_str().to_owned()),
        person_id: Set(person.id.clone()),
        job_id: Set(file.job_id.to_string()),
        seq: Set(seq),
        file_name: Set(file.file_name.clone()),
        upload_rank: Set(rank),
        renditions: Set(renditions),
        outcome: Set(outcome),
        previous_photo_id: Set(previous),
        created_at: Set(Utc::now()),
    }
    .insert(txn)
    .await?;
    Ok(applied_event(event, &model))
}

/// Makes the photo current unless the person already has a newer one; one conditional UPDATE, so
/// concurrent appliers cannot both win.
async fn set_current_if_newer(
    txn: &DatabaseTransaction,
    person_id: &str,
    photo_id: &str,
    rank: &str,
) -> Result<bool, DbErr> {
    let result = person::Entity::update_many()
        .col_expr(person::Column::CurrentPhotoId, Expr::value(photo_id))
        .col_expr(person::Column::CurrentPhotoRank, Expr::value(rank))
        .col_expr(person::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(person::Column::Id.eq(person_id))
        .filter(
            Condition::any()
                .add(person::Column::CurrentPhotoRank.is_null())
                .add(person::Column::CurrentPhotoRank.lt(rank)),
        )
        .exec(txn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// `photo.applied` for a stored photo, or why it cannot be said.
fn applied_event(event: &PhotoProcessed, stored: &photo::Model) -> Result<Outgoing, String> {
    let outcome = stored.outcome;
    let file = &event.file;
    let applied = PhotoApplied {
        v: SCHEMA_VERSION,
        file: file.clone(),
        person_id: stored.person_id.as_str().into(),
        photo_id: stored.id.as_str().into(),
        outcome,
        previous_photo_id: stored.previous_photo_id.as_deref().map(Into::into),
    };
    Outgoing::new(
        Kind::Applied.subject(&file.district, &file.job_id),
        file.msg_id("applied"),
        &applied,
    )
    .map_err(|e| format!("its outcome could not be recorded: {e}"))
}
