//! Lists the photos in an uploaded zip without extracting it: each entry becomes a reference
//! (offset, sizes, method, CRC) that the image-processor reads by range. Folders, `__MACOSX/` and
//! dot-files are skipped; a CSV (or a Lifetouch `idlink.txt`) inside is the upload's mapping, and
//! a photographer's `INDEX.TXT` / `MASTER.TXT` its index. Other text files are not photos.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use zip::CompressionMethod;

use crate::pspa::IndexKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    pub name: String,
    pub data_offset: u64,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub method: u16,
    pub crc32: u32,
    pub encrypted: bool,
}

#[derive(Debug, Default)]
pub struct ArchiveListing {
    pub entries: Vec<ArchiveEntry>,
    /// The mapping CSV found inside, with its name.
    pub mapping: Option<(String, Vec<u8>)>,
    /// Photographers' index files (`INDEX.TXT`, `MASTER.TXT`), with their paths.
    pub indexes: Vec<(String, Vec<u8>)>,
    /// Other text files, which are not photos and were left out.
    pub text_files: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{name} is not a readable zip archive: {detail}")]
    Unreadable { name: String, detail: String },
    #[error("{name} has more than one CSV file ({first}, {second}); include at most one mapping")]
    TwoMappings {
        name: String,
        first: String,
        second: String,
    },
    #[error("{name} has more than {limit} entries")]
    TooManyEntries { name: String, limit: usize },
    #[error("the mapping or index {csv} in {name} is larger than {limit} bytes")]
    MappingTooLarge {
        name: String,
        csv: String,
        limit: u64,
    },
}

pub const MAX_ENTRIES: usize = 500_000;
pub const MAX_MAPPING_BYTES: u64 = 32 * 1024 * 1024;

// zip exposes no public method-to-code conversion; `Unsupported` carries the raw code of every
// method this build does not decode, which is exactly what is needed here.
#[allow(deprecated)]
fn method_code(method: CompressionMethod) -> u16 {
    match method {
        CompressionMethod::Stored => 0,
        CompressionMethod::Deflated => 8,
        CompressionMethod::Unsupported(code) => code,
        // Methods this build was not compiled to name: the image-processor rejects them by code.
        _ => u16::MAX,
    }
}

/// Whether an entry is not a photo the user meant to send: folders, macOS resource forks and
/// hidden files such as `.DS_Store`.
fn is_skipped(path: &str) -> bool {
    path.ends_with('/')
        || path
            .split(['/', '\\'])
            .any(|part| part.starts_with('.') || part == "__MACOSX")
}

