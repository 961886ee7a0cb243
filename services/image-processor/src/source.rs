//! Reads a file's bytes from storage: a whole object, or one entry of an uploaded zip read by
//! range, then inflated with its size and CRC checked where the photo is decoded.

use std::io::Read;

use bytes::Bytes;
use pictureday_contract::events::Source;
use pictureday_platform::storage::{Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file itself is unusable; retrying cannot help.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

const STORED: u16 = 0;
const DEFLATED: u16 = 8;

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// A file's bytes as read from storage. A zip entry is still to be inflated and checked:
/// [`Fetched::into_bytes`] does that on the thread that decodes the photo, so a photo is handed
/// to the blocking pool once, not twice.
pub enum Fetched {
    Whole(Bytes),
    ZipEntry {
        raw: Bytes,
        method: u16,
        expected_size: u64,
        expected_crc: u32,
    },
}

impl Fetched {
    /// The file's bytes; a zip entry inflated (if deflated) and its size and CRC checked.
    /// Blocking: call it off the async runtime.
    pub fn into_bytes(self) -> Result<Bytes, SourceError> {
        match self {
            Fetched::Whole(bytes) => Ok(bytes),
            Fetched::ZipEntry {
                raw,
                method,
                expected_size,
                expected_crc,
            } => extract(raw, method, expected_size, expected_crc),
        }
    }
}

pub async fn read(
    storage: &Storage,
    source: &Source,
    max_bytes: u64,
) -> Result<Fetched, SourceError> {
    if source.size() > max_bytes {
        return Err(SourceError::Input(format!(
            "{} exceeds the {} file limit",
            megabytes(source.size()),
            megabytes(max_bytes)
        )));
    }
    match source {
        Source::Object { key, .. } => Ok(Fetched::Whole(storage.get(key).await?)),
        Source::ZipEntry {
            archive_key,
            data_offset,
            compressed_size,
            uncompressed_size,
            method,
            crc32,
            encrypted,
        } => {
            if *encrypted {
                return Err(SourceError::Input(
                    "the zip entry is encrypted; upload it without a password".into(),
                ));
            }
            if *method != STORED && *method != DEFLATED {
                return Err(SourceError::Input(format!(
                    "the zip entry uses compression method {method}; only deflate and store are supported"
                )));
            }
            let raw = storage
                .get_range(archive_key, *data_offset, *compressed_size)
                .await
                .map_err(past_end)?;
            Ok(Fetched::ZipEntry {
                raw,
                method: *method,
                expected_size: *uncompressed_size,
                expected_crc: *crc32,
            })
        }
    }
}

/// A range that ends past the archive is the entry's fault, not storage's: retrying cannot
/// help. Ingest refuses such entries when it lists the archive; this is for files listed
/// before it did.
fn past_end(error: StorageError) -> SourceError {
    match &error {
        StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof => {
            SourceError::Input(
                "the zip entry is damaged: its data runs past the end of the archive".into(),
            )
        }
        _ => SourceError::Storage(error),
    }
}

fn extract(
    raw: Bytes,
    method: u16,
    expected_size: u64,
    expected_crc: u32,
) -> Result<Bytes, SourceError> {
    let data = if method == STORED {
        raw
    } else {
        let capacity = usize::try_from(expected_size).unwrap_or(0);
        let mut out = Vec::with_capacity(capacity);
        // One byte more than declared, to notice an entry that inflates past its size.
        flate2::read::DeflateDecoder::new(&raw[..])
            .take(expected_size + 1)
            .read_to_end(&mut out)
            .map_err(|e| SourceError::Input(format!("the zip entry is corrupt: {e}")))?;
        Bytes::from(out)
    };
    if data.len() as u64 != expected_size {
        return Err(SourceError::Input(format!(
            "the zip entry is corrupt: {} bytes where the archive says {expected_size}",
            data.len()
        )));
    }
    if crc32fast::hash(&data) != expected_crc {
        return Err(SourceError::Input(
            "the zip entry is corrupt: its checksum does not match".into(),
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn deflate(data: &[u8]) -> anyhow::Result<Bytes> {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data)?;
        Ok(encoder.finish()?.into())
    }

    #[test]
    fn inflates_and_checks_size_and_crc() -> anyhow::Result<()> {
        let data = b"photo bytes photo bytes photo bytes";
        let crc = crc32fast::hash(data);
        let out = extract(deflate(data)?, DEFLATED, data.len() as u64, crc)?;
        assert_eq!(&out[..], data);
        let wrong_crc = extract(deflate(data)?, DEFLATED, data.len() as u64, crc ^ 1);
        assert!(matches!(wrong_crc, Err(SourceError::Input(m)) if m.contains("checksum")));
        let wrong_size = extract(deflate(data)?, DEFLATED, 5, crc);
        assert!(matches!(wrong_size, Err(SourceError::Input(m)) if m.contains("bytes where")));
        let garbage = extract(Bytes::from_static(b"\xff\xff\xff"), DEFLATED, 10, 0);
        assert!(matches!(garbage, Err(SourceError::Input(_))));
        Ok(())
    }
}
