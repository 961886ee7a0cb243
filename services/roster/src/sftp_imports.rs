//! Roster CSVs a district dropped over SFTP (`pictureday.roster.import`): ingest stored the file
//! and asks roster to import it. Roster records the import exactly as `POST …/roster` does, so it
//! runs, is listed and reports its errors the same way; the reply is the import's id.

use chrono::Utc;
use futures::StreamExt;
use pictureday_contract::events::{RosterImportReply, RosterImportRequest, SCHEMA_VERSION};
use pictureday_contract::keys;
use pictureday_contract::subjects::ROSTER_IMPORT_SUBJECT;
use sea_orm::ActiveModelTrait;
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
            },
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "an SFTP roster import was not recorded"
                );
                RosterImportReply {
                    import_id: None,
                    error: Some(format!("{error:#}")),
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

async fn record(imports: &Imports, payload: &[u8]) -> anyhow::Result<String> {
    let request: RosterImportRequest = serde_json::from_slice(payload)?;
    anyhow::ensure!(
        request.v <= SCHEMA_VERSION,
        "roster import request of version {}",
        request.v
    );
    // The key must be the district's own dropped roster: never another district's object.
    anyhow::ensure!(
        keys::is_sftp_roster(&request.key, &request.district),
        "{} is not a roster CSV of {}",
        request.key,
        request.district
    );
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
    .insert(imports.db())
    .await?;
    imports.wake();
    tracing::info!(district = %request.district, import = %id, file = %request.file_name, bytes = request.bytes, "roster import queued from SFTP");
    Ok(id.as_str().to_owned())
}
