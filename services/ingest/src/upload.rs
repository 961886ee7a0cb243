//! Receives a multipart upload part by part, streaming every file and archive to disk and then to
//! storage, so memory stays flat however large the upload is.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use axum::extract::Multipart;
use axum::extract::multipart::Field;
use pictureday_contract::DistrictId;
use pictureday_contract::events::Source;
use pictureday_contract::keys;
use pictureday_platform::http::ApiError;
use pictureday_platform::storage::Storage;
use tokio::io::AsyncWriteExt;

use crate::archive::{self, MAX_MAPPING_BYTES};
use crate::jobs::NewFile;
use crate::mapping::{self, base_name};

/// What one upload brought, stored and ready to record as a job.
#[derive(Debug, Default)]
pub struct Received {
    pub files: Vec<NewFile>,
    pub has_mapping: bool,
    pub warnings: Vec<String>,
}

/// Where the upload is going.
pub struct Destination<'a> {
    pub storage: &'a Storage,
    pub district: &'a DistrictId,
    pub job_id: &'a str,
    pub spool: &'a Path,
}

fn interrupted(error: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("the upload could not be read: {error}"))
}

async fn spool(field: &mut Field<'_>, path: &Path) -> Result<u64, ApiError> {
    let mut file = tokio::fs::File::create(path).await.map_err(ApiError::io)?;
    let mut size = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(interrupted)? {
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(ApiError::io)?;
    }
    file.flush().await.map_err(ApiError::io)?;
    Ok(size)
}

async fn read_small(field: &mut Field<'_>, what: &str) -> Result<Vec<u8>, ApiError> {
    let mut data = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(interrupted)? {
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
    Ok(name.to_owned())
}

pub async fn receive(mut multipart: Multipart, to: Destination<'_>) -> Result<Received, ApiError> {
    let mut files: Vec<(String, Source)> = Vec::new();
    let mut form_mapping: Option<(String, Vec<u8>)> = None;
    let mut archive_mappings: Vec<(String, Vec<u8>)> = Vec::new();
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
                    .map(|n| base_name(n).to_owned())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "mapping.csv".into());
                if form_mapping.is_some() {
                    return Err(ApiError::BadRequest("send at most one mapping part".into()));
                }
                form_mapping = Some((name.clone(), read_small(&mut field, &name).await?));
            }
            "files" | "files[]" | "file" => {
                let name = part_file_name(&field, part)?;
                let path = to.spool.join(format!("file-{objects}"));
                let size = spool(&mut field, &path).await?;
                let key = keys::upload_file(to.district, to.job_id, objects);
                to.storage.put_file(&key, &path).await?;
                objects += 1;
                files.push((name, Source::Object { key, size }));
            }
            "archive" => {
                let name = field
                    .file_name()
                    .map(|n| base_name(n).to_owned())
                    .unwrap_or_else(|| format!("archive {}", archives + 1));
                let path: PathBuf = to.spool.join(format!("archive-{archives}.zip"));
                spool(&mut field, &path).await?;
                let (listed_path, listed_name) = (path.clone(), name.clone());
                let listing =
                    tokio::task::spawn_blocking(move || archive::list(&listed_path, &listed_name))
                        .await
                        .map_err(ApiError::internal)?
                        .map_err(|e| ApiError::Unprocessable {
                            message: e.to_string(),
                            details: vec![],
                        })?;
                let archive_key = keys::upload_archive(to.district, to.job_id, archives);
                to.storage.put_file(&archive_key, &path).await?;
                archives += 1;
                if let Some(found) = listing.mapping {
                    archive_mappings.push(found);
                }
                files.extend(listing.entries.into_iter().map(|e| {
                    (
                        e.name,
                        Source::ZipEntry {
                            archive_key: archive_key.clone(),
                            data_offset: e.data_offset,
                            compressed_size: e.compressed_size,
                            uncompressed_size: e.uncompressed_size,
                            method: e.method,
                            crc32: e.crc32,
                            encrypted: e.encrypted,
                        },
                    )
                }));
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "form part {part} is named {other:?}; use mapping, files or archive"
                )));
            }
        }
    }
    if files.is_empty() {
        return Err(ApiError::Unprocessable {
            message: "the upload has no photos: send files parts or an archive of images".into(),
            details: vec![],
        });
    }

    let mut warnings = Vec::new();
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
    let parsed = chosen
        .as_ref()
        .map(|(name, data)| mapping::parse(name, data));
    if let (Some((name, _)), Some(parsed)) = (&chosen, &parsed) {
        warnings.extend(parsed.warnings.iter().cloned());
        let present: HashSet<&str> = files
            .iter()
            .flat_map(|(n, _)| [n.as_str(), base_name(n)])
            .collect();
        let mut missing: Vec<(&String, u32)> = parsed
            .by_file
            .iter()
            .filter(|(file, _)| !present.contains(file.as_str()))
            .map(|(file, key)| (file, key.row))
            .collect();
        missing.sort_by_key(|(_, row)| *row);
        warnings.extend(missing.into_iter().map(|(file, row)| {
            format!("{name} row {row} names {file}, which is not in the upload")
        }));
    }
    Ok(Received {
        has_mapping: parsed.is_some(),
        files: files
            .into_iter()
            .map(|(name, source)| NewFile {
                mapped_key: parsed.as_ref().and_then(|m| m.key_for(&name)).cloned(),
                name,
                source,
            })
            .collect(),
        warnings,
    })
}
