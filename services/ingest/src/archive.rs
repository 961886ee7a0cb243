//! Lists the photos in an uploaded zip without extracting it: each entry becomes a reference
//! (offset, sizes, method, CRC) that the image-processor reads by range. Folders, `__MACOSX/` and
//! dot-files are skipped; a CSV (or a Lifetouch `idlink.txt`) inside is the upload's mapping, and
//! a photographer's `INDEX.TXT` / `MASTER.TXT` its index. Other text files are not photos.
//!
//! Every other entry gets an outcome: one with an unsafe path (`../x.jpg`, `/x.jpg`, `C:x.jpg`)
//! or damaged data is listed as rejected at once; two entries with one name are both listed, in
//! archive order, so the later one wins as two photos of one person do. Entries whose data
//! overlap (a zip bomb that inflates the same bytes again and again) refuse the whole archive.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use pictureday_platform::text::printable;

use crate::pspa::IndexKind;
use crate::zipdir::{self, DirectoryError, RawEntry};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    pub name: String,
    pub data_offset: u64,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub method: u16,
    pub crc32: u32,
    pub encrypted: bool,
    /// Why the entry is rejected without being read (an unsafe path, damaged data).
    pub rejected: Option<String>,
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
    /// What the uploader should know about the archive (entries sharing a name).
    pub warnings: Vec<String>,
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
    #[error(
        "{name} is refused: entries share the same compressed data ({}), which no zip tool \
         writes; it would be inflated again and again",
        .pairs.join("; ")
    )]
    Overlapping { name: String, pairs: Vec<String> },
}

pub const MAX_ENTRIES: usize = 500_000;
pub const MAX_MAPPING_BYTES: u64 = 32 * 1024 * 1024;
const STORED: u16 = 0;
const DEFLATED: u16 = 8;
/// Overlapping pairs named in the refusal; one is proof enough.
const NAMED_OVERLAPS: usize = 5;

/// Whether an entry is not a photo the user meant to send: folders, macOS resource forks and
/// hidden files such as `.DS_Store`.
fn is_skipped(path: &str) -> bool {
    path.ends_with('/')
        || path
            .split(['/', '\\'])
            .any(|part| part.starts_with('.') || part == "__MACOSX")
}

/// A path that would leave the folder it is extracted into: a parent segment, an absolute path
/// or a Windows drive. No such file is ever written, but a photographer's tool that made it is
/// broken, and the uploader is told which entries were not used.
pub fn is_unsafe_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    drive
        || path.starts_with(['/', '\\'])
        || path.contains('\0')
        || path.split(['/', '\\']).any(|part| part == "..")
}

/// Lists `path` (a zip on local disk); `name` is the upload's file name for messages.
pub fn list(path: &Path, name: &str) -> Result<ArchiveListing, ArchiveError> {
    let unreadable = |detail: String| ArchiveError::Unreadable {
        name: name.to_owned(),
        detail,
    };
    let mut file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let raw = zipdir::read(&mut file, MAX_ENTRIES).map_err(|e| match e {
        DirectoryError::TooManyEntries(limit) => ArchiveError::TooManyEntries {
            name: name.to_owned(),
            limit,
        },
        other => unreadable(other.to_string()),
    })?;
    check_overlaps(&raw, name)?;
    let mut listing = ArchiveListing::default();
    for entry in raw {
        if entry.is_dir() {
            continue;
        }
        if is_unsafe_path(&entry.name) {
            listing
                .entries
                .push(rejected(entry, |n| format!("unsafe path: {n}")));
            continue;
        }
        if is_skipped(&entry.name) {
            continue;
        }
        let index_kind = crate::pspa::index_kind(&entry.name);
        let is_mapping = entry.name.to_ascii_lowercase().ends_with(".csv")
            || index_kind == Some(IndexKind::IdLink);
        if is_mapping || index_kind.is_some() {
            if is_mapping && let Some((first, _)) = &listing.mapping {
                return Err(ArchiveError::TwoMappings {
                    name: name.to_owned(),
                    first: first.clone(),
                    second: entry.name,
                });
            }
            if entry.uncompressed_size > MAX_MAPPING_BYTES {
                return Err(ArchiveError::MappingTooLarge {
                    name: name.to_owned(),
                    csv: entry.name,
                    limit: MAX_MAPPING_BYTES,
                });
            }
            let content = read_small(&mut file, &entry)
                .map_err(|detail| unreadable(format!("{}: {detail}", entry.name)))?;
            if is_mapping {
                listing.mapping = Some((entry.name, content));
            } else {
                listing.indexes.push((entry.name, content));
            }
            continue;
        }
        if crate::pspa::is_text_file(&entry.name) {
            listing.text_files.push(entry.name);
            continue;
        }
        if let Some(damage) = entry.damage.clone() {
            listing.entries.push(rejected(entry, |n| {
                format!("{name} entry {n} is damaged: {damage}")
            }));
            continue;
        }
        listing.entries.push(ArchiveEntry {
            data_offset: entry.data_offset.unwrap_or_default(),
            compressed_size: entry.compressed_size,
            uncompressed_size: entry.uncompressed_size,
            method: entry.method,
            crc32: entry.crc32,
            encrypted: entry.encrypted,
            name: printable(&entry.name),
            rejected: None,
        });
    }
    listing.warnings = duplicate_warnings(&listing.entries, name);
    Ok(listing)
}

