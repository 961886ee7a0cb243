//! Files dropped over SFTP, held until they become a job. Each account has at most one open
//! drop, kept in the database (`sftp_drops`, `sftp_drop_files`): the files its sessions close
//! are stored at once (so a storage or database failure is an error the client sees at
//! `close`) and held under their current names, which a rename may still change. Any replica
//! adds to the account's one open drop, and a drop outlives the process that received it: a
//! restart or a `kill -9` delays the job, never loses it. `seal` makes drops jobs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use pictureday_contract::{DistrictId, JobId, keys};
use pictureday_platform::db::{begin_write, lock_key};
use pictureday_platform::http::ApiError;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use super::paths::{Folder, is_temporary};
use crate::Ingest;
use crate::archive::MAX_MAPPING_BYTES;
use crate::db::{sftp_drop, sftp_drop_file};
use crate::upload::Parts;

/// What a held file is, as its job will read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldKind {
    Photo,
    /// A zip: its photos, mapping and indexes.
    Archive,
    /// A mapping CSV beside the photos.
    Mapping,
    /// A roster CSV in `data/` still under a temporary name: sent to roster once renamed.
    Roster,
}

impl HeldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HeldKind::Photo => "photo",
            HeldKind::Archive => "archive",
            HeldKind::Mapping => "mapping",
            HeldKind::Roster => "roster",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "photo" => HeldKind::Photo,
            "archive" => HeldKind::Archive,
            "mapping" => HeldKind::Mapping,
            "roster" => HeldKind::Roster,
            _ => return None,
        })
    }
}

pub(super) fn folder_text(folder: Folder) -> &'static str {
    match folder {
        Folder::Photos => "idphotos",
        Folder::Data => "data",
    }
}

/// Every account's open drop, and the sessions open here.
pub struct Drops {
    pub(super) ingest: Ingest,
    pub(super) quiet: Duration,
    /// Open sessions per account on this replica: their drops stay open.
    sessions: Mutex<HashMap<String, usize>>,
    /// This replica, as it signs the drops it makes jobs.
    pub(super) replica: String,
}

/// Why a file could not be taken: the client is told at `close`.
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    #[error("{0}")]
    Refused(String),
    #[error("storage failed: {0}")]
    Storage(String),
}

impl From<DbErr> for DropError {
    fn from(error: DbErr) -> Self {
        DropError::Storage(format!("the database failed: {error}"))
    }
}

/// The name a file will have once a client renames it from its temporary name.
pub(super) fn final_name(name: &str) -> &str {
    let lower = name.to_ascii_lowercase();
    for suffix in [".filepart", ".part", ".tmp"] {
        if lower.ends_with(suffix) {
            return &name[..name.len() - suffix.len()];
        }
    }
    name
}

fn ends_with(name: &str, extension: &str) -> bool {
    final_name(name).to_ascii_lowercase().ends_with(extension)
}

/// What a closed file in `folder` named `name` is held as.
fn kind_of(folder: Folder, name: &str) -> HeldKind {
    if folder == Folder::Data {
        HeldKind::Roster
    } else if ends_with(name, ".zip") {
        HeldKind::Archive
    } else if ends_with(name, ".csv") || ends_with(name, ".txt") {
        HeldKind::Mapping
    } else {
        HeldKind::Photo
    }
}

pub(super) fn random_text() -> String {
    let random: u128 = rand::random();
    format!("{random:032x}")
}

/// A file of an open drop as a listing shows it.
pub struct Listed {
    pub name: String,
    pub size: u64,
}