/// Lists `path` (a zip on local disk); `name` is the upload's file name for messages.
pub fn list(path: &Path, name: &str) -> Result<ArchiveListing, ArchiveError> {
    let unreadable = |detail: String| ArchiveError::Unreadable {
        name: name.to_owned(),
        detail,
    };
    let file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| unreadable(e.to_string()))?;
    if zip.len() > MAX_ENTRIES {
        return Err(ArchiveError::TooManyEntries {
            name: name.to_owned(),
            limit: MAX_ENTRIES,
        });
    }
    let mut listing = ArchiveListing::default();
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| unreadable(e.to_string()))?;
        let entry_name = entry
            .name()
            .map_err(|e| unreadable(e.to_string()))?
            .into_owned();
        if entry.is_dir() || is_skipped(&entry_name) {
            continue;
        }
        let index_kind = crate::pspa::index_kind(&entry_name);
        let is_mapping = entry_name.to_ascii_lowercase().ends_with(".csv")
            || index_kind == Some(IndexKind::IdLink);
        if is_mapping || index_kind.is_some() {
            if is_mapping && let Some((first, _)) = &listing.mapping {
                return Err(ArchiveError::TwoMappings {
                    name: name.to_owned(),
                    first: first.clone(),
                    second: entry_name,
                });
            }
            if entry.size() > MAX_MAPPING_BYTES {
                return Err(ArchiveError::MappingTooLarge {
                    name: name.to_owned(),
                    csv: entry_name,
                    limit: MAX_MAPPING_BYTES,
                });
            }
            drop(entry);
            let mut content = Vec::new();
            zip.by_index(i)
                .map_err(|e| unreadable(e.to_string()))?
                .take(MAX_MAPPING_BYTES)
                .read_to_end(&mut content)
                .map_err(|e| unreadable(format!("reading {entry_name}: {e}")))?;
            if is_mapping {
                listing.mapping = Some((entry_name, content));
            } else {
                listing.indexes.push((entry_name, content));
            }
            continue;
        }
        if crate::pspa::is_text_file(&entry_name) {
            listing.text_files.push(entry_name);
            continue;
        }
        let data_offset = entry
            .data_start()
            .ok_or_else(|| unreadable(format!("no data offset for {entry_name}")))?;
        listing.entries.push(ArchiveEntry {
            data_offset,
            compressed_size: entry.compressed_size(),
            uncompressed_size: entry.size(),
            method: method_code(entry.compression()),
            crc32: entry.crc32(),
            encrypted: entry.encrypted(),
            name: entry_name,
        });
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use zip::write::SimpleFileOptions;

    use super::*;

    #[test]
    fn lists_photos_and_finds_the_mapping() -> anyhow::Result<()> {
        let mut file = tempfile::tempfile()?;
        {
            let mut zip = zip::ZipWriter::new(&mut file);
            let deflated = SimpleFileOptions::default();
            let stored = deflated.compression_method(CompressionMethod::Stored);
            zip.add_directory("grade5/", deflated)?;
            zip.start_file("grade5/1001.jpg", deflated)?;
            zip.write_all(b"first photo bytes")?;
            zip.start_file("1002.JPG", stored)?;
            zip.write_all(b"second")?;
            zip.start_file("__MACOSX/grade5/._1001.jpg", deflated)?;
            zip.write_all(b"resource fork")?;
            zip.start_file(".DS_Store", deflated)?;
            zip.write_all(b"finder")?;
            zip.start_file("map.csv", deflated)?;
            zip.write_all(b"S1,1002.JPG\n")?;
            zip.finish()?;
        }
        file.seek(SeekFrom::Start(0))?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.zip");
        std::io::copy(&mut file, &mut File::create(&path)?)?;

        let listing = list(&path, "photos.zip")?;
        let names: Vec<&str> = listing.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["grade5/1001.jpg", "1002.JPG"]);
        assert_eq!(
            listing.mapping,
            Some(("map.csv".to_owned(), b"S1,1002.JPG\n".to_vec()))
        );
        // The stored entry's bytes are exactly at its offset.
        let stored = &listing.entries[1];
        assert_eq!(stored.method, 0);
        let bytes = std::fs::read(&path)?;
        let start = usize::try_from(stored.data_offset)?;
        assert_eq!(&bytes[start..start + 6], b"second");
        assert_eq!(stored.crc32, crc32(b"second"));
        assert_eq!(listing.entries[0].method, 8);
        assert_eq!(listing.entries[0].uncompressed_size, 17);
        Ok(())
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut hasher = zip_crc::Hasher::new();
        hasher.update(data);
        hasher.finalize()
    }

    mod zip_crc {
        // The same CRC-32 the zip format uses, computed bit by bit for the test.
        pub struct Hasher(u32);
        impl Hasher {
            pub fn new() -> Self {
                Self(0xffff_ffff)
            }
            pub fn update(&mut self, data: &[u8]) {
                for &byte in data {
                    self.0 ^= u32::from(byte);
                    for _ in 0..8 {
                        let mask = (self.0 & 1).wrapping_neg();
                        self.0 = (self.0 >> 1) ^ (0xedb8_8320 & mask);
                    }
                }
            }
            pub fn finalize(self) -> u32 {
                !self.0
            }
        }
    }

    #[test]
    fn garbage_is_a_clear_error() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.zip");
        std::fs::write(&path, b"%PDF-1.4 not a zip")?;
        let error = list(&path, "photos.zip").err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.starts_with("photos.zip is not a readable zip archive")),
            "{error:?}"
        );
        Ok(())
    }
}
