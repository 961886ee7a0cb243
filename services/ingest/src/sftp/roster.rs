//! Roster CSVs dropped in `data/`: imported as `POST /v1/districts/{d}/roster` imports them.
//! Roster owns its imports and their tables, so ingest only stores the file (under a key roster
//! may delete once done) and asks roster over NATS (`pictureday.roster.import`) to record and
//! run the import; the answer is the import's id, or why it was refused.
//!
//! The stored file is recorded (`sftp_roster_handoffs`) before roster is asked, and the record
//! is removed only once roster has answered. When roster does not answer (it is down or
//! restarting) or cannot record the import now, the client's `close` still succeeds: the file
//! is kept and handed over as soon as roster answers, by whichever ingest replica asks first.
//! Roster answers a second ask for the same stored file with the import it already recorded.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use pictureday_contract::events::{RosterImportReply, RosterImportRequest, SCHEMA_VERSION};
use pictureday_contract::subjects::ROSTER_IMPORT_SUBJECT;
use pictureday_contract::{DistrictId, keys};
use pictureday_platform::db::{begin_write, write};
use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder};

use super::drops::DropError;
use crate::Ingest;
use crate::db::sftp_roster_handoff;

/// How long a client's `close` waits for roster before the file is kept for later.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// What became of one ask.
enum Handover {
    /// Roster recorded the import.
    Taken(String),
    /// Roster refused the file for good, with why.
    Refused(String),
    /// Roster did not answer, or cannot record it now: ask again later.
    Later(String),
}

/// Stores a closed roster CSV and hands it to roster (or keeps it until roster answers).
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

/// Hands a stored roster CSV to roster. Refused, it is removed and the refusal is the client's
/// answer; not answered, it is kept and handed over later (the client's `close` succeeds).
async fn send_stored(
    ingest: &Ingest,
    district: &DistrictId,
    name: &str,
    key: &str,
    size: u64,
) -> Result<(), DropError> {
    let recorded = async {
        let txn = begin_write(&ingest.db).await?;
        let handoff = record(&txn, district, name, key, size).await?;
        txn.commit().await?;
        Ok::<_, sea_orm::DbErr>(handoff)
    }
    .await;
    match recorded {
        Ok(handoff) => send_recorded(ingest, &handoff).await,
        Err(error) => {
            forget(ingest, key).await;
            Err(DropError::Storage(format!("the database failed: {error}")))
        }
    }
}

/// Records a stored roster CSV as roster's to take, on `db` (a renamed file's record is written
/// in the rename's own transaction, so the file is never without a record that will hand it
/// over).
pub async fn record<C: sea_orm::ConnectionTrait>(
    db: &C,
    district: &DistrictId,
    name: &str,
    key: &str,
    size: u64,
) -> Result<sftp_roster_handoff::Model, sea_orm::DbErr> {
    let handoff = sftp_roster_handoff::Model {
        key: key.to_owned(),
        district_id: district.as_str().to_owned(),
        file_name: name.to_owned(),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        added_at: Utc::now(),
    };
    sftp_roster_handoff::ActiveModel::from(handoff.clone())
        .insert(db)
        .await
}

/// Hands a recorded roster CSV to roster: refused, the refusal is the client's answer; not
/// answered, the record stays and the file is handed over later.
pub async fn send_recorded(
    ingest: &Ingest,
    handoff: &sftp_roster_handoff::Model,
) -> Result<(), DropError> {
    match hand_over(ingest, handoff).await {
        Handover::Taken(_) => Ok(()),
        Handover::Refused(reason) => Err(DropError::Refused(reason)),
        Handover::Later(why) => {
            tracing::warn!(district = %handoff.district_id, file = %handoff.file_name, why, "roster did not take an SFTP roster CSV now; it is kept and handed over when roster answers");
            Ok(())
        }
    }
}

/// Hands over every kept roster CSV roster has not taken yet, oldest first; stops at the first
/// that roster does not answer (the rest would wait the same).
pub async fn hand_over_kept(ingest: &Ingest) -> Result<(), sea_orm::DbErr> {
    let kept = sftp_roster_handoff::Entity::find()
        .order_by_asc(sftp_roster_handoff::Column::AddedAt)
        .all(&ingest.db)
        .await?;
    for handoff in kept {
        match hand_over(ingest, &handoff).await {
            Handover::Taken(_) => {}
            Handover::Refused(reason) => {
                tracing::error!(district = %handoff.district_id, file = %handoff.file_name, reason, "roster refused a kept SFTP roster CSV; it is removed");
            }
            Handover::Later(_) => break,
        }
    }
    Ok(())
}

/// Asks roster once; removes the record (and, refused, the file) once roster has answered.
async fn hand_over(ingest: &Ingest, handoff: &sftp_roster_handoff::Model) -> Handover {
    let asked = match DistrictId::parse(&handoff.district_id) {
        Ok(district) => ask(ingest, &district, handoff).await,
        Err(error) => Ok(RosterImportReply {
            import_id: None,
            error: Some(format!("not a district: {error}")),
            retry: false,
        }),
    };
    let outcome = match asked {
        Ok(RosterImportReply {
            import_id: Some(import),
            ..
        }) => Handover::Taken(import),
        Ok(RosterImportReply {
            error, retry: true, ..
        }) => {
            return Handover::Later(error.unwrap_or_else(|| "roster asked to try again".into()));
        }
        Ok(RosterImportReply { error, .. }) => {
            Handover::Refused(error.unwrap_or_else(|| "roster refused the file".into()))
        }
        Err(error) => return Handover::Later(format!("{error:#}")),
    };
    if let Handover::Refused(_) = outcome {
        forget(ingest, &handoff.key).await;
    }
    // Left behind if this fails: the next ask gets the same import back from roster.
    if let Err(error) = write(
        &ingest.db,
        sftp_roster_handoff::Entity::delete_by_id(handoff.key.clone()),
    )
    .await
    {
        tracing::warn!(%error, key = %handoff.key, "could not remove a handed-over SFTP roster CSV's record");
    }
    if let Handover::Taken(import) = &outcome {
        tracing::info!(district = %handoff.district_id, file = %handoff.file_name, %import, "SFTP roster CSV handed to roster");
    }
    outcome
}

async fn ask(
    ingest: &Ingest,
    district: &DistrictId,
    handoff: &sftp_roster_handoff::Model,
) -> anyhow::Result<RosterImportReply> {
    let request = RosterImportRequest {
        v: SCHEMA_VERSION,
        district: district.clone(),
        file_name: handoff.file_name.clone(),
        key: handoff.key.clone(),
        bytes: u64::try_from(handoff.size).unwrap_or(0),
    };
    let payload = serde_json::to_vec(&request)?;
    let answer = tokio::time::timeout(
        ANSWER_WITHIN,
        ingest
            .bus
            .nats
            .request(ROSTER_IMPORT_SUBJECT, payload.into()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("roster did not answer within {ANSWER_WITHIN:?}"))??;
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