impl Drops {
    pub fn new(ingest: Ingest, quiet: Duration) -> Arc<Self> {
        Arc::new(Self {
            ingest,
            quiet,
            sessions: Mutex::new(HashMap::new()),
            replica: random_text(),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // A panic while holding the lock leaves plain counts behind: carry on with them.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accounts with a session open here.
    pub(super) fn open_accounts(&self) -> Vec<String> {
        self.sessions().keys().cloned().collect()
    }

    /// A session of `user` began; the returned guard ends it when dropped.
    pub fn enter(self: &Arc<Self>, user: &str) -> SessionGuard {
        *self.sessions().entry(user.to_owned()).or_default() += 1;
        SessionGuard {
            drops: self.clone(),
            user: user.to_owned(),
        }
    }

    /// `user`'s open drop, opening one in `district`.
    async fn open_drop(&self, user: &str, district: &DistrictId) -> Result<JobId, DropError> {
        let txn = begin_write(&self.ingest.db).await?;
        lock_key(&txn, "sftp-drop", user).await?;
        if let Some(open) = find_open(&txn, user).await? {
            txn.commit().await?;
            return Ok(JobId::from(open.job_id));
        }
        let now = Utc::now();
        let job_id = JobId::new();
        sftp_drop::ActiveModel {
            job_id: Set(job_id.to_string()),
            username: Set(user.to_owned()),
            district_id: Set(district.as_str().to_owned()),
            opened_at: Set(now),
            last_file_at: Set(now),
            session_seen_at: Set(now),
            sealing_by: Set(None),
            sealing_at: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(job_id)
    }

    /// Stores a closed file (spooled at `path`) and holds it in `user`'s drop, opening one.
    /// A roster CSV under its final name goes to roster at once.
    pub async fn add(
        &self,
        user: &str,
        district: &DistrictId,
        folder: Folder,
        name: &str,
        path: &Path,
        size: u64,
    ) -> Result<(), DropError> {
        if folder == Folder::Data && !is_temporary(name) {
            return super::roster::send(&self.ingest, district, name, path, size).await;
        }
        let kind = kind_of(folder, name);
        match kind {
            HeldKind::Archive => {
                // Read now so a zip that is not one is refused at `close`; its job reads the
                // stored copy again.
                Parts::default()
                    .add_archive(final_name(name), path, "")
                    .await
                    .map_err(|e| DropError::Refused(refusal(e)))?;
            }
            HeldKind::Mapping if size > MAX_MAPPING_BYTES => {
                return Err(DropError::Refused(format!(
                    "{name}: a mapping is at most {MAX_MAPPING_BYTES} bytes"
                )));
            }
            _ => {}
        }
        let job_id = self.open_drop(user, district).await?;
        let key = match kind {
            // Roster takes only keys of its own shape.
            HeldKind::Roster => keys::sftp_roster(district, &random_text()),
            _ => keys::upload_dropped(district, &job_id, &random_text()),
        };
        self.ingest
            .storage
            .put_file(&key, path)
            .await
            .map_err(|e| DropError::Storage(e.to_string()))?;
        let held = self
            .hold(user, &job_id, &key, folder, name, size, kind)
            .await;
        match held {
            Ok(Some(replaced)) => {
                self.forget(&replaced).await;
                Ok(())
            }
            Ok(None) => {
                self.forget(&[key]).await;
                Err(DropError::Refused(
                    "the drop became a job while the file was stored; upload it again".into(),
                ))
            }
            Err(error) => {
                self.forget(&[key]).await;
                Err(error.into())
            }
        }
    }

    /// Records a stored file in the drop `job_id`, replacing any held file of the same name.
    /// `None`: the drop is being made a job (the file is not in it).
    #[allow(clippy::too_many_arguments)]
    async fn hold(
        &self,
        user: &str,
        job_id: &JobId,
        key: &str,
        folder: Folder,
        name: &str,
        size: u64,
        kind: HeldKind,
    ) -> Result<Option<Vec<String>>, DbErr> {
        let txn = begin_write(&self.ingest.db).await?;
        lock_key(&txn, "sftp-drop", user).await?;
        let now = Utc::now();
        let touched = sftp_drop::Entity::update_many()
            .col_expr(sftp_drop::Column::LastFileAt, Expr::value(now))
            .filter(sftp_drop::Column::JobId.eq(job_id.as_str()))
            .filter(sftp_drop::Column::SealingBy.is_null())
            .exec(&txn)
            .await?;
        if touched.rows_affected == 0 {
            return Ok(None);
        }
        let replaced = take_named(&txn, job_id, folder, name).await?;
        sftp_drop_file::ActiveModel {
            key: Set(key.to_owned()),
            job_id: Set(job_id.to_string()),
            folder: Set(folder_text(folder).to_owned()),
            name: Set(name.to_owned()),
            size: Set(i64::try_from(size).unwrap_or(i64::MAX)),
            kind: Set(kind.as_str().to_owned()),
            added_at: Set(now),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(Some(replaced))
    }

    /// Deletes stored objects of held files (replaced or removed before their job).
    pub(super) async fn forget(&self, keys: &[String]) {
        for key in keys {
            if let Err(error) = self.ingest.storage.delete(key).await {
                tracing::warn!(%error, key, "removing a replaced SFTP file");
            }
        }
    }

    /// The files held in `user`'s open drop in `folder`.
    pub async fn listing(&self, user: &str, folder: Folder) -> Result<Vec<Listed>, DropError> {
        let Some(open) = find_open(&self.ingest.db, user).await? else {
            return Ok(Vec::new());
        };
        let files = sftp_drop_file::Entity::find()
            .filter(sftp_drop_file::Column::JobId.eq(open.job_id))
            .filter(sftp_drop_file::Column::Folder.eq(folder_text(folder)))
            .order_by_asc(sftp_drop_file::Column::AddedAt)
            .all(&self.ingest.db)
            .await?;
        Ok(files
            .into_iter()
            .map(|f| Listed {
                name: f.name,
                size: u64::try_from(f.size).unwrap_or(0),
            })
            .collect())
    }

    /// The size of a held file, if `name` is one.
    pub async fn size_of(
        &self,
        user: &str,
        folder: Folder,
        name: &str,
    ) -> Result<Option<u64>, DropError> {
        let Some(open) = find_open(&self.ingest.db, user).await? else {
            return Ok(None);
        };
        let file = sftp_drop_file::Entity::find()
            .filter(sftp_drop_file::Column::JobId.eq(open.job_id))
            .filter(sftp_drop_file::Column::Folder.eq(folder_text(folder)))
            .filter(sftp_drop_file::Column::Name.eq(name))
            .one(&self.ingest.db)
            .await?;
        Ok(file.map(|f| u64::try_from(f.size).unwrap_or(0)))
    }

    /// Removes a held file before its job is made. `false`: no such file.
    pub async fn remove(&self, user: &str, folder: Folder, name: &str) -> Result<bool, DropError> {
        let txn = begin_write(&self.ingest.db).await?;
        lock_key(&txn, "sftp-drop", user).await?;
        let Some(open) = find_open(&txn, user).await? else {
            return Ok(false);
        };
        let removed = take_named(&txn, &JobId::from(open.job_id), folder, name).await?;
        txn.commit().await?;
        self.forget(&removed).await;
        Ok(!removed.is_empty())
    }

    /// Renames a held file (a temporary name to its final one): it counts under the new name,
    /// replacing a held file of that name. `false`: no such file.
    pub async fn rename(
        &self,
        user: &str,
        folder: Folder,
        from: &str,
        to: &str,
    ) -> Result<bool, DropError> {
        let txn = begin_write(&self.ingest.db).await?;
        lock_key(&txn, "sftp-drop", user).await?;
        let Some(open) = find_open(&txn, user).await? else {
            return Ok(false);
        };
        let job_id = JobId::from(open.job_id.clone());
        let Some(moved) = sftp_drop_file::Entity::find()
            .filter(sftp_drop_file::Column::JobId.eq(open.job_id.as_str()))
            .filter(sftp_drop_file::Column::Folder.eq(folder_text(folder)))
            .filter(sftp_drop_file::Column::Name.eq(from))
            .order_by_desc(sftp_drop_file::Column::AddedAt)
            .one(&txn)
            .await?
        else {
            return Ok(false);
        };
        let replaced = take_named(&txn, &job_id, folder, to).await?;
        let now = Utc::now();
        sftp_drop::Entity::update_many()
            .col_expr(sftp_drop::Column::LastFileAt, Expr::value(now))
            .filter(sftp_drop::Column::JobId.eq(open.job_id.as_str()))
            .exec(&txn)
            .await?;
        // A roster CSV with its final name goes to roster now; anything else waits.
        let to_roster = HeldKind::parse(&moved.kind) == Some(HeldKind::Roster) && !is_temporary(to);
        let mut handoff = None;
        if to_roster {
            sftp_drop_file::Entity::delete_by_id(moved.key.clone())
                .exec(&txn)
                .await?;
            let district = DistrictId::parse(&open.district_id)
                .map_err(|e| DropError::Storage(e.to_string()))?;
            let size = u64::try_from(moved.size).unwrap_or(0);
            handoff = Some(super::roster::record(&txn, &district, to, &moved.key, size).await?);
        } else {
            let mut renamed: sftp_drop_file::ActiveModel = moved.clone().into();
            renamed.name = Set(to.to_owned());
            renamed.kind = Set(kind_of(folder, to).as_str().to_owned());
            renamed.update(&txn).await?;
        }
        txn.commit().await?;
        self.forget(&replaced).await;
        if let Some(handoff) = handoff {
            super::roster::send_recorded(&self.ingest, &handoff).await?;
        }
        Ok(true)
    }
}

/// `user`'s drop still open to files, if any.
pub(super) async fn find_open<C: sea_orm::ConnectionTrait>(
    db: &C,
    user: &str,
) -> Result<Option<sftp_drop::Model>, DbErr> {
    sftp_drop::Entity::find()
        .filter(sftp_drop::Column::Username.eq(user))
        .filter(sftp_drop::Column::SealingBy.is_null())
        .one(db)
        .await
}

/// Takes every held file named `name` in `folder` out of the drop: their keys.
async fn take_named(
    txn: &DatabaseTransaction,
    job_id: &JobId,
    folder: Folder,
    name: &str,
) -> Result<Vec<String>, DbErr> {
    let named = sftp_drop_file::Entity::find()
        .filter(sftp_drop_file::Column::JobId.eq(job_id.as_str()))
        .filter(sftp_drop_file::Column::Folder.eq(folder_text(folder)))
        .filter(sftp_drop_file::Column::Name.eq(name))
        .all(txn)
        .await?;
    let keys: Vec<String> = named.into_iter().map(|f| f.key).collect();
    if !keys.is_empty() {
        sftp_drop_file::Entity::delete_many()
            .filter(sftp_drop_file::Column::Key.is_in(keys.clone()))
            .exec(txn)
            .await?;
    }
    Ok(keys)
}

pub(super) fn refusal(error: ApiError) -> String {
    match error {
        ApiError::Internal(error) => format!("{error:#}"),
        other => other.to_string(),
    }
}

/// One open session of an account; its drop may become a job once the last one ends.
pub struct SessionGuard {
    drops: Arc<Drops>,
    user: String,
}

impl SessionGuard {
    pub fn drops(&self) -> &Arc<Drops> {
        &self.drops
    }

    pub fn user(&self) -> &str {
        &self.user
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut sessions = self.drops.sessions();
        if let Some(count) = sessions.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // The quiet period runs from the last time a session was seen open.
                sessions.remove(&self.user);
            }
        }
    }
}
