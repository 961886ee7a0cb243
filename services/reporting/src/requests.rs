//! What other services ask reporting over NATS request/reply: how a job stands (roster, before
//! it applies a preview: only reporting knows whether every file has its outcome). The answer is
//! the projection, the truth, not the last `job.status` event. Replicas share the requests
//! through a queue group.

use futures::StreamExt;
use pictureday_contract::events::{
    JobQuery, JobStatusResponse, OLDEST_READABLE_VERSION, SCHEMA_VERSION,
};
use pictureday_contract::subjects::REPORTING_JOB_SUBJECT;
use tokio_util::sync::CancellationToken;

use crate::Reporting;
use crate::job_lookup::find_job;
use crate::projection::status_of;

pub(crate) async fn serve(reporting: Reporting, shutdown: CancellationToken) -> anyhow::Result<()> {
    let nats = reporting.bus.nats.clone();
    let mut requests = nats
        .queue_subscribe(REPORTING_JOB_SUBJECT, "reporting".into())
        .await?;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = requests.next() => m,
        };
        let Some(message) = message else {
            anyhow::bail!("request subscription ended");
        };
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        // Each on its own task: an answer that waits on ingest holds up no other.
        let (reporting, nats) = (reporting.clone(), nats.clone());
        tokio::spawn(async move {
            // No answer on failure: the asker times out and says to try again.
            match answer(&reporting, &message.payload).await {
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
        });
    }
}

async fn answer(reporting: &Reporting, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    let query: JobQuery = serde_json::from_slice(payload)?;
    anyhow::ensure!(
        (OLDEST_READABLE_VERSION..=SCHEMA_VERSION).contains(&query.v),
        "job query of version {}",
        query.v
    );
    let status = find_job(reporting, &query.district, &query.job_id)
        .await?
        .and_then(|row| status_of(&row))
        .and_then(|status| reporting.waiting.annotate(vec![status]).pop());
    Ok(serde_json::to_vec(&JobStatusResponse {
        v: SCHEMA_VERSION,
        status,
    })?)
}
