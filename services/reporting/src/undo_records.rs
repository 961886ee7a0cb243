//! The `job-undos` consumer of the status stream: roster's `job.undone` is kept on the job, so
//! `GET …/jobs/{job}` says that it was undone, by whom, when, and what happened to its people.

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use pictureday_contract::events::{
    DecodeError, Dependency, JobUndone, NEWEST_READABLE_VERSION, OLDEST_READABLE_VERSION,
};
use pictureday_contract::subjects::{JOB_UNDONE_WILDCARD, STATUS_STREAM};
use pictureday_platform::bus::{Bus, Outgoing};
use pictureday_platform::stage::{Handled, Incoming, Stage};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::db::job_status;

/// The durable consumer of `job.undone` on the status stream.
pub const CONSUMER: &str = "job-undos";

pub(crate) struct UndoRecords {
    pub db: DatabaseConnection,
}

/// Creates the consumer if it is missing: from the stream's first message, so every undo the
/// stream still holds reaches its job.
pub async fn ensure_consumer(bus: &Bus) -> anyhow::Result<()> {
    bus.js
        .create_consumer_on_stream(
            pull::Config {
                durable_name: Some(CONSUMER.into()),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                max_deliver: -1,
                ack_wait: bus.topology.ack_wait,
                num_replicas: bus.topology.replicas,
                filter_subject: JOB_UNDONE_WILDCARD.into(),
                ..Default::default()
            },
            STATUS_STREAM,
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating consumer {CONSUMER}: {e}"))?;
    Ok(())
}

impl Stage for UndoRecords {
    type Event = JobUndone;
    const CONSUMER: &'static str = CONSUMER;
    const SPAN: &'static str = "reporting.undo";
    const STREAM: &'static str = STATUS_STREAM;

    fn decode(&self, subject: &str, payload: &[u8]) -> Result<JobUndone, DecodeError> {
        let json = |source| DecodeError::Json {
            subject: subject.to_owned(),
            source,
        };
        let event: JobUndone = serde_json::from_slice(payload).map_err(json)?;
        if !(OLDEST_READABLE_VERSION..=NEWEST_READABLE_VERSION).contains(&event.v) {
            return Err(DecodeError::UnknownVersion {
                subject: subject.to_owned(),
                found: event.v,
            });
        }
        // The subject names the district and job the event speaks of; a body claiming others
        // is not believed.
        let expected = pictureday_contract::subjects::job_undone_subject(
            &event.district,
            &event.job_id.to_string(),
        );
        if subject != expected {
            return Err(DecodeError::WrongSubject {
                subject: subject.to_owned(),
                expected: "job.undone",
            });
        }
        Ok(event)
    }

    fn rejection(&self, _event: &JobUndone, _reason: String) -> Option<Outgoing> {
        None
    }

    async fn probe(&self, _dependency: Dependency) -> bool {
        pictureday_platform::db::ping(&self.db).await
    }

    async fn handle(&self, batch: &[Incoming<JobUndone>]) -> Vec<Handled> {
        let mut results = Vec::with_capacity(batch.len());
        for incoming in batch {
            let event = &incoming.event;
            let record = match serde_json::to_string(event) {
                Ok(record) => record,
                Err(error) => {
                    tracing::error!(%error, "encoding an undo record");
                    results.push(Ok(Vec::new()));
                    continue;
                }
            };
            // A job reporting does not know keeps nothing: the undo's own record stays with
            // roster (`GET …/jobs/{job}/undo`).
            let updated = pictureday_platform::db::write(
                &self.db,
                job_status::Entity::update_many()
                    .col_expr(job_status::Column::Undo, Expr::value(Some(record)))
                    .filter(job_status::Column::JobId.eq(event.job_id.to_string()))
                    .filter(job_status::Column::DistrictId.eq(event.district.as_str())),
            )
            .await;
            match updated {
                Ok(_) => results.push(Ok(Vec::new())),
                Err(error) => {
                    let mut failed = pictureday_platform::db::batch_failed(1, &error);
                    results.append(&mut failed);
                }
            }
        }
        results
    }
}
