//! Receives a multipart upload part by part, streaming every file and archive to disk, so memory
//! stays flat however large the upload is. Nothing reaches storage until the whole request has
//! been read and accepted: a refused, over-limit or aborted upload leaves nothing behind but its
//! spool directory, which the caller removes.

use crate::warnings::bounded;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use axum::extract::Multipart;
use axum::extract::multipart::Field;
use pictureday_contract::DistrictId;
use pictureday_contract::events::{MappedKey, Source};
use pictureday_contract::keys;
use pictureday_platform::http::ApiError;
use pictureday_platform::storage::Storage;
use pictureday_platform::text::printable;
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::archive::{self, MAX_MAPPING_BYTES};
use crate::jobs::NewFile;
use crate::mapping::{self, Mapping, base_name};
use crate::pspa::{self, Assigned};

/// What one upload brought, stored and ready to record as a job.
#[derive(Debug, Default)]
pub struct Received {
    pub files: Vec<NewFile>,
    pub has_mapping: bool,
    /// The photographer's index the files are matched by, if the upload had one.
    pub index: Option<String>,
    pub warnings: Vec<String>,
    /// Spooled files and the keys they are stored under once the upload is accepted.
    pub pending: Vec<(String, PathBuf)>,
}

impl Received {
    /// Moves every spooled file into storage.
    pub async fn store(&self, storage: &Storage) -> Result<(), ApiError> {
        for (key, path) in &self.pending {
            storage.put_file(key, path).await?;
        }
        Ok(())
    }
}

/// Where the upload is going.
pub struct Destination<'a> {
    pub district: &'a DistrictId,
    pub job_id: &'a str,
    pub spool: &'a Path,
    /// Largest photo file accepted, as the image-processor will read it.
    pub max_file_bytes: u64,
    /// Largest request accepted, all parts together.
    pub max_upload_bytes: u64,
}

/// What is left of the request's size limit as parts arrive.
struct Budget {
    left: u64,
    limit: u64,
}

impl Budget {
    fn take(&mut self, bytes: u64) -> Result<(), ApiError> {
        self.left = self.left.checked_sub(bytes).ok_or_else(|| {
            ApiError::PayloadTooLarge(format!(
                "the upload is larger than the {} limit for one request; send it in parts",
                size_text(self.limit)
            ))
        })?;
        Ok(())
    }
}

/// Sizes as people read them off a file manager (1 MB = 1024 × 1024 bytes), as the imaging
/// limits are worded.
pub fn size_text(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    const GB: u64 = 1024 * MB;
    let one_decimal = |value: f64| {
        let text = format!("{value:.1}");
        text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
    };
    if bytes >= GB {
        format!("{} GB", one_decimal(bytes as f64 / GB as f64))
    } else if bytes >= MB {
        format!("{} MB", one_decimal(bytes as f64 / MB as f64))
    } else {
        format!("{bytes} bytes")
    }
}

fn interrupted(error: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("the upload could not be read: {error}"))
}

/// Tokio writes a file on a blocking thread per call, and an upload arrives in chunks of a few
/// KB: a spool file is written in pieces this large, one hand-off each (tokio's own limit).
const SPOOL_WRITE_BYTES: usize = 2 << 20;

/// A new spool file, written in large pieces.
pub async fn spool_file(path: &Path) -> Result<BufWriter<tokio::fs::File>, ApiError> {
    let file = tokio::fs::File::create(path).await.map_err(ApiError::io)?;
    Ok(BufWriter::with_capacity(SPOOL_WRITE_BYTES, file))
}

/// Streams a part to `path`, refusing it as soon as it passes `file_limit` (a photo part:
/// its name and the limit) or the request's budget.
async fn spool(
    field: &mut Field<'_>,
    path: &Path,
    file_limit: Option<(&str, u64)>,
    budget: &mut Budget,
) -> Result<u64, ApiError> {
    let mut file = spool_file(path).await?;
    let mut size = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(interrupted)? {
        size += chunk.len() as u64;
        budget.take(chunk.len() as u64)?;
        if let Some((name, limit)) = file_limit
            && size > limit
        {
            return Err(ApiError::PayloadTooLarge(format!(
                "{name} is larger than the {} limit for one photo",
                size_text(limit)
            )));
        }
        file.write_all(&chunk).await.map_err(ApiError::io)?;
    }
    file.flush().await.map_err(ApiError::io)?;
    Ok(size)
}

