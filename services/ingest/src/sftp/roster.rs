//! Roster CSVs dropped in `data/`: imported as `POST /v1/districts/{d}/roster` imports them.
//! Roster owns its imports and their tables, so ingest only stores the file (under a key roster
//! may delete once done) and asks roster over NATS (`pictureday.roster.import`) to record and
//! run the import; the answer is the import's id, or why it was refused.

use std::path::Path;
use std::time::Duration;

use pictureday_contract::DistrictId;
use pictureday_contract::events::{RosterImportReply, RosterImportRequest, SCHEMA_VERSION};
use pictureday_contract::keys;
use pictureday_contract::subjects::ROSTER_IMPORT_SUBJECT;

use super::drops::DropError;
use crate::Ingest;

const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// Stores a closed roster CSV and hands it to roster.
pub async fn send(
    ingest: &Ingest,
    district: &DistrictId,
    name: &str,
    path: &Path,
    size: u64,
) -> Result<(), DropError> {
    let key = keys::sftp_roster(district, &uuid_text());
    ingest
        .storage
        .put_file(&key, path)
        .await
        .map_err(|e| DropError::Storage(e.to_string()))?;
    send_stored(ingest, district, name, &key, size).await
}

/// Hands a stored roster CSV to roster; removes it if roster did not take it.
pub async fn send_stored(
    ingest: &Ingest,
    district: &DistrictId,
    name: &str,
    key: &str,
    size: u64,
) -> Result<(), DropError> {
    let asked = ask(ingest, district, name, key, size).await;
    match asked {
        Ok(reply) => match (reply.import_id, reply.error) {
            (Some(import), _) => {
                tracing::info!(%district, file = name, %import, "SFTP roster CSV handed to roster");
                Ok(())
            }
            (None, error) => {
                forget(ingest, key).await;
                Err(DropError::Refused(
                    error.unwrap_or_else(|| "roster refused the file".into()),
                ))
            }
        },
        Err(error) => {
            forget(ingest, key).await;
            tracing::error!(%district, file = name, error = format!("{error:#}"), "handing an SFTP roster CSV to roster");
            Err(DropError::Storage(
                "the roster service did not answer; upload the file again".into(),
            ))
        }
    }
}

async fn ask(
    ingest: &Ingest,
    district: &DistrictId,
    name: &str,
    key: &str,
    size: u64,
) -> anyhow::Result<RosterImportReply> {
    let request = RosterImportRequest {
        v: SCHEMA_VERSION,
        district: district.clone(),
        file_name: name.to_owned(),
        key: key.to_owned(),
        bytes: size,
    };
    let payload = serde_json::to_vec(&request)?;
    let answer = tokio::time::timeout(
        ANSWER_WITHIN,
        ingest
            .bus
            .nats
            .request(ROSTER_IMPORT_SUBJECT, payload.into()),
    )
    .await??;
    Ok(serde_json::from_slice(&answer.payload)?)
}

async fn forget(ingest: &Ingest, key: &str) {
    let prefix = key.rsplit_once('/').map_or(key, |(dir, _)| dir);
    if let Err(error) = ingest.storage.delete_prefix(prefix).await {
        tracing::warn!(%error, key, "removing a roster CSV roster did not take");
    }
}

fn uuid_text() -> String {
    let random: u128 = rand::random();
    format!("{random:032x}")
}
