//! Roster CSVs a district dropped over SFTP (`pictureday.roster.import`): ingest stored the file
//! and asks roster to import it. Roster records the import exactly as `POST …/roster` does, so it
//! runs, is listed and reports its errors the same way; the reply is the import's id. Asked
//! again for the same stored file (an answer was lost), it answers with the same import.

use chrono::Utc;
use futures::StreamExt;
use pictureday_contract::events::{RosterImportReply, RosterImportRequest, SCHEMA_VERSION};
use pictureday_contract::keys;
use pictureday_contract::subjects::ROSTER_IMPORT_SUBJECT;
use pictureday_platform::db::{begin_write, lock_key};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter};
use tokio_util::sync::CancellationToken;

use crate::db::roster_import;
use crate::imports::{Imports, RosterImportId, db_time};

pub async fn serve(
    nats: async_nats::Client,
    imports: Imports,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut requests = nats
        .queue_subscribe(ROSTER_IMPORT_SUBJECT, "roster".into())
        .await?;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = requests.next() => m,
        };
        let Some(message) = message else {
            anyhow::bail!("roster import subscription ended");
        };
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        let answer = match record(&imports, &message.payload).await {
            Ok(import_id) => RosterImportReply {
                import_id: Some(import_id),
                error: None,
                retry: false,
            },
            Err(error) => {
                let retry = matches!(error, NotRecorded::Unavailable(_));
                tracing::warn!(
                    error = %error,
                    retry,
                    "an SFTP roster import was not recorded"
                );
                RosterImportReply {
                    import_id: None,
                    error: Some(error.to_string()),
                    retry,
                }
            }
        };
        if let Err(error) = nats
            .publish(reply, serde_json::to_vec(&answer)?.into())
            .await
        {
            tracing::warn!(%error, "could not answer an SFTP roster import");
        }
    }
}

/// Why an SFTP roster CSV was not recorded as an import.
#[derive(Debug, thiserror::Error)]
enum NotRecorded {
    /// The request can never be taken (not one, or another district's object).
    #[error("{0}")]
    Refused(String),
    /// The database failed: ingest keeps the file and asks again.
    #[error("the roster database failed: {0}")]
    Unavailable(#[from] sea_orm::DbErr),
}

/// Records the import, or finds the one already recorded for the same stored file: ingest asks
/// again when an answer was lost, and that must not import the file twice.
async fn record(imports: &Imports, payload: &[u8]) -> Result<String, NotRecorded> {
    let request: RosterImportRequest = serde_json::from_slice(payload)
        .map_err(|e| NotRecorded::Refused(format!("not a roster import request: {e}")))?;
    if request.v > SCHEMA_VERSION {
        return Err(NotRecorded::Refused(format!(
            "roster import request of version {}",
            request.v
        )));
    }
    // The key must be the district's own dropped roster: never another district's object.
    if !keys::is_sftp_roster(&request.key, &request.district) {
        return Err(NotRecorded::Refused(format!(
            "{} is not a roster CSV of {}",
            request.key, request.district
        )));
    }
    let txn = begin_write(imports.db()).await?;
    lock_key(&txn, "sftp-roster-import", &request.key).await?;
    let recorded = roster_import::Entity::find()
        .filter(roster_import::Column::SpoolKey.eq(request.key.as_str()))
        .filter(roster_import::Column::DistrictId.eq(request.district.as_str()))
        .one(&txn)
        .await?;
    if let Some(recorded) = recorded {
        txn.commit().await?;
        return Ok(recorded.id);
    }
    let id = RosterImportId::new();
    // The worker reads whether it is a roster CSV or a OneRoster zip.
    roster_import::queued(
        id.as_str(),
        request.district.as_str(),
        request.key.clone(),
        request.bytes,
        None,
        None,
        db_time(Utc::now()),
    )
    .insert(&txn)
    .await?;
    txn.commit().await?;
    imports.wake();
    tracing::info!(district = %request.district, import = %id, file = %request.file_name, bytes = request.bytes, "roster import queued from SFTP");
    Ok(id.as_str().to_owned())
}
