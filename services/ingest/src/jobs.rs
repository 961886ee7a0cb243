//! Recording an accepted upload and publishing its events. The job and its files are committed
//! first; events follow, and a job whose events were not all published (the process stopped) is
//! published again by the outbox loop. Event ids are deterministic, so a second publish is a
//! duplicate that JetStream drops or consumers ignore.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pictureday_contract::events::{
    FileRef, ImportOptions, IndexEntry, JobCreated, MappedKey, PhotoIngested, SCHEMA_VERSION,
    Source,
};
use pictureday_contract::subjects::Kind;
use pictureday_contract::{DistrictId, JobId, PersonId};
use pictureday_platform::bus::Outgoing;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder,
};
use tokio_util::sync::CancellationToken;

use crate::Ingest;
use crate::db::{job, job_file};

#[derive(Debug, Clone)]
pub struct NewFile {
    pub name: String,
    pub source: Source,
    pub mapped_key: Option<MappedKey>,
    /// The photographer's index row naming this file.
    pub index_entry: Option<IndexEntry>,
    /// Why the upload itself rules out matching this file.
    pub unmatchable: Option<String>,
    /// Why ingest rejects the file without it being read (an archive entry with an unsafe path
    /// or damaged data): its event is `photo.rejected`, not `photo.ingested`.
    pub rejected: Option<String>,
    /// The person the file was uploaded for: it is matched to them alone.
    pub chosen_person: Option<PersonId>,
}

