//! Reporting: turns every pipeline event into the job projection (per-file outcomes, counts,
//! state), publishes `job.status` events, and serves jobs and their logs.

mod api;
pub mod projection;
mod status;

use std::sync::Arc;

use pictureday_shared::Context;
use pictureday_shared::bus::{self, Delivery, Disposition, consumers};
use pictureday_shared::runtime::Component;
use tokio_util::sync::CancellationToken;

use crate::projection::Event;
use crate::status::StatusPublisher;

const MAX_BATCH: usize = 1000;

pub fn component(ctx: &Context, shutdown: &CancellationToken) -> anyhow::Result<Component> {
    let statuses = StatusPublisher::new(ctx.publisher.clone());
    let (project_ctx, project_stop, project_statuses) =
        (ctx.clone(), shutdown.clone(), statuses.clone());
    let flush_stop = shutdown.clone();
    Ok(Component::new("reporting")
        .routes(api::router(ctx.clone()))
        .worker("project", move || {
            project(
                project_ctx.clone(),
                project_statuses.clone(),
                project_stop.clone(),
            )
        })
        .worker("status", move || {
            statuses.clone().run_flusher(flush_stop.clone())
        }))
}

async fn project(
    ctx: Context,
    statuses: Arc<StatusPublisher>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    bus::consume_batches(
        &ctx.js,
        &ctx.settings.topology,
        consumers::REPORTING,
        MAX_BATCH,
        shutdown,
        |batch| project_batch(&ctx, &statuses, batch),
    )
    .await
}

async fn project_batch(
    ctx: &Context,
    statuses: &StatusPublisher,
    batch: Vec<Delivery>,
) -> Vec<Disposition> {
    let mut events = Vec::with_capacity(batch.len());
    for delivery in &batch {
        let decoded = delivery.span("reporting.project").in_scope(|| {
            Event::decode(delivery.message.subject.as_str(), &delivery.message.payload)
        });
        match decoded {
            Ok(event) => events.push(event),
            Err(error) => tracing::error!(%error, "undecodable pipeline event; dropped"),
        }
    }
    let result = async {
        let txn = pictureday_shared::db::begin_write(&ctx.db).await?;
        let touched = projection::apply(&txn, &events).await?;
        txn.commit().await?;
        Ok::<_, sea_orm::DbErr>(touched)
    }
    .await;
    match result {
        Ok(touched) => {
            statuses.offer(touched).await;
            batch.iter().map(|_| Disposition::Ack).collect()
        }
        Err(error) => {
            tracing::warn!(%error, "updating the job projection failed; will retry");
            batch
                .iter()
                .map(|d| Disposition::Retry(d.retry_delay()))
                .collect()
        }
    }
}
