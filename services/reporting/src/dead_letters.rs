//! Keeps every event a service set aside (the dead-letter stream) on its job: recorded once
//! (by its sequence in that stream), counted as `parked` in the job's counts and listed by the
//! API, so nothing is dropped without a trace.

use chrono::Utc;
use pictureday_contract::DistrictId;
use pictureday_contract::events::{DecodeError, Dependency};
use pictureday_contract::subjects::{DEAD_LETTER_STREAM, consumers, job_of_dead_letter};
use pictureday_platform::bus::Outgoing;
use pictureday_platform::stage::{Handled, Incoming, Stage};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter};

use crate::Reporting;
use crate::db::{dead_letter, job_status};
use crate::projection::{lock_job, new_job, settle_state, status_of, store_jobs};

pub(crate) struct DeadLetters(pub Reporting);

/// One set-aside event, as far as it can be read.
pub(crate) struct Parked {
    /// Its job, when its subject names one.
    job: Option<(DistrictId, String)>,
    subject: String,
}

impl Stage for DeadLetters {
    type Event = Parked;
    const CONSUMER: &'static str = consumers::REPORTING_DEAD_LETTERS;
    const SPAN: &'static str = "reporting.dead_letter";
    const STREAM: &'static str = DEAD_LETTER_STREAM;

    /// Anything on the stream is taken as it is: its headers say why it is there.
    fn decode(&self, subject: &str, _payload: &[u8]) -> Result<Parked, DecodeError> {
        Ok(Parked {
            job: job_of_dead_letter(subject),
            subject: subject.to_owned(),
        })
    }

    fn rejection(&self, _event: &Parked, _reason: String) -> Option<Outgoing> {
        None
    }

    async fn probe(&self, _dependency: Dependency) -> bool {
        pictureday_platform::db::ping(&self.0.db).await
    }

    async fn handle(&self, batch: &[Incoming<Parked>]) -> Vec<Handled> {
        match self.record(batch).await {
            Ok(()) => batch.iter().map(|_| Ok(Vec::new())).collect(),
            Err(error) => pictureday_platform::db::batch_failed(batch.len(), &error),
        }
    }
}

fn header(incoming: &Incoming<Parked>, name: &str) -> String {
    incoming
        .delivery
        .message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

impl DeadLetters {
    async fn record(&self, batch: &[Incoming<Parked>]) -> Result<(), DbErr> {
        let reporting = &self.0;
        let txn = pictureday_platform::db::begin_write(&reporting.db).await?;
        let mut touched = Vec::new();
        for incoming in batch {
            let Some((district, job_id)) = &incoming.event.job else {
                tracing::error!(
                    subject = incoming.event.subject,
                    reason = header(incoming, "Pictureday-Reason"),
                    "a set-aside event names no job"
                );
                continue;
            };
            lock_job(&txn, job_id).await?;
            let Ok(sequence) = i64::try_from(incoming.delivery.stream_sequence) else {
                continue;
            };
            let row = dead_letter::ActiveModel {
                sequence: Set(sequence),
                district_id: Set(district.as_str().to_owned()),
                job_id: Set(job_id.clone()),
                consumer: Set(header(incoming, "Pictureday-Consumer")),
                subject: Set(header(incoming, "Pictureday-Original-Subject")),
                reason: Set(header(incoming, "Pictureday-Reason")),
                created_at: Set(Utc::now()),
            };
            dead_letter::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(dead_letter::Column::Sequence)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            let parked = dead_letter::Entity::find()
                .filter(dead_letter::Column::JobId.eq(job_id.as_str()))
                .count(&txn)
                .await?;
            let now = Utc::now();
            let mut job = job_status::Entity::find_by_id(job_id.clone())
                .one(&txn)
                .await?
                .unwrap_or_else(|| new_job(district, job_id, now));
            job.parked = i32::try_from(parked).unwrap_or(i32::MAX);
            settle_state(&mut job, now);
            store_jobs(&txn, std::iter::once(&job)).await?;
            touched.extend(status_of(&job));
        }
        txn.commit().await?;
        let touched = reporting.waiting.annotate(touched);
        reporting.statuses.offer(touched).await;
        Ok(())
    }
}