/// An entry listed only to be rejected: nothing of it is ever read.
fn rejected(entry: RawEntry, reason: impl Fn(&str) -> String) -> ArchiveEntry {
    let name = printable(&entry.name);
    ArchiveEntry {
        rejected: Some(reason(&name)),
        name,
        data_offset: 0,
        compressed_size: 0,
        uncompressed_size: 0,
        method: entry.method,
        crc32: entry.crc32,
        encrypted: entry.encrypted,
    }
}

/// Refuses an archive whose entries' bytes overlap: each entry's local header and data must
/// lie apart from every other's, as every zip tool writes them.
fn check_overlaps(entries: &[RawEntry], name: &str) -> Result<(), ArchiveError> {
    let mut spans: Vec<(u64, u64, &str)> = entries
        .iter()
        .filter_map(|e| e.span().map(|(start, end)| (start, end, e.name.as_str())))
        .collect();
    spans.sort_unstable();
    let mut pairs = Vec::new();
    let mut furthest: Option<(u64, &str)> = None;
    for &(start, end, entry) in &spans {
        if let Some((reach, by)) = furthest
            && start < reach
        {
            pairs.push(format!("{by} and {entry}"));
        }
        if furthest.is_none_or(|(reach, _)| end > reach) {
            furthest = Some((end, entry));
        }
    }
    if pairs.is_empty() {
        return Ok(());
    }
    let more = pairs.len().saturating_sub(NAMED_OVERLAPS);
    pairs.truncate(NAMED_OVERLAPS);
    if more > 0 {
        pairs.push(format!("and {more} more"));
    }
    Err(ArchiveError::Overlapping {
        name: name.to_owned(),
        pairs,
    })
}

/// One warning naming the paths more than one entry has; each is processed in archive order.
fn duplicate_warnings(entries: &[ArchiveEntry], name: &str) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut order = Vec::new();
    for entry in entries {
        let count = counts.entry(entry.name.as_str()).or_default();
        *count += 1;
        if *count == 2 {
            order.push(entry.name.as_str());
        }
    }
    if order.is_empty() {
        return Vec::new();
    }
    let shown: Vec<String> = order
        .iter()
        .take(5)
        .map(|n| format!("{n} ({}×)", counts.get(n).copied().unwrap_or(2)))
        .collect();
    let more = match order.len().saturating_sub(shown.len()) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    vec![format!(
        "{name} has several entries with one name: {}{more}; each is processed in archive order \
         and the last one is used",
        shown.join(", ")
    )]
}

/// The content of a small entry (a mapping or index), inflated and checked.
fn read_small(file: &mut File, entry: &RawEntry) -> Result<Vec<u8>, String> {
    use std::io::{Seek, SeekFrom};
    if let Some(damage) = &entry.damage {
        return Err(format!("it is damaged: {damage}"));
    }
    if entry.encrypted {
        return Err("it is encrypted".into());
    }
    let offset = entry.data_offset.ok_or("it has no data")?;
    // Text compresses well, but not below a thousandth; more is not a mapping.
    if entry.compressed_size > MAX_MAPPING_BYTES {
        return Err(format!("it is larger than {MAX_MAPPING_BYTES} bytes"));
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| e.to_string())?;
    let raw = (&mut *file).take(entry.compressed_size);
    let mut content = Vec::new();
    let read = match entry.method {
        STORED => raw.take(MAX_MAPPING_BYTES).read_to_end(&mut content),
        DEFLATED => flate2::read::DeflateDecoder::new(raw)
            .take(MAX_MAPPING_BYTES + 1)
            .read_to_end(&mut content),
        other => return Err(format!("it uses compression method {other}")),
    };
    read.map_err(|e| format!("it is corrupt: {e}"))?;
    if content.len() as u64 != entry.uncompressed_size || crc32fast::hash(&content) != entry.crc32 {
        return Err("it is corrupt: its size or checksum does not match".into());
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use zip::CompressionMethod;
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
    fn unsafe_paths_are_recognised() {
        for path in [
            "../../x.jpg",
            "..\\x.jpg",
            "a/../../b.jpg",
            "/etc/x.jpg",
            "\\server\\x.jpg",
            "C:x.jpg",
            "c:/photos/x.jpg",
        ] {
            assert!(is_unsafe_path(path), "{path}");
        }
        for path in [
            "x.jpg",
            "grade5/x.jpg",
            "grade5\\x.jpg",
            "..x.jpg",
            "a..b/c.jpg",
        ] {
            assert!(!is_unsafe_path(path), "{path}");
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
