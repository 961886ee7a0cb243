//! What other services ask ingest over NATS request/reply: what it knows of a job (reporting,
//! for a job it has not seen yet), and to publish again the events of files that were lost
//! (reporting's reconciler). Replicas share the requests through a queue group.

use chrono::Utc;
use futures::StreamExt;
use pictureday_contract::events::{
    JobQuery, JobQueryResponse, ReplayRequest, ReplayResponse, SCHEMA_VERSION,
};
use pictureday_contract::subjects::{INGEST_JOB_SUBJECT, INGEST_REPLAY_SUBJECT};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio_util::sync::CancellationToken;

use crate::Ingest;
use crate::db::job;
use crate::jobs::{NewJob, load};

pub(crate) async fn serve(ingest: Ingest, shutdown: CancellationToken) -> anyhow::Result<()> {
    let nats = &ingest.bus.nats;
    let mut jobs = nats
        .queue_subscribe(INGEST_JOB_SUBJECT, "ingest".into())
        .await?;
    let mut replays = nats
        .queue_subscribe(INGEST_REPLAY_SUBJECT, "ingest".into())
        .await?;
    loop {
        let (message, answer) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = jobs.next() => (m, answer_job as Answer),
            m = replays.next() => (m, answer_replay as Answer),
        };
        let Some(message) = message else {
            anyhow::bail!("request subscription ended");
        };
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        // No answer on failure: the asker times out and asks again later.
        match answer(&ingest, &message.payload).await {
            Ok(response) => {
                if let Err(error) = nats.publish(reply, response.into()).await {
                    tracing::warn!(%error, "could not answer a request");
                }
            }
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                subject = %message.subject,
                "could not answer a request"
            ),
        }
    }
}

type Answer =
    for<'a> fn(&'a Ingest, &'a [u8]) -> futures::future::BoxFuture<'a, anyhow::Result<Vec<u8>>>;

fn answer_job<'a>(
    ingest: &'a Ingest,
    payload: &'a [u8],
) -> futures::future::BoxFuture<'a, anyhow::Result<Vec<u8>>> {
    Box::pin(async move {
        let query: JobQuery = serde_json::from_slice(payload)?;
        anyhow::ensure!(
            query.v == SCHEMA_VERSION,
            "job query of version {}",
            query.v
        );
        let job = match find(ingest, &query.district, &query.job_id).await? {
            Some(job) => Some(job.created()?),
            None => None,
        };
        Ok(serde_json::to_vec(&JobQueryResponse {
            v: SCHEMA_VERSION,
            job,
        })?)
    })
}

fn answer_replay<'a>(
    ingest: &'a Ingest,
    payload: &'a [u8],
) -> futures::future::BoxFuture<'a, anyhow::Result<Vec<u8>>> {
    Box::pin(async move {
        let request: ReplayRequest = serde_json::from_slice(payload)?;
        anyhow::ensure!(
            request.v == SCHEMA_VERSION,
            "replay request of version {}",
            request.v
        );
        let Some(job) = find(ingest, &request.district, &request.job_id).await? else {
            return Ok(serde_json::to_vec(&ReplayResponse {
                v: SCHEMA_VERSION,
                replayed: 0,
            })?);
        };
        // Each replay is numbered (by the second it was made in), and every event of it carries
        // the number: the lost events' ids may still be in JetStream's duplicate window, which
        // would drop the replay's as copies of them.
        let round = u32::try_from(Utc::now().timestamp())
            .unwrap_or(u32::MAX)
            .max(1);
        let mut events = Vec::with_capacity(request.seqs.len() + 1);
        if request.job_created {
            events.push(job.created_event(format!("created:{}:r{round}", job.id))?);
        }
        let mut replayed = 0u32;
        for &seq in &request.seqs {
            let event = job.ingested_event(usize::try_from(seq)?, round)?;
            if let Some(event) = event {
                events.push(event);
                replayed += 1;
            }
        }
        ingest.bus.publisher.publish_all(events).await?;
        tracing::warn!(
            district = %job.district,
            job = %job.id,
            files = replayed,
            "published stalled files again"
        );
        Ok(serde_json::to_vec(&ReplayResponse {
            v: SCHEMA_VERSION,
            replayed,
        })?)
    })
}

async fn find(
    ingest: &Ingest,
    district: &pictureday_contract::DistrictId,
    job_id: &str,
) -> anyhow::Result<Option<NewJob>> {
    let row = job::Entity::find_by_id(job_id.to_owned())
        .filter(job::Column::DistrictId.eq(district.as_str()))
        .one(&ingest.db)
        .await?;
    match row {
        Some(row) => Ok(Some(load(&ingest.db, row).await?)),
        None => Ok(None),
    }
}