async fn read_small(
    field: &mut Field<'_>,
    what: &str,
    budget: &mut Budget,
) -> Result<Vec<u8>, ApiError> {
    let mut data = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(interrupted)? {
        budget.take(chunk.len() as u64)?;
        data.extend_from_slice(&chunk);
        if data.len() as u64 > MAX_MAPPING_BYTES {
            return Err(ApiError::PayloadTooLarge(format!(
                "{what} is larger than {MAX_MAPPING_BYTES} bytes"
            )));
        }
    }
    Ok(data)
}

/// A file part's name as the user knows it: its base name, without any client path.
fn part_file_name(field: &Field<'_>, part: usize) -> Result<String, ApiError> {
    let raw = field.file_name().unwrap_or_default();
    let name = base_name(raw).trim();
    if name.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "form part {part} (files) has no file name"
        )));
    }
    Ok(printable(name))
}

/// What an upload brought so far, before its mapping or index is applied: the HTTP form's parts
/// or the files an SFTP drop collected.
#[derive(Debug, Default, Clone)]
pub struct Parts {
    files: Vec<(String, Source, Option<String>)>,
    /// Spooled files and the keys they are stored under once the upload is accepted.
    pub pending: Vec<(String, PathBuf)>,
    archive_warnings: Vec<String>,
    /// A mapping sent beside the photos (not inside an archive).
    pub mapping: Option<(String, Vec<u8>)>,
    archive_mappings: Vec<(String, Vec<u8>)>,
    indexes: Vec<(String, Vec<u8>)>,
    text_files: Vec<String>,
}

impl Parts {
    /// A photo file, stored (or to be stored) as `source`.
    pub fn add_file(&mut self, name: String, source: Source) {
        self.files.push((name, source, None));
    }

    /// Adds what another set of parts holds (an archive listed on its own).
    pub fn absorb(&mut self, other: Parts) {
        self.files.extend(other.files);
        self.pending.extend(other.pending);
        self.archive_warnings.extend(other.archive_warnings);
        self.archive_mappings.extend(other.archive_mappings);
        self.indexes.extend(other.indexes);
        self.text_files.extend(other.text_files);
        if other.mapping.is_some() {
            self.mapping = other.mapping;
        }
    }

    pub fn photo_count(&self) -> usize {
        self.files.len()
    }

    /// Reads the central directory of the zip at `path` (stored as `archive_key`): its photos
    /// become files, its mapping and indexes are kept for [`Parts::finish`].
    pub async fn add_archive(
        &mut self,
        name: &str,
        path: &Path,
        archive_key: &str,
    ) -> Result<(), ApiError> {
        let (listed_path, listed_name) = (path.to_owned(), name.to_owned());
        let listing =
            tokio::task::spawn_blocking(move || archive::list(&listed_path, &listed_name))
                .await
                .map_err(ApiError::internal)?
                .map_err(|e| ApiError::Unprocessable {
                    message: e.to_string(),
                    details: vec![],
                })?;
        self.archive_warnings.extend(listing.warnings);
        if let Some(found) = listing.mapping {
            self.archive_mappings.push(found);
        }
        self.indexes.extend(listing.indexes);
        self.text_files.extend(listing.text_files);
        self.files.extend(listing.entries.into_iter().map(|e| {
            (
                e.name,
                Source::ZipEntry {
                    archive_key: archive_key.to_owned(),
                    data_offset: e.data_offset,
                    compressed_size: e.compressed_size,
                    uncompressed_size: e.uncompressed_size,
                    method: e.method,
                    crc32: e.crc32,
                    encrypted: e.encrypted,
                },
                e.rejected,
            )
        }));
        Ok(())
    }

    /// Every file rejected for `reason`: parts that cannot be one import (a drop whose zips
    /// hold two mappings) still give every file its outcome, saying why.
    pub fn reject_all(self, reason: &str) -> Received {
        Received {
            files: self
                .files
                .into_iter()
                .map(|(name, source, _)| NewFile {
                    rejected: Some(reason.to_owned()),
                    ..NewFile::new(name, source)
                })
                .collect(),
            warnings: vec![reason.to_owned()],
            pending: self.pending,
            ..Received::default()
        }
    }

