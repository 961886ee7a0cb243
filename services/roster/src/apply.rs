//! Applies processed photos to people: the newest upload becomes a person's photo, older ones are
//! kept as versions. Idempotent on the photo id, so redelivery republishes the same outcome.

use chrono::Utc;
use pictureday_shared::Context;
use pictureday_shared::bus::{self, Delivery, Disposition, Kind, Outgoing, consumers};
use pictureday_shared::db::entities::{person, photo};
use pictureday_shared::events::{
    ApplyOutcome, PhotoApplied, PhotoProcessed, PhotoRejected, SCHEMA_VERSION,
};
use pictureday_shared::ids::upload_rank;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

const MAX_BATCH: usize = 256;

pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    bus::consume_batches(
        &ctx.js,
        &ctx.settings.topology,
        consumers::ROSTER,
        MAX_BATCH,
        shutdown,
        |batch| apply_batch(&ctx, batch),
    )
    .await
}

async fn apply_batch(ctx: &Context, batch: Vec<Delivery>) -> Vec<Disposition> {
    match try_apply_batch(ctx, &batch).await {
        Ok(dispositions) => dispositions,
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "applying photos failed; will retry"
            );
            batch
                .iter()
                .map(|d| Disposition::Retry(d.retry_delay()))
                .collect()
        }
    }
}

async fn try_apply_batch(ctx: &Context, batch: &[Delivery]) -> anyhow::Result<Vec<Disposition>> {
    let mut outgoing = Vec::with_capacity(batch.len());
    let txn = pictureday_shared::db::begin_write(&ctx.db).await?;
    for delivery in batch {
        let event: PhotoProcessed = match delivery.decode() {
            Ok(e) if e_version_ok(&e) => e,
            Ok(_) | Err(_) => {
                tracing::error!(subject = %delivery.message.subject, "undecodable processed event; dropped");
                continue;
            }
        };
        let span = delivery.span("roster.apply");
        outgoing.push(apply_one(&txn, &event).instrument(span).await?);
    }
    txn.commit().await?;
    ctx.publisher.publish_all(outgoing).await?;
    Ok(batch.iter().map(|_| Disposition::Ack).collect())
}

fn e_version_ok(event: &PhotoProcessed) -> bool {
    event.v == SCHEMA_VERSION
}

async fn apply_one(
    txn: &DatabaseTransaction,
    event: &PhotoProcessed,
) -> Result<Outgoing, anyhow::Error> {
    let file = &event.file;
    if let Some(existing) = photo::Entity::find_by_id(event.photo_id.clone())
        .one(txn)
        .await?
    {
        return applied_event(event, &existing);
    }
    let person = person::Entity::find_by_id(event.person_id.clone())
        .filter(person::Column::DistrictId.eq(file.district.as_str()))
        .one(txn)
        .await?;
    let Some(person) = person else {
        return Ok(PhotoRejected::outgoing(
            consumers::ROSTER,
            file,
            Some(event.person_id.clone()),
            "the person it matched is no longer on the roster".into(),
        )?);
    };
    let rank = upload_rank(&file.job_id, file.seq);
    let became_current = set_current_if_newer(txn, &person.id, &event.photo_id, &rank).await?;
    let (outcome, previous) = match (became_current, &person.current_photo_id) {
        (true, None) => (ApplyOutcome::Applied, None),
        (true, Some(previous)) => (ApplyOutcome::Replaced, Some(previous.clone())),
        (false, current) => (ApplyOutcome::Superseded, current.clone()),
    };
    let model = photo::ActiveModel {
        id: Set(event.photo_id.clone()),
        district_id: Set(file.district.as_str().to_owned()),
        person_id: Set(person.id.clone()),
        job_id: Set(file.job_id.clone()),
        seq: Set(i32::try_from(file.seq)?),
        file_name: Set(file.file_name.clone()),
        upload_rank: Set(rank),
        renditions: Set(serde_json::to_string(&event.renditions)?),
        outcome: Set(outcome.as_str().to_owned()),
        previous_photo_id: Set(previous),
        created_at: Set(Utc::now()),
    }
    .insert(txn)
    .await?;
    applied_event(event, &model)
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

fn applied_event(event: &PhotoProcessed, stored: &photo::Model) -> anyhow::Result<Outgoing> {
    let outcome = ApplyOutcome::parse(&stored.outcome).ok_or_else(|| {
        anyhow::anyhow!(
            "photo {} has unknown outcome {:?}",
            stored.id,
            stored.outcome
        )
    })?;
    let file = &event.file;
    let applied = PhotoApplied {
        v: SCHEMA_VERSION,
        file: file.clone(),
        person_id: stored.person_id.clone(),
        photo_id: stored.id.clone(),
        outcome,
        previous_photo_id: stored.previous_photo_id.clone(),
    };
    Ok(Outgoing::new(
        Kind::Applied.subject(&file.district, &file.job_id),
        file.msg_id("applied"),
        &applied,
    )?)
}
