//! Asks reporting how a job stands (`pictureday.reporting.job`). Only reporting knows whether
//! every file of a job has its outcome: roster asks it before applying a preview, ingest before
//! deleting a job's originals. Reporting
//! answers from its projection, the truth: the last `job.status` on the status stream may be
//! older (a status publish that failed is only logged, and a replica's throttled progress can
//! land after another replica's final state).

use std::time::Duration;

use pictureday_contract::DistrictId;
use pictureday_contract::events::{JobQuery, JobStatus, JobStatusResponse, SCHEMA_VERSION};
use pictureday_contract::subjects::REPORTING_JOB_SUBJECT;

/// How long the asker waits for reporting's answer.
const PATIENCE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("reporting did not answer within {PATIENCE:?}")]
    Timeout,
    #[error("asking reporting: {0}")]
    Request(#[from] async_nats::RequestError),
    #[error("reporting's answer: {0}")]
    Json(#[from] serde_json::Error),
}

/// The job's status, or `None` when reporting knows no such job in the district.
pub async fn ask(
    nats: &async_nats::Client,
    district: &DistrictId,
    job_id: &str,
) -> Result<Option<JobStatus>, AskError> {
    let query = serde_json::to_vec(&JobQuery {
        v: SCHEMA_VERSION,
        district: district.clone(),
        job_id: job_id.into(),
    })?;
    let reply = tokio::time::timeout(PATIENCE, nats.request(REPORTING_JOB_SUBJECT, query.into()))
        .await
        .map_err(|_| AskError::Timeout)??;
    let response: JobStatusResponse = serde_json::from_slice(&reply.payload)?;
    Ok(response.status)
}
