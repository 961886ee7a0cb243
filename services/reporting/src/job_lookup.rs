//! A job's projection by district and id, for the API and for roster's questions. A job
//! accepted a moment ago that reporting has not seen yet is made up from what ingest says of it
//! (queued), so a status URL works as soon as it is handed out.

use std::time::Duration;

use pictureday_contract::DistrictId;
use pictureday_contract::events::{JobCreated, JobQuery, JobQueryResponse, SCHEMA_VERSION};
use pictureday_contract::subjects::INGEST_JOB_SUBJECT;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};

use crate::Reporting;
use crate::db::job_status;
use crate::projection;

/// How long a job's status waits for ingest to say what it knows of a job not yet projected.
const INGEST_PATIENCE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub(crate) enum FindError {
    #[error(transparent)]
    Database(#[from] DbErr),
    #[error("the job is not known here yet and ingest did not answer; try again shortly")]
    IngestUnavailable,
}

/// The job's projection, or `None` when neither reporting nor ingest knows it in `district`.
pub(crate) async fn find_job(
    reporting: &Reporting,
    district: &DistrictId,
    job_id: &str,
) -> Result<Option<job_status::Model>, FindError> {
    let projected = job_status::Entity::find_by_id(job_id.to_owned())
        .filter(job_status::Column::DistrictId.eq(district.as_str()))
        .one(&reporting.db)
        .await?;
    if let Some(row) = &projected
        && row.created_seen
    {
        return Ok(projected);
    }
    let created = match ask_ingest(reporting, district, job_id).await {
        Ok(Some(created)) => created,
        Ok(None) => return Ok(projected),
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "asking ingest about a job");
            return match projected {
                Some(row) => Ok(Some(row)),
                None => Err(FindError::IngestUnavailable),
            };
        }
    };
    let mut row =
        projected.unwrap_or_else(|| projection::new_job(district, job_id, created.created_at));
    row.created_seen = true;
    row.files = i32::try_from(created.files).unwrap_or(i32::MAX);
    row.created_at = created.created_at;
    row.warnings = serde_json::to_string(&created.warnings).unwrap_or_else(|_| "[]".into());
    row.mode = created.options.mode;
    row.replace = created.options.replace;
    row.state = projection::derive_state(&row);
    Ok(Some(row))
}

async fn ask_ingest(
    reporting: &Reporting,
    district: &DistrictId,
    job_id: &str,
) -> anyhow::Result<Option<JobCreated>> {
    let query = serde_json::to_vec(&JobQuery {
        v: SCHEMA_VERSION,
        district: district.clone(),
        job_id: job_id.into(),
    })?;
    let reply = tokio::time::timeout(
        INGEST_PATIENCE,
        reporting.bus.nats.request(INGEST_JOB_SUBJECT, query.into()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("ingest did not answer within {INGEST_PATIENCE:?}"))??;
    let response: JobQueryResponse = serde_json::from_slice(&reply.payload)?;
    Ok(response.job)
}
