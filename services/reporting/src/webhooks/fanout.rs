//! The `webhooks` consumer of the status stream: each `job.status` becomes one pending delivery
//! per enabled endpoint of its district that asked for it. Deliveries are keyed by endpoint and
//! stream sequence, so an event handled twice is delivered once; the message is acked as soon
//! as they are stored, and sending happens apart (`deliver`).

use std::collections::BTreeMap;

use chrono::Utc;
use pictureday_contract::DistrictId;
use pictureday_contract::events::{DecodeError, Dependency};
use pictureday_contract::subjects::{Kind, STATUS_STREAM, job_of_subject};
use pictureday_platform::bus::Outgoing;
use pictureday_platform::stage::{Handled, Incoming, Stage};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::{EventType, Webhooks, payload};
use crate::db::webhook_delivery::{self, DeliveryState};
use crate::db::webhook_endpoint;

pub(crate) struct Fanout(pub Webhooks);

/// A `job.status` event as it is passed on: its district and its body as published.
pub(crate) struct StatusEvent {
    district: DistrictId,
    data: serde_json::Value,
}

impl Stage for Fanout {
    type Event = StatusEvent;
    const CONSUMER: &'static str = super::CONSUMER;
    const SPAN: &'static str = "reporting.webhooks";
    const STREAM: &'static str = STATUS_STREAM;

    fn decode(&self, subject: &str, payload: &[u8]) -> Result<StatusEvent, DecodeError> {
        let district = match (Kind::of_subject(subject), job_of_subject(subject)) {
            (Some(Kind::JobStatus), Some((district, _job))) => district,
            _ => {
                return Err(DecodeError::WrongSubject {
                    subject: subject.to_owned(),
                    expected: Kind::JobStatus.token(),
                });
            }
        };
        // Passed on as published, so a receiver reads what a stream reader reads.
        let data = serde_json::from_slice(payload).map_err(|source| DecodeError::Json {
            subject: subject.to_owned(),
            source,
        })?;
        Ok(StatusEvent { district, data })
    }

    fn rejection(&self, _event: &StatusEvent, _reason: String) -> Option<Outgoing> {
        None
    }

    async fn probe(&self, _dependency: Dependency) -> bool {
        pictureday_platform::db::ping(&self.0.db).await
    }

    async fn handle(&self, batch: &[Incoming<StatusEvent>]) -> Vec<Handled> {
        match self.fan_out(batch).await {
            Ok(added) => {
                if added {
                    self.0.added.notify_waiters();
                }
                batch.iter().map(|_| Ok(Vec::new())).collect()
            }
            Err(error) => pictureday_platform::db::batch_failed(batch.len(), &error),
        }
    }
}

impl Fanout {
    /// Stores the batch's deliveries; whether there were any.
    async fn fan_out(&self, batch: &[Incoming<StatusEvent>]) -> Result<bool, DbErr> {
        let districts: Vec<&str> = batch
            .iter()
            .map(|i| i.event.district.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let endpoints = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::DistrictId.is_in(districts))
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .all(&self.0.db)
            .await?;
        let mut by_district: BTreeMap<&str, Vec<&webhook_endpoint::Model>> = BTreeMap::new();
        for endpoint in &endpoints {
            if EventType::list_of(&endpoint.event_types).contains(&EventType::JobStatus) {
                by_district
                    .entry(endpoint.district_id.as_str())
                    .or_default()
                    .push(endpoint);
            }
        }
        let now = Utc::now();
        let mut rows = Vec::new();
        // In stream order, so ids (UUID v7, increasing) keep each endpoint's events in order.
        for incoming in batch {
            let Some(targets) = by_district.get(incoming.event.district.as_str()) else {
                continue;
            };
            let body = payload(EventType::JobStatus, now, &incoming.event.data)
                .map_err(|e| DbErr::Custom(format!("encoding a webhook payload: {e}")))?;
            let key = format!(
                "{}:{}",
                EventType::JobStatus.as_str(),
                incoming.delivery.stream_sequence
            );
            for endpoint in targets {
                rows.push(pending(
                    endpoint,
                    EventType::JobStatus,
                    key.clone(),
                    body.clone(),
                    now,
                ));
            }
        }
        if rows.is_empty() {
            return Ok(false);
        }
        // One write for the batch: it takes its turn on SQLite and commits once.
        let txn = pictureday_platform::db::begin_write(&self.0.db).await?;
        insert_pending(&txn, rows).await?;
        txn.commit().await?;
        Ok(true)
    }
}

/// A new pending delivery of `event_type` to `endpoint`, due now.
pub(super) fn pending(
    endpoint: &webhook_endpoint::Model,
    event_type: EventType,
    event_key: String,
    payload: String,
    now: chrono::DateTime<Utc>,
) -> webhook_delivery::ActiveModel {
    webhook_delivery::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        endpoint_id: Set(endpoint.id.clone()),
        district_id: Set(endpoint.district_id.clone()),
        event_type: Set(event_type.as_str().to_owned()),
        event_key: Set(event_key),
        payload: Set(payload),
        state: Set(DeliveryState::Pending),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        last_status: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Stores deliveries, leaving out those already stored (same endpoint and event).
pub(super) async fn insert_pending(
    db: &impl ConnectionTrait,
    rows: Vec<webhook_delivery::ActiveModel>,
) -> Result<(), DbErr> {
    for row in rows {
        let inserted = webhook_delivery::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    webhook_delivery::Column::EndpointId,
                    webhook_delivery::Column::EventKey,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(db)
            .await;
        match inserted {
            Ok(_) | Err(DbErr::RecordNotInserted) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
