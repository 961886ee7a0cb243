//! Object storage behind one small interface: a local directory or an S3 bucket. Keys are always
//! tenant-prefixed (`<district>/...`), so one district's objects can never be addressed through
//! another's.

mod local;
mod s3;

use std::path::{Path, PathBuf};

use bytes::Bytes;

pub use local::LocalStore;
pub use s3::{S3Config, S3Credentials, S3Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    Local { root: PathBuf },
    S3(S3Config),
}

impl StorageConfig {
    /// A directory, or `s3://bucket/prefix`. Where an S3 bucket is and how to reach it (endpoint,
    /// region, addressing style, credentials) is not part of the value; see [`S3Config`].
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("empty".into());
        }
        if let Some(rest) = raw.strip_prefix("s3://") {
            return S3Config::parse(rest)
                .map(StorageConfig::S3)
                .map_err(|reason| format!("{raw:?}: {reason}"));
        }
        if raw.contains("://") {
            return Err(format!(
                "{raw:?}: a directory or s3://bucket/prefix was expected"
            ));
        }
        Ok(StorageConfig::Local {
            root: PathBuf::from(raw),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {key} not found")]
    NotFound { key: String },
    #[error("invalid object key {key:?}")]
    InvalidKey { key: String },
    #[error("storage I/O on {key}: {source}")]
    Io { key: String, source: std::io::Error },
    #[error("bucket {bucket:?} does not exist")]
    NoBucket { bucket: String },
    #[error("S3 request for {key}: {message}")]
    S3 { key: String, message: String },
}

impl StorageError {
    /// Whether the store itself is unavailable (unreachable, out of space, failing I/O), as
    /// opposed to a key that is wrong or absent.
    pub fn is_outage(&self) -> bool {
        match self {
            StorageError::Io { source, .. } => source.kind() != std::io::ErrorKind::NotFound,
            StorageError::S3 { .. } => true,
            StorageError::NotFound { .. }
            | StorageError::InvalidKey { .. }
            | StorageError::NoBucket { .. } => false,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Storage {
    Local(LocalStore),
    S3(S3Store),
}

impl Storage {
    /// Opens storage, checking that it is usable (an S3 bucket must exist and be reachable).
    pub async fn open(config: &StorageConfig) -> Result<Self, StorageError> {
        match config {
            StorageConfig::Local { root } => Ok(Storage::Local(LocalStore::open(root).await?)),
            StorageConfig::S3(config) => Ok(Storage::S3(S3Store::open(config).await?)),
        }
    }

    /// Moves a finished local file (an upload spooled to disk) into storage under `key`; the
    /// local file is gone afterwards.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<(), StorageError> {
        match self {
            Storage::Local(store) => store.put_file(key, path).await,
            Storage::S3(store) => store.put_file(key, path).await,
        }
    }

    pub async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        match self {
            Storage::Local(store) => store.put_bytes(key, bytes).await,
            Storage::S3(store) => store.put_bytes(key, bytes).await,
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        match self {
            Storage::Local(store) => store.get(key).await,
            Storage::S3(store) => store.get(key).await,
        }
    }

    /// Whether storage can be written now: on local disk a small file is written and removed (a
    /// full disk fails here), on S3 the bucket must answer.
    pub async fn probe(&self) -> Result<(), String> {
        let probe = async {
            match self {
                Storage::Local(store) => store.probe().await,
                Storage::S3(store) => store.probe().await,
            }
        };
        match tokio::time::timeout(std::time::Duration::from_secs(3), probe).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("did not answer within 3 s".into()),
        }
    }

    /// Deletes every object under `prefix` (a key's leading folders, without the final `/`:
    /// `springfield/uploads/<job>`); returns how many were deleted.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        match self {
            Storage::Local(store) => store.delete_prefix(prefix).await,
            Storage::S3(store) => store.delete_prefix(prefix).await,
        }
    }

    /// Deletes one object; returns whether it was there (deleting what is gone is no error, so a
    /// deletion can be retried).
    pub async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        match self {
            Storage::Local(store) => store.delete(key).await,
            Storage::S3(store) => store.delete(key).await,
        }
    }

    /// Reads `len` bytes at `offset` (one entry of a stored zip).
    pub async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StorageError> {
        match self {
            Storage::Local(store) => store.get_range(key, offset, len).await,
            Storage::S3(store) => store.get_range(key, offset, len).await,
        }
    }
}

/// Refuses keys that could escape a district's prefix or collide with working files: no empty,
/// `.`/`..` or hidden segments, no leading slash.
fn check_key(key: &str) -> Result<(), StorageError> {
    let safe = !key.is_empty()
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.starts_with('.'));
    if safe {
        Ok(())
    } else {
        Err(StorageError::InvalidKey { key: key.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directories_and_buckets() {
        assert_eq!(
            StorageConfig::parse("/srv/photos"),
            Ok(StorageConfig::Local {
                root: "/srv/photos".into()
            })
        );
        let Ok(StorageConfig::S3(s3)) = StorageConfig::parse("s3://photos/prod/pictureday/") else {
            panic!("not S3");
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("photos", "prod/pictureday")
        );
        let Ok(StorageConfig::S3(s3)) = StorageConfig::parse("s3://photos") else {
            panic!("not S3");
        };
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("photos", ""));
        for bad in [
            "",
            "s3://",
            "s3:///prefix",
            "s3://Bad_Bucket",
            "s3://bucket/a/../c",
            "gs://x",
        ] {
            assert!(StorageConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
