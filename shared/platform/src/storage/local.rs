//! Storage in a local directory: writes are renames, so a reader never sees half an object.

use std::io::SeekFrom;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};

use bytes::Bytes;

use super::{StorageError, check_key};

/// Objects and their folders are readable by the service's own user only.
const PRIVATE_FILE: u32 = 0o600;
const PRIVATE_DIR: u32 = 0o700;

/// `create_dir_all`, with every folder it makes private.
async fn private_dirs(path: &Path) -> std::io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true).mode(PRIVATE_DIR);
    builder.create(path).await
}

/// The files below `dir`, counted (what a deletion removes).
async fn count_files(dir: &Path) -> std::io::Result<u64> {
    let mut count = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_type().await?.is_dir() {
                pending.push(entry.path());
            } else {
                count += 1;
            }
        }
    }
    Ok(count)
}

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub async fn open(root: &Path) -> Result<Self, StorageError> {
        let io = |source| StorageError::Io {
            key: root.display().to_string(),
            source,
        };
        private_dirs(root).await.map_err(io)?;
        // Photos of children: only the service's own user may list or read them.
        tokio::fs::set_permissions(root, std::fs::Permissions::from_mode(PRIVATE_DIR))
            .await
            .map_err(io)?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// Writes, syncs and removes a small file beside the objects (a hidden name no key can
    /// have).
    pub(super) async fn probe(&self) -> Result<(), StorageError> {
        let path = self.root.join(format!(".probe-{}", std::process::id()));
        let io = |source| StorageError::Io {
            key: ".probe".into(),
            source,
        };
        let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
        // tokio's file writes in the background: the write's own error (a full disk) comes
        // back from flush, not from write_all or sync_all.
        let written = async {
            tokio::io::AsyncWriteExt::write_all(&mut file, &[0u8; 4096]).await?;
            tokio::io::AsyncWriteExt::flush(&mut file).await?;
            file.sync_all().await
        }
        .await;
        let synced = written;
        let _ = tokio::fs::remove_file(&path).await;
        synced.map_err(io)
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    async fn ensure_parent(&self, key: &str, path: &Path) -> Result<(), StorageError> {
        if let Some(parent) = path.parent() {
            private_dirs(parent)
                .await
                .map_err(|source| StorageError::Io {
                    key: key.into(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Deletes every object under `prefix/`; returns how many there were.
    pub(super) async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let dir = self.path(prefix)?;
        let io = |source| StorageError::Io {
            key: prefix.into(),
            source,
        };
        let count = match count_files(&dir).await {
            Ok(count) => count,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(e)),
        };
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(count),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io(e)),
        }
    }

    /// Deletes one object; `false` when it was not there.
    pub(super) async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StorageError::Io {
                key: key.into(),
                source,
            }),
        }
    }

    pub(super) async fn put_file(&self, key: &str, source_path: &Path) -> Result<(), StorageError> {
        let path = self.path(key)?;
        self.ensure_parent(key, &path).await?;
        let io = |source| StorageError::Io {
            key: key.into(),
            source,
        };
        // The spool directory lives on the same file system by default, making this a rename;
        // across file systems it falls back to a copy.
        if tokio::fs::rename(source_path, &path).await.is_err() {
            tokio::fs::copy(source_path, &path).await.map_err(io)?;
            tokio::fs::remove_file(source_path).await.map_err(io)?;
        }
        // A spooled file was made with the process's umask; an object is its owner's alone.
        tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(PRIVATE_FILE))
            .await
            .map_err(io)
    }

    pub(super) async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let path = self.path(key)?;
        // One blocking task for the whole write: each `tokio::fs` call is a hand-off to a
        // blocking thread and back, and a write was six of them.
        blocking(move || write_object(&path, &bytes))
            .await
            .map_err(|source| StorageError::Io {
                key: key.into(),
                source,
            })
    }

    pub(super) async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = self.path(key)?;
        blocking(move || std::fs::read(&path).map(Bytes::from))
            .await
            .map_err(read_error(key))
    }

    pub(super) async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, StorageError> {
        let path = self.path(key)?;
        let capacity =
            usize::try_from(len).map_err(|_| StorageError::InvalidKey { key: key.into() })?;
        blocking(move || {
            let mut file = std::fs::File::open(&path)?;
            file.seek(SeekFrom::Start(offset))?;
            let mut buf = vec![0u8; capacity];
            file.read_exact(&mut buf)?;
            Ok(Bytes::from(buf))
        })
        .await
        .map_err(read_error(key))
    }
}

/// Runs file work on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
}

/// A failed read: a missing object is `NotFound`, anything else an I/O failure.
fn read_error(key: &str) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            StorageError::NotFound { key: key.into() }
        } else {
            StorageError::Io {
                key: key.into(),
                source,
            }
        }
    }
}

/// Writes an object beside its final name, syncs it and renames it into place, so a reader never
/// sees half an object: an event saying the object exists is published right after, and must
/// not outlive it in a power cut. A half-written object (a full disk) is not left behind.
fn write_object(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR)
            .create(parent)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::super::{Storage, StorageConfig};
    use super::*;

    #[tokio::test]
    async fn objects_are_private_and_a_prefix_is_deleted_whole() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("photos");
        let store = Storage::open(&StorageConfig::Local { root: root.clone() }).await?;
        store
            .put_bytes("d/uploads/j1/files/0", Bytes::from_static(b"a"))
            .await?;
        let spooled = dir.path().join("spooled");
        std::fs::write(&spooled, b"b")?;
        store.put_file("d/uploads/j1/files/1", &spooled).await?;
        store
            .put_bytes("d/uploads/j2/files/0", Bytes::from_static(b"c"))
            .await?;
        let mode = |path: &Path| -> anyhow::Result<u32> {
            Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
        };
        assert_eq!(mode(&root)?, PRIVATE_DIR);
        assert_eq!(mode(&root.join("d/uploads/j1"))?, PRIVATE_DIR);
        assert_eq!(mode(&root.join("d/uploads/j1/files/0"))?, PRIVATE_FILE);
        assert_eq!(mode(&root.join("d/uploads/j1/files/1"))?, PRIVATE_FILE);

        assert_eq!(store.delete_prefix("d/uploads/j1").await?, 2);
        assert!(!root.join("d/uploads/j1").exists());
        assert_eq!(
            store.get("d/uploads/j2/files/0").await?,
            Bytes::from_static(b"c")
        );
        assert_eq!(
            store.delete_prefix("d/uploads/j1").await?,
            0,
            "nothing left"
        );
        assert!(store.delete_prefix("d/../x").await.is_err());
        Ok(())
    }

    #[tokio::test]
    async fn local_store_round_trips_and_refuses_escapes() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Storage::open(&StorageConfig::Local {
            root: dir.path().into(),
        })
        .await?;
        store
            .put_bytes("d/a/b.jpg", Bytes::from_static(b"0123456789"))
            .await?;
        assert_eq!(&store.get("d/a/b.jpg").await?[..], b"0123456789");
        assert_eq!(&store.get_range("d/a/b.jpg", 3, 4).await?[..], b"3456");
        for key in ["../x", "/etc/passwd", "d/../x", "d//x", "d/.spool/x", ""] {
            assert!(matches!(
                store.get(key).await,
                Err(StorageError::InvalidKey { .. })
            ));
        }
        assert!(matches!(
            store.get("d/missing").await,
            Err(StorageError::NotFound { .. })
        ));
        Ok(())
    }
}