impl NewFile {
    pub fn new(name: String, source: Source) -> Self {
        NewFile {
            name,
            source,
            mapped_key: None,
            index_entry: None,
            unmatchable: None,
            rejected: None,
            chosen_person: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: JobId,
    pub district: DistrictId,
    pub created_at: DateTime<Utc>,
    pub has_mapping: bool,
    /// The photographer's index the files were matched by (`MASTER.TXT`), if any.
    pub index: Option<String>,
    pub options: ImportOptions,
    pub files: Vec<NewFile>,
    pub warnings: Vec<String>,
}

const INSERT_CHUNK: usize = 500;

pub async fn record(db: &DatabaseConnection, new: &NewJob) -> anyhow::Result<()> {
    let txn = pictureday_platform::db::begin_write(db).await?;
    record_in(&txn, new).await?;
    txn.commit().await?;
    Ok(())
}

/// Records the job within `txn`, which the caller commits (with whatever else makes the job).
pub async fn record_in(txn: &DatabaseTransaction, new: &NewJob) -> anyhow::Result<()> {
    job::ActiveModel {
        id: Set(new.id.to_string()),
        district_id: Set(new.district.as_str().to_owned()),
        files: Set(i32::try_from(new.files.len())?),
        has_mapping: Set(new.has_mapping),
        warnings: Set(serde_json::to_string(&new.warnings)?),
        created_at: Set(new.created_at),
        mode: Set(new.options.mode),
        replace: Set(new.options.replace),
        index_name: Set(new.index.clone()),
        originals_purged_at: Set(None),
        originals_purged_objects: Set(None),
        published_at: Set(None),
    }
    .insert(txn)
    .await?;
    let mut rows = Vec::with_capacity(new.files.len());
    for (seq, file) in new.files.iter().enumerate() {
        rows.push(job_file::ActiveModel {
            job_id: Set(new.id.to_string()),
            seq: Set(i32::try_from(seq)?),
            district_id: Set(new.district.as_str().to_owned()),
            file_name: Set(file.name.clone()),
            source: Set(serde_json::to_string(&file.source)?),
            mapped_key: Set(file.mapped_key.as_ref().map(|k| k.value.clone())),
            mapped_row: Set(file
                .mapped_key
                .as_ref()
                .map(|k| i32::try_from(k.row))
                .transpose()?),
            index_entry: Set(file
                .index_entry
                .as_ref()
                .map(serde_json::to_string)
                .transpose()?),
            unmatchable: Set(file.unmatchable.clone()),
            rejected: Set(file.rejected.clone()),
            chosen_person: Set(file.chosen_person.as_ref().map(ToString::to_string)),
        });
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        job_file::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

impl NewJob {
    /// What `job.created` says of it.
    pub(crate) fn created(&self) -> anyhow::Result<JobCreated> {
        Ok(JobCreated {
            v: SCHEMA_VERSION,
            district: self.district.clone(),
            job_id: self.id.clone(),
            files: u32::try_from(self.files.len())?,
            created_at: self.created_at,
            warnings: self.warnings.clone(),
            options: self.options,
        })
    }

    /// `job.created`, under `msg_id`.
    pub(crate) fn created_event(&self, msg_id: String) -> anyhow::Result<Outgoing> {
        Ok(Outgoing::new(
            Kind::JobCreated.subject(&self.district, &self.id),
            msg_id,
            &self.created()?,
        )?)
    }

    /// `photo.ingested` of file `seq`, or its `photo.rejected` when ingest already rejects it;
    /// `replay` 0 the first time.
    pub(crate) fn ingested_event(
        &self,
        seq: usize,
        replay: u32,
    ) -> anyhow::Result<Option<Outgoing>> {
        let Some(file) = self.files.get(seq) else {
            return Ok(None);
        };
        let file_ref = FileRef {
            district: self.district.clone(),
            job_id: self.id.clone(),
            seq: u32::try_from(seq)?,
            file_name: file.name.clone(),
            replay,
        };
        if let Some(reason) = &file.rejected {
            return Ok(Some(Outgoing::rejection(
                "ingest",
                &file_ref,
                None,
                reason.clone(),
            )?));
        }
        Ok(Some(Outgoing::new(
            Kind::Ingested.subject(&self.district, &self.id),
            file_ref.msg_id("ingested"),
            &PhotoIngested {
                v: PhotoIngested::version_for(file.chosen_person.as_ref()),
                source: file.source.clone(),
                has_mapping: self.has_mapping,
                mapped_key: file.mapped_key.clone(),
                index: self.index.clone(),
                index_entry: file.index_entry.clone(),
                unmatchable: file.unmatchable.clone(),
                options: self.options,
                chosen_person: file.chosen_person.clone(),
                file: file_ref,
            },
        )?))
    }
}

fn events(new: &NewJob) -> anyhow::Result<Vec<Outgoing>> {
    let mut out = Vec::with_capacity(new.files.len() + 1);
    out.push(new.created_event(format!("created:{}", new.id))?);
    for seq in 0..new.files.len() {
        out.extend(new.ingested_event(seq, 0)?);
    }
    Ok(out)
}

/// Publishes the job's events and marks it published.
pub(crate) async fn publish(ingest: &Ingest, new: &NewJob) -> anyhow::Result<()> {
    ingest.bus.publisher.publish_all(events(new)?).await?;
    pictureday_platform::db::write(
        &ingest.db,
        job::Entity::update_many()
            .col_expr(job::Column::PublishedAt, Expr::value(Utc::now()))
            .filter(job::Column::Id.eq(new.id.as_str())),
    )
    .await?;
    tracing::info!(district = %new.district, job = %new.id, files = new.files.len(), "job published");
    Ok(())
}

pub(crate) async fn load(db: &DatabaseConnection, row: job::Model) -> anyhow::Result<NewJob> {
    let files = job_file::Entity::find()
        .filter(job_file::Column::JobId.eq(row.id.as_str()))
        .order_by_asc(job_file::Column::Seq)
        .all(db)
        .await?;
    let files = files
        .into_iter()
        .map(|f| {
            let mapped_key = match (f.mapped_key, f.mapped_row) {
                (Some(value), Some(row)) => Some(MappedKey {
                    value,
                    row: u32::try_from(row)?,
                }),
                _ => None,
            };
            Ok(NewFile {
                name: f.file_name,
                source: serde_json::from_str(&f.source)?,
                mapped_key,
                index_entry: f
                    .index_entry
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()?,
                unmatchable: f.unmatchable,
                rejected: f.rejected,
                chosen_person: f.chosen_person.map(PersonId::from),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(NewJob {
        district: DistrictId::parse(&row.district_id)?,
        warnings: serde_json::from_str(&row.warnings)?,
        id: row.id.into(),
        created_at: row.created_at,
        has_mapping: row.has_mapping,
        index: row.index_name,
        options: ImportOptions {
            mode: row.mode,
            replace: row.replace,
        },
        files,
    })
}

/// A job left unpublished this long is taken to be orphaned by a stopped process.
const ORPHAN_AFTER: Duration = Duration::from_secs(60);
const OUTBOX_INTERVAL: Duration = Duration::from_secs(30);

/// Publishes jobs that were recorded but not (completely) published.
pub(crate) async fn run_outbox(ingest: Ingest, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        let cutoff = Utc::now() - chrono::Duration::from_std(ORPHAN_AFTER)?;
        let orphans = job::Entity::find()
            .filter(job::Column::PublishedAt.is_null())
            .filter(job::Column::CreatedAt.lt(cutoff))
            .order_by_asc(job::Column::Id)
            .all(&ingest.db)
            .await?;
        for row in orphans {
            let id = row.id.clone();
            let new = load(&ingest.db, row).await?;
            tracing::info!(job = %id, "publishing a job left unpublished");
            publish(&ingest, &new).await?;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(OUTBOX_INTERVAL) => {}
        }
    }
}
