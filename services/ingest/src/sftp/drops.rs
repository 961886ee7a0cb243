//! Files dropped over SFTP, grouped into jobs. Each account has at most one open drop: the
//! files its sessions close are stored at once (so a storage failure is an error the client
//! sees at `close`) and held in the drop under their current names, which a rename may still
//! change. The drop becomes one job, recorded and published as an HTTP upload is, once no
//! session of the account is open and no file has arrived for the quiet period — or when
//! ingest stops. A drop of 3,000 files is one job with one log.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pictureday_contract::events::{ImportMode, ImportOptions, ReplacePolicy, Source};
use pictureday_contract::{DistrictId, JobId, keys};
use pictureday_platform::http::ApiError;
use tokio_util::sync::CancellationToken;

use super::paths::{Folder, is_temporary};
use crate::Ingest;
use crate::archive::MAX_MAPPING_BYTES;
use crate::upload::Parts;

/// A file held in an open drop.
#[derive(Debug)]
pub struct Held {
    pub folder: Folder,
    pub name: String,
    pub size: u64,
    pub kind: HeldKind,
}

#[derive(Debug)]
pub enum HeldKind {
    Photo {
        key: String,
    },
    /// A zip, already listed: its photos, mapping and indexes.
    Archive {
        key: String,
        parts: Parts,
    },
    /// A mapping CSV beside the photos.
    Mapping {
        bytes: Vec<u8>,
    },
    /// A roster CSV in `data/` still under a temporary name: sent to roster once renamed.
    Roster {
        key: String,
    },
}

impl HeldKind {
    fn key(&self) -> Option<&str> {
        match self {
            HeldKind::Photo { key } | HeldKind::Archive { key, .. } | HeldKind::Roster { key } => {
                Some(key)
            }
            HeldKind::Mapping { .. } => None,
        }
    }
}

/// One account's open drop.
struct Batch {
    district: DistrictId,
    job_id: JobId,
    files: Vec<Held>,
    objects: u32,
    archives: usize,
    last: Instant,
}

#[derive(Default)]
struct State {
    batches: HashMap<String, Batch>,
    sessions: HashMap<String, usize>,
}

/// Every account's open drop.
pub struct Drops {
    ingest: Ingest,
    quiet: Duration,
    state: Mutex<State>,
}

/// Why a file could not be taken: the client is told at `close`.
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    #[error("{0}")]
    Refused(String),
    #[error("storage failed: {0}")]
    Storage(String),
}