    /// Applies the mapping or the photographer's index to the files.
    pub fn finish(self) -> Result<Received, ApiError> {
        let Parts {
            files,
            pending,
            archive_warnings,
            mapping: form_mapping,
            mut archive_mappings,
            indexes,
            text_files,
        } = self;
        if files.is_empty() {
            return Err(ApiError::Unprocessable {
                message: "the upload has no photos: send files parts or an archive of images"
                    .into(),
                details: vec![],
            });
        }
        let mut warnings = archive_warnings;
        if !text_files.is_empty() {
            warnings.push(format!(
                "{} text file(s) are not photos and were left out: {}",
                text_files.len(),
                names_list(&text_files)
            ));
        }
        let chosen = match (form_mapping, archive_mappings.len()) {
            (Some(form), found) => {
                for (name, _) in archive_mappings.iter().take(found) {
                    warnings.push(format!(
                        "{name} inside the archive was ignored: a mapping was uploaded with it"
                    ));
                }
                Some(form)
            }
            (None, 0) => None,
            (None, 1) => archive_mappings.pop(),
            (None, _) => {
                let names: Vec<&str> = archive_mappings.iter().map(|(n, _)| n.as_str()).collect();
                return Err(ApiError::Unprocessable {
                    message: format!(
                        "the archives hold {} mappings ({}); send one",
                        names.len(),
                        names.join(", ")
                    ),
                    details: vec![],
                });
            }
        };
        let mut new_files: Vec<NewFile> = files
            .into_iter()
            .map(|(name, source, rejected)| NewFile {
                rejected,
                ..NewFile::new(name, source)
            })
            .collect();
        let mut index = None;
        if let Some((name, data)) = &chosen {
            let parsed = mapping::parse(name, data);
            warnings.extend(bounded(
                parsed.warnings.clone(),
                "mapping rows were skipped",
            ));
            warnings.extend(apply_mapping(name, &parsed, &mut new_files));
            if !indexes.is_empty() {
                let names: Vec<String> = indexes.iter().map(|(n, _)| n.clone()).collect();
                warnings.push(format!(
                    "{} not used: the upload's mapping {name} says who is in each photo",
                    names_list(&names)
                ));
            }
        } else if !indexes.is_empty() {
            // Entries sharing a path are one image to the index: each gets what it is assigned, and
            // the later one wins as two photos of one person do.
            let mut paths: Vec<&str> = Vec::new();
            let mut position: HashMap<&str, usize> = HashMap::new();
            let of_file: Vec<usize> = new_files
                .iter()
                .map(|f| {
                    *position.entry(f.name.as_str()).or_insert_with(|| {
                        paths.push(f.name.as_str());
                        paths.len() - 1
                    })
                })
                .collect();
            let assignment = pspa::assign(&indexes, &paths);
            for (file, at) in new_files.iter_mut().zip(of_file) {
                let Some(assigned) = assignment.files.get(at).cloned() else {
                    continue;
                };
                match assigned {
                    Assigned::Listed(entry) => file.index_entry = Some(entry),
                    Assigned::Conflict(reason) => file.unmatchable = Some(reason),
                    Assigned::NotListed => {}
                }
            }
            warnings.extend(assignment.warnings);
            index = Some(assignment.index_name);
        }
        Ok(Received {
            has_mapping: chosen.is_some(),
            index,
            files: new_files,
            warnings,
            pending,
        })
    }
}

