//! Stored objects copied back to local files in pieces, so memory stays flat for any size: a
//! zip is read where it lies on disk (its central directory at the end, entries by offset).

use pictureday_platform::storage::Storage;
use tokio::io::AsyncWriteExt;

/// Objects are read this much at a time.
const PIECE: u64 = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("storage failed: {0}")]
    Storage(#[from] pictureday_platform::storage::StorageError),
    #[error("storage returned {got} of the {size} bytes of {key}")]
    Short { key: String, got: u64, size: u64 },
    #[error("writing the spool file failed: {0}")]
    Spool(#[from] std::io::Error),
}

/// Appends the `size` bytes of object `key` to `out`.
pub async fn append_object(
    storage: &Storage,
    key: &str,
    size: u64,
    out: &mut tokio::fs::File,
) -> Result<(), CopyError> {
    let mut offset = 0;
    while offset < size {
        let len = PIECE.min(size - offset);
        let piece = storage.get_range(key, offset, len).await?;
        if piece.is_empty() {
            return Err(CopyError::Short {
                key: key.to_owned(),
                got: offset,
                size,
            });
        }
        out.write_all(&piece).await?;
        offset += piece.len() as u64;
    }
    Ok(())
}
