//! Applies processed photos to people: the newest upload becomes a person's photo, older ones are
//! kept as versions, and the import's replace policy may leave a person's photo as it is
//! (`skipped`). A preview's photos are stored, not applied (`previewed`, with a note saying what
//! applying would do; `preview` applies them later). Idempotent on the photo id, so redelivery
//! republishes the same outcome and note.

use chrono::Utc;
use pictureday_contract::events::{
    self, DecodeError, Dependency, FileRef, ImportMode, PhotoApplied, PhotoProcessed,
    SCHEMA_VERSION,
};
use pictureday_contract::ids::{photo_id, upload_rank};
use pictureday_contract::keys;
use pictureday_contract::subjects::{Kind, consumers};
use pictureday_platform::bus::{Bus, Outgoing};
use pictureday_platform::db::begin_write;
use pictureday_platform::stage::{Failure, Handled, Incoming, Stage};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter,
};
use tracing::Instrument;

use crate::db::{person, photo};
use crate::placement::{self, Candidate};

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
        let people = batch.iter().map(|i| i.event.person_id.as_str()).collect();
        placement::lock_people(&txn, people).await?;
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

/// What an event claims that cannot be so, if anything. A message on the bus is a claim, not
/// proof: the photo id is its file's, and its renditions lie under that photo in its district,
/// so no event can put another district's objects on this district's person. (The person must
/// be of the event's district too: looked up below.)
fn refused_claim(event: &PhotoProcessed) -> Option<&'static str> {
    let file = &event.file;
    if event.photo_id != photo_id(&file.job_id, file.seq) {
        return Some("its photo id is not its file's");
    }
    let foreign = event
        .renditions
        .iter()
        .any(|r| !keys::belongs_to_photo(&r.key, &file.district, &event.photo_id));
    foreign.then_some("its renditions are not stored under its photo")
}

/// Applies one photo inside the batch's transaction (or, for a preview, records what applying
/// it would do): `Ok(Err(reason))` when it can never be applied.
async fn apply_one(
    txn: &DatabaseTransaction,
    event: &PhotoProcessed,
) -> Result<Result<Outgoing, String>, DbErr> {
    let file = &event.file;
    if let Some(refused) = refused_claim(event) {
        tracing::warn!(district = %file.district, job = %file.job_id, reason = refused, "photo.processed refused");
        return Ok(Err(format!("{refused}; the event was refused")));
    }
    let policy = event.options.replace;
    if let Some(existing) = photo::Entity::find_by_id(event.photo_id.clone())
        .one(txn)
        .await?
    {
        let note = placement::note_of(txn, &existing, policy).await?;
        return Ok(applied_event(file, &existing, note, file.msg_id("applied")));
    }
    let person = person::Entity::find_by_id(event.person_id.clone())
        .filter(person::Column::DistrictId.eq(file.district.as_str()))
        .one(txn)
        .await?;
    let Some(person) = person else {
        return Ok(Err(placement::PERSON_GONE.into()));
    };
    // Matched while they were on the roster, they may have left since: as at matching, photos
    // are not placed on people who left.
    if person.status == person::PersonStatus::Inactive {
        let since = person
            .inactive_since
            .map(|d| format!(" (inactive since {})", d.format("%Y-%m-%d")))
            .unwrap_or_default();
        return Ok(Err(format!(
            "{}{since} left the roster while the photo was processed; photos are not placed on people who left (reactivate them on the roster and upload it again)",
            placement::display_name(&person)
        )));
    }
    let Ok(seq) = i32::try_from(file.seq) else {
        return Ok(Err(format!("file number {} is out of range", file.seq)));
    };
    let Ok(renditions) = serde_json::to_string(&event.renditions) else {
        return Ok(Err("its renditions could not be recorded".into()));
    };
    let rank = upload_rank(&file.job_id, file.seq);
    let candidate = Candidate {
        photo_id: event.photo_id.as_str(),
        job_id: file.job_id.as_str(),
        upload_rank: &rank,
    };
    let placed = match event.options.mode {
        ImportMode::Apply => placement::apply(txn, &person, &candidate, policy).await?,
        ImportMode::Preview => placement::preview(txn, &person, &candidate, policy).await?,
    };
    let model = photo::ActiveModel {
        id: Set(event.photo_id.to_string()),
        district_id: Set(file.district.as_str().to_owned()),
        person_id: Set(person.id.clone()),
        job_id: Set(file.job_id.to_string()),
        seq: Set(seq),
        file_name: Set(file.file_name.clone()),
        upload_rank: Set(rank.clone()),
        renditions: Set(renditions),
        outcome: Set(placed.outcome),
        previous_photo_id: Set(placed.previous_photo_id),
        created_at: Set(Utc::now()),
    }
    .insert(txn)
    .await?;
    Ok(applied_event(
        file,
        &model,
        placed.note,
        file.msg_id("applied"),
    ))
}

/// `photo.applied` for a stored photo, or why it cannot be said.
pub(crate) fn applied_event(
    file: &FileRef,
    stored: &photo::Model,
    note: Option<String>,
    msg_id: String,
) -> Result<Outgoing, String> {
    let applied = PhotoApplied {
        v: SCHEMA_VERSION,
        file: file.clone(),
        person_id: stored.person_id.as_str().into(),
        photo_id: stored.id.as_str().into(),
        outcome: stored.outcome,
        previous_photo_id: stored.previous_photo_id.as_deref().map(Into::into),
        note,
    };
    Outgoing::new(
        Kind::Applied.subject(&file.district, &file.job_id),
        msg_id,
        &applied,
    )
    .map_err(|e| format!("its outcome could not be recorded: {e}"))
}
