//! Storage in a local directory: writes are renames, so a reader never sees half an object.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{StorageError, check_key};

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub async fn open(root: &Path) -> Result<Self, StorageError> {
        tokio::fs::create_dir_all(root)
            .await
            .map_err(|source| StorageError::Io {
                key: root.display().to_string(),
                source,
            })?;
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
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|source| StorageError::Io {
                    key: key.into(),
                    source,
                })?;
        }
        Ok(())
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
        Ok(())
    }

    pub(super) async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let path = self.path(key)?;
        self.ensure_parent(key, &path).await?;
        // Write then rename, so a reader never sees half an object.
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
        let io = |source| StorageError::Io {
            key: key.into(),
            source,
        };
        // On disk before it is renamed into place: an event saying the object exists is
        // published right after, and must not outlive it in a power cut.
        let written = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            tokio::io::AsyncWriteExt::write_all(&mut file, &bytes).await?;
            tokio::io::AsyncWriteExt::flush(&mut file).await?;
            file.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if written.is_err() {
            // A half-written object (a full disk) is not left behind.
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written.map_err(io)
    }

    pub(super) async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(bytes.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StorageError::NotFound { key: key.into() })
            }
            Err(source) => Err(StorageError::Io {
                key: key.into(),
                source,
            }),
        }
    }

    pub(super) async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, StorageError> {
        let path = self.path(key)?;
        let io = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::NotFound {
                StorageError::NotFound { key: key.into() }
            } else {
                StorageError::Io {
                    key: key.into(),
                    source,
                }
            }
        };
        let mut file = tokio::fs::File::open(&path).await.map_err(io)?;
        file.seek(SeekFrom::Start(offset)).await.map_err(io)?;
        let capacity =
            usize::try_from(len).map_err(|_| StorageError::InvalidKey { key: key.into() })?;
        let mut buf = vec![0u8; capacity];
        file.read_exact(&mut buf).await.map_err(io)?;
        Ok(buf.into())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Storage, StorageConfig};
    use super::*;

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
