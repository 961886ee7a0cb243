//! Deletes the originals of a person's purged photos when roster asks
//! (`pictureday.ingest.purge`): a parent's deletion request reaches the files as uploaded too.
//! Roster names the files its photos came from, and the person: every file uploaded for them
//! goes too, photo or not. A loose file is one object and goes alone. A file inside an uploaded archive cannot be cut
//! out of it, so the whole archive goes — with the other people's originals in it (their
//! photos, the renditions, stay; only re-processing those files becomes impossible). Deleting
//! what is already gone is no error, so roster can ask again after a failure.

use std::collections::BTreeSet;

use futures::StreamExt;
use pictureday_contract::events::{OriginalsPurged, PurgeOriginals, SCHEMA_VERSION, Source};
use pictureday_contract::keys;
use pictureday_contract::subjects::INGEST_PURGE_SUBJECT;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio_util::sync::CancellationToken;

use crate::Ingest;
use crate::db::job_file;

/// Answers purge requests until shutdown; replicas share them through the queue group.
pub(crate) async fn serve(ingest: Ingest, shutdown: CancellationToken) -> anyhow::Result<()> {
    let nats = &ingest.bus.nats;
    let mut requests = nats
        .queue_subscribe(INGEST_PURGE_SUBJECT, "ingest".into())
        .await?;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = requests.next() => m,
        };
        let Some(message) = message else {
            anyhow::bail!("purge subscription ended");
        };
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        // No answer on failure: roster then says the originals could not be deleted yet, and
        // asking again deletes what is left.
        match answer(&ingest, &message.payload).await {
            Ok(response) => {
                if let Err(error) = nats.publish(reply, response.into()).await {
                    tracing::warn!(%error, "could not answer a purge request");
                }
            }
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "could not delete the originals of purged photos"
            ),
        }
    }
}

async fn answer(ingest: &Ingest, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    let request: PurgeOriginals = serde_json::from_slice(payload)?;
    anyhow::ensure!(
        request.v == SCHEMA_VERSION,
        "purge request of version {}",
        request.v
    );
    let purged = purge(ingest, &request).await?;
    Ok(serde_json::to_vec(&purged)?)
}

/// The objects the request's files are stored in: loose files, and archives holding any of them.
#[derive(Debug, Default, PartialEq, Eq)]
struct Objects {
    loose: BTreeSet<String>,
    archives: BTreeSet<String>,
}

async fn purge(ingest: &Ingest, request: &PurgeOriginals) -> anyhow::Result<OriginalsPurged> {
    let district = &request.district;
    let mut rows = Vec::with_capacity(request.files.len());
    for file in &request.files {
        let row = job_file::Entity::find_by_id((file.job_id.to_string(), i32::try_from(file.seq)?))
            .filter(job_file::Column::DistrictId.eq(district.as_str()))
            .one(&ingest.db)
            .await?;
        // A file ingest does not have in this district names nothing to delete.
        rows.extend(row);
    }
    if let Some(person) = &request.person_id {
        rows.extend(
            job_file::Entity::find()
                .filter(job_file::Column::DistrictId.eq(district.as_str()))
                .filter(job_file::Column::ChosenPerson.eq(person.as_str()))
                .all(&ingest.db)
                .await?,
        );
    }
    let mut objects = Objects::default();
    for row in rows {
        let source: Source = serde_json::from_str(&row.source)?;
        // Only what lies under the file's own upload is deleted, whatever the row says.
        if !keys::belongs_to_upload(source.key(), district, &row.job_id) {
            tracing::warn!(%district, job = %row.job_id, seq = row.seq, "a file's source is not under its upload; not deleted");
            continue;
        }
        match source {
            Source::Object { key, .. } => objects.loose.insert(key),
            Source::ZipEntry { archive_key, .. } => objects.archives.insert(archive_key),
        };
    }
    let mut purged = OriginalsPurged {
        v: SCHEMA_VERSION,
        objects_deleted: 0,
        archives_deleted: 0,
    };
    for key in &objects.loose {
        if ingest.storage.delete(key).await? {
            purged.objects_deleted += 1;
        }
    }
    for key in &objects.archives {
        if ingest.storage.delete(key).await? {
            purged.objects_deleted += 1;
            purged.archives_deleted += 1;
        }
    }
    tracing::info!(
        %district,
        files = request.files.len(),
        objects = purged.objects_deleted,
        archives = purged.archives_deleted,
        "deleted the originals of purged photos"
    );
    Ok(purged)
}