pub async fn receive(mut multipart: Multipart, to: Destination<'_>) -> Result<Received, ApiError> {
    let mut parts = Parts::default();
    let mut budget = Budget {
        left: to.max_upload_bytes,
        limit: to.max_upload_bytes,
    };
    let mut objects = 0u32;
    let mut archives = 0usize;
    let mut part = 0usize;
    while let Some(mut field) = multipart.next_field().await.map_err(interrupted)? {
        part += 1;
        let field_name = field.name().unwrap_or_default().to_owned();
        match field_name.as_str() {
            "mapping" => {
                let name = field
                    .file_name()
                    .map(|n| printable(base_name(n)))
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "mapping.csv".into());
                if parts.mapping.is_some() {
                    return Err(ApiError::BadRequest("send at most one mapping part".into()));
                }
                parts.mapping = Some((
                    name.clone(),
                    read_small(&mut field, &name, &mut budget).await?,
                ));
            }
            "files" | "files[]" | "file" => {
                let name = part_file_name(&field, part)?;
                let path = to.spool.join(format!("file-{objects}"));
                let limit = Some((name.as_str(), to.max_file_bytes));
                let size = spool(&mut field, &path, limit, &mut budget).await?;
                let key = keys::upload_file(to.district, to.job_id, objects);
                parts.pending.push((key.clone(), path));
                objects += 1;
                parts.add_file(name, Source::Object { key, size });
            }
            "archive" => {
                let name = field
                    .file_name()
                    .map(|n| printable(base_name(n)))
                    .unwrap_or_else(|| format!("archive {}", archives + 1));
                let path: PathBuf = to.spool.join(format!("archive-{archives}.zip"));
                spool(&mut field, &path, None, &mut budget).await?;
                let archive_key = keys::upload_archive(to.district, to.job_id, archives);
                parts.add_archive(&name, &path, &archive_key).await?;
                parts.pending.push((archive_key, path));
                archives += 1;
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "form part {part} is named {other:?}; use mapping, files or archive"
                )));
            }
        }
    }
    parts.finish()
}

/// Gives each file its mapping row. A row naming only a base name that several files of the
/// upload have (`photos/x.jpg`, `other/x.jpg`) matches none of them: which photo is that person
/// cannot be told. Returns the job's warnings: rows that name files not in the upload are normal
/// (one district-wide mapping reused for each batch), so they are one line with a count.
fn apply_mapping(name: &str, parsed: &Mapping, files: &mut [NewFile]) -> Vec<String> {
    // Distinct paths by base name: entries sharing a whole path are one image named twice.
    let mut by_base: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, file) in files.iter().enumerate() {
        let same = by_base.entry(base_name(&file.name)).or_default();
        if !same.iter().any(|&j| files[j].name == file.name) {
            same.push(i);
        }
    }
    let mut assigned: Vec<(usize, MappedKey, Option<String>)> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        if let Some(key) = parsed.by_file.get(&file.name) {
            assigned.push((i, key.clone(), None));
            continue;
        }
        let base = base_name(&file.name);
        let Some(key) = parsed.by_file.get(base) else {
            continue;
        };
        let same_base = by_base.get(base).map(Vec::as_slice).unwrap_or_default();
        let ambiguous = (same_base.len() > 1).then(|| {
            let paths: Vec<String> = same_base.iter().map(|&j| files[j].name.clone()).collect();
            format!(
                "{name} row {} names {base}, which is {}; name the file by its path in the upload",
                key.row,
                paths.join(" and ")
            )
        });
        assigned.push((i, key.clone(), ambiguous));
    }
    for (i, key, ambiguous) in assigned {
        match ambiguous {
            Some(reason) => files[i].unmatchable = Some(reason),
            None => files[i].mapped_key = Some(key),
        }
    }
    let present: HashSet<&str> = files
        .iter()
        .flat_map(|f| [f.name.as_str(), base_name(&f.name)])
        .collect();
    let mut absent: Vec<(u32, &str)> = parsed
        .by_file
        .iter()
        .filter(|(file, _)| !present.contains(file.as_str()))
        .map(|(file, key)| (key.row, file.as_str()))
        .collect();
    if absent.is_empty() {
        return Vec::new();
    }
    absent.sort_unstable();
    if let [(row, file)] = absent.as_slice() {
        return vec![format!(
            "{name} row {row} names {file}, which is not in the upload"
        )];
    }
    let shown: Vec<String> = absent
        .iter()
        .take(5)
        .map(|(row, _)| row.to_string())
        .collect();
    let more = if absent.len() > shown.len() {
        ", …"
    } else {
        ""
    };
    vec![format!(
        "{} rows of {name} name files not in this upload (rows {}{more})",
        absent.len(),
        shown.join(", ")
    )]
}

/// `a, b, c and 12 more`.
fn names_list(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let shown = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}