/// The name a file will have once a client renames it from its temporary name.
fn final_name(name: &str) -> &str {
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

/// A drop seals at least this often even while a session stays open, so a client that keeps
/// one connection open all day still sees its files become jobs.
fn longest_open(quiet: Duration) -> Duration {
    (quiet * 10).max(Duration::from_secs(600))
}

impl Drops {
    pub fn new(ingest: Ingest, quiet: Duration) -> Arc<Self> {
        Arc::new(Self {
            ingest,
            quiet,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: carry on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session of `user` began; the returned guard ends it when dropped.
    pub fn enter(self: &Arc<Self>, user: &str) -> SessionGuard {
        *self.state().sessions.entry(user.to_owned()).or_default() += 1;
        SessionGuard {
            drops: self.clone(),
            user: user.to_owned(),
        }
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
        let temporary = is_temporary(name);
        if folder == Folder::Data && !temporary {
            return super::roster::send(&self.ingest, district, name, path, size).await;
        }
        // Names are reserved under the lock; the slow part (storage) runs without it.
        let (job_id, object, archive) = {
            let mut state = self.state();
            let batch = state
                .batches
                .entry(user.to_owned())
                .or_insert_with(|| Batch {
                    district: district.clone(),
                    job_id: JobId::new(),
                    files: Vec::new(),
                    objects: 0,
                    archives: 0,
                    last: Instant::now(),
                });
            batch.last = Instant::now();
            let object = batch.objects;
            let archive = batch.archives;
            batch.objects += 1;
            batch.archives += 1;
            (batch.job_id.clone(), object, archive)
        };
        let kind = if folder == Folder::Data {
            let key = keys::upload_file(district, &job_id, object);
            self.store(&key, path).await?;
            HeldKind::Roster { key }
        } else if ends_with(name, ".zip") {
            let key = keys::upload_archive(district, &job_id, archive);
            let mut parts = Parts::default();
            parts
                .add_archive(final_name(name), path, &key)
                .await
                .map_err(|e| DropError::Refused(refusal(e)))?;
            self.store(&key, path).await?;
            HeldKind::Archive { key, parts }
        } else if ends_with(name, ".csv") || ends_with(name, ".txt") {
            if size > MAX_MAPPING_BYTES {
                return Err(DropError::Refused(format!(
                    "{name}: a mapping is at most {MAX_MAPPING_BYTES} bytes"
                )));
            }
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| DropError::Storage(e.to_string()))?;
            HeldKind::Mapping { bytes }
        } else {
            let key = keys::upload_file(district, &job_id, object);
            self.store(&key, path).await?;
            HeldKind::Photo { key }
        };
        let held = Held {
            folder,
            name: name.to_owned(),
            size,
            kind,
        };
        // `None`: the drop was sealed while this file was being stored.
        let replaced = {
            let mut state = self.state();
            match state.batches.get_mut(user) {
                Some(batch) if batch.job_id == job_id => {
                    batch.last = Instant::now();
                    let replaced = take_named(batch, folder, name);
                    batch.files.push(held);
                    Ok(replaced)
                }
                _ => Err(held),
            }
        };
        let replaced = match replaced {
            Ok(replaced) => replaced,
            Err(held) => {
                self.forget(&[held]).await;
                return Err(DropError::Refused(
                    "the drop closed while the file was stored; upload it again".into(),
                ));
            }
        };
        self.forget(&replaced).await;
        Ok(())
    }

    async fn store(&self, key: &str, path: &Path) -> Result<(), DropError> {
        self.ingest
            .storage
            .put_file(key, path)
            .await
            .map_err(|e| DropError::Storage(e.to_string()))
    }

    /// Deletes what held files had stored (replaced or removed before their job).
    async fn forget(&self, files: &[Held]) {
        for file in files {
            if let Some(key) = file.kind.key()
                && let Err(error) = self.ingest.storage.delete(key).await
            {
                tracing::warn!(%error, key, "removing a replaced SFTP file");
            }
        }
    }

    /// The files held in `user`'s open drop in `folder`: `(name, size)`.
    pub fn listing(&self, user: &str, folder: Folder) -> Vec<(String, u64)> {
        let state = self.state();
        state
            .batches
            .get(user)
            .map(|b| {
                b.files
                    .iter()
                    .filter(|f| f.folder == folder)
                    .map(|f| (f.name.clone(), f.size))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The size of a held file, if `name` is one.
    pub fn size_of(&self, user: &str, folder: Folder, name: &str) -> Option<u64> {
        let state = self.state();
        state
            .batches
            .get(user)?
            .files
            .iter()
            .rev()
            .find(|f| f.folder == folder && f.name == name)
            .map(|f| f.size)
    }

    /// Removes a held file before its job is made. `false`: no such file.
    pub async fn remove(&self, user: &str, folder: Folder, name: &str) -> bool {
        let removed = {
            let mut state = self.state();
            match state.batches.get_mut(user) {
                Some(batch) => take_named(batch, folder, name),
                None => Vec::new(),
            }
        };
        let found = !removed.is_empty();
        self.forget(&removed).await;
        found
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
        let (replaced, roster) = {
            let mut state = self.state();
            let Some(batch) = state.batches.get_mut(user) else {
                return Ok(false);
            };
            let Some(at) = batch
                .files
                .iter()
                .rposition(|f| f.folder == folder && f.name == from)
            else {
                return Ok(false);
            };
            batch.last = Instant::now();
            let mut moved = batch.files.remove(at);
            let replaced = take_named(batch, folder, to);
            moved.name = to.to_owned();
            // A roster CSV with its final name goes to roster now; anything else waits.
            if matches!(moved.kind, HeldKind::Roster { .. }) && !is_temporary(to) {
                (replaced, Some((batch.district.clone(), moved)))
            } else {
                batch.files.push(moved);
                (replaced, None)
            }
        };
        self.forget(&replaced).await;
        if let Some((district, held)) = roster
            && let HeldKind::Roster { key } = &held.kind
        {
            super::roster::send_stored(&self.ingest, &district, &held.name, key, held.size).await?;
        }
        Ok(true)
    }

    /// Seals every drop that is due: no session open and quiet for the quiet period (or open
    /// too long). With `all`, every drop (ingest is stopping).
    async fn seal_due(&self, all: bool) {
        let due: Vec<Batch> = {
            let mut state = self.state();
            let State { batches, sessions } = &mut *state;
            let users: Vec<String> = batches
                .iter()
                .filter(|(user, batch)| {
                    let idle = batch.last.elapsed();
                    all || idle >= longest_open(self.quiet)
                        || (idle >= self.quiet && sessions.get(*user).copied().unwrap_or(0) == 0)
                })
                .map(|(user, _)| user.clone())
                .collect();
            users
                .iter()
                .filter_map(|user| batches.remove(user))
                .collect()
        };
        for batch in due {
            self.seal(batch).await;
        }
    }

    /// Makes one job of a drop, as an HTTP upload is made one.
    async fn seal(&self, batch: Batch) {
        let Batch {
            district,
            job_id,
            files,
            ..
        } = batch;
        let mut parts = Parts::default();
        let mut left_out = Vec::new();
        let mut mappings = Vec::new();
        for held in files {
            if is_temporary(&held.name) || held.folder == Folder::Data {
                left_out.push(held);
                continue;
            }
            match held.kind {
                HeldKind::Photo { key } => parts.add_file(
                    held.name,
                    Source::Object {
                        key,
                        size: held.size,
                    },
                ),
                HeldKind::Archive { parts: listed, .. } => parts.absorb(listed),
                HeldKind::Mapping { bytes } => mappings.push((held.name, bytes)),
                HeldKind::Roster { .. } => left_out.push(held),
            }
        }
        let mut warnings = Vec::new();
        if !left_out.is_empty() {
            let names: Vec<&str> = left_out.iter().map(|h| h.name.as_str()).collect();
            tracing::info!(%district, job = %job_id, files = ?names, "SFTP files left under temporary names were not imported");
            warnings.push(format!(
                "{} file(s) still under a temporary name were left out: {}",
                names.len(),
                names.join(", ")
            ));
            self.forget(&left_out).await;
        }
        // The newest mapping dropped is the one used, as a file of the same name replaces.
        if let Some(mapping) = mappings.pop() {
            for (older, _) in &mappings {
                warnings.push(format!("{older} was not used: {} came after it", mapping.0));
            }
            parts.mapping = Some(mapping);
        }
        if parts.photo_count() == 0 {
            tracing::info!(%district, job = %job_id, "an SFTP drop without photos made no job");
            self.forget_job(&district, &job_id).await;
            return;
        }
        let received = match parts.finish() {
            Ok(mut received) => {
                received.warnings.splice(0..0, warnings);
                received
            }
            Err(error) => {
                tracing::error!(%district, job = %job_id, error = %refusal(error), "an SFTP drop could not be made a job");
                self.forget_job(&district, &job_id).await;
                return;
            }
        };
        let options = ImportOptions {
            mode: ImportMode::Apply,
            replace: ReplacePolicy::Always,
        };
        let files = received.files.len();
        match crate::api::commit(
            &self.ingest,
            district.clone(),
            job_id.clone(),
            options,
            received,
        )
        .await
        {
            Ok(_) => tracing::info!(%district, job = %job_id, files, "SFTP drop became a job"),
            Err(error) => {
                tracing::error!(%district, job = %job_id, error = %refusal(error), "recording an SFTP drop failed")
            }
        }
    }

    async fn forget_job(&self, district: &DistrictId, job_id: &JobId) {
        let prefix = keys::upload_prefix(district, job_id);
        if let Err(error) = self
            .ingest
            .storage
            .delete_prefix(prefix.trim_end_matches('/'))
            .await
        {
            tracing::warn!(%error, job = %job_id, "removing an SFTP drop's objects");
        }
    }

    /// Seals drops as they fall due, and every drop at shutdown.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let tick = (self.quiet / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.seal_due(true).await;
                    return Ok(());
                }
                _ = tokio::time::sleep(tick) => self.seal_due(false).await,
            }
        }
    }
}

/// Takes every held file named `name` in `folder` out of the drop.
fn take_named(batch: &mut Batch, folder: Folder, name: &str) -> Vec<Held> {
    let (taken, kept) = std::mem::take(&mut batch.files)
        .into_iter()
        .partition(|f| f.folder == folder && f.name == name);
    batch.files = kept;
    taken
}

fn refusal(error: ApiError) -> String {
    match error {
        ApiError::Internal(error) => format!("{error:#}"),
        other => other.to_string(),
    }
}

/// One open session of an account; its drop may seal once the last one ends.
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
        let mut state = self.drops.state();
        if let Some(count) = state.sessions.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.sessions.remove(&self.user);
                // The quiet period runs from the end of the last session too.
                if let Some(batch) = state.batches.get_mut(&self.user) {
                    batch.last = Instant::now();
                }
            }
        }
    }
}
