//! A single zip sent as a resumable upload (`/v1/districts/{d}/uploads`): in pieces, each stored
//! by the server as it arrives. A piece that fails is sent again from where the server says it
//! stands; a command interrupted (network gone, laptop closed, Ctrl-C) and run again finds its
//! upload by the file's name, size and fingerprint and sends only the bytes not yet stored.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use futures::TryStreamExt as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio_util::io::ReaderStream;

use super::Client;
use super::client::is_passing;
use super::progress::{Counter, Display, UploadMeter, size as size_text};

/// How many times in a row a piece may fail before the command gives up (and can be run again).
const ATTEMPTS: u32 = 6;

/// What tells this file from another of the same name and size: its first and last mebibyte
/// (a zip's entries and its central directory), hashed.
fn fingerprint(path: &Path, size: u64) -> anyhow::Result<String> {
    const EDGE: u64 = 1 << 20;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hash = Sha256::new();
    let mut head = Vec::new();
    (&mut file).take(EDGE).read_to_end(&mut head)?;
    hash.update(&head);
    if size > EDGE {
        file.seek(SeekFrom::Start(size - EDGE))?;
        let mut tail = Vec::new();
        file.take(EDGE).read_to_end(&mut tail)?;
        hash.update(&tail);
    }
    Ok(format!("sha256:{}", hex::encode(hash.finalize())))
}

/// Sends the zip at `path` and imports it with `query`; the accepted job as the server
/// describes it.
pub async fn send(
    client: &Client,
    path: &Path,
    query: &str,
    display: Display,
    piece: u64,
) -> anyhow::Result<Value> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload.zip".into());
    let fingerprint = fingerprint(path, size)?;
    let found = client
        .get_json_with(
            "/uploads",
            &[
                ("file_name", name.clone()),
                ("size", size.to_string()),
                ("fingerprint", fingerprint.clone()),
            ],
        )
        .await?;
    let upload = match found["items"].as_array().and_then(|items| items.first()) {
        Some(begun) => {
            let stored = begun["offset"].as_u64().unwrap_or(0);
            eprintln!(
                "Resuming {name}: {} of {} already stored",
                size_text(stored),
                size_text(size)
            );
            begun.clone()
        }
        None => {
            client
                .post_json(
                    "/uploads",
                    Some(&json!({"file_name": name, "size": size, "fingerprint": fingerprint})),
                )
                .await?
        }
    };
    let id = upload["upload_id"]
        .as_str()
        .context("the server began an upload but named none")?
        .to_owned();
    let upload_path = format!("/uploads/{id}");
    let mut offset = upload["offset"].as_u64().unwrap_or(0);
    let counter = Counter::default();
    let meter = UploadMeter::start(display, counter.clone(), size - offset.min(size));
    let mut failures = 0;
    while offset < size {
        let length = piece.min(size - offset);
        let sent = send_piece(client, &upload_path, path, offset, length, &counter).await;
        match sent {
            Ok(answer) => {
                offset = answer["offset"].as_u64().unwrap_or(offset + length);
                failures = 0;
            }
            Err(error) if failures + 1 < ATTEMPTS && is_passing(&error) => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(500 << failures.min(5))).await;
                // Part of the piece may have been kept: go on from where the server stands.
                match client.get_json(&upload_path).await {
                    Ok(now) => offset = now["offset"].as_u64().unwrap_or(offset),
                    Err(again) if is_passing(&again) => continue,
                    Err(again) => {
                        meter.stop();
                        return Err(again);
                    }
                }
            }
            Err(error) => {
                meter.stop();
                return Err(error.context(format!(
                    "the upload stopped with {} of {} stored; run the same command again to send the rest",
                    size_text(offset),
                    size_text(size)
                )));
            }
        }
    }
    meter.stop();
    client
        .post_json(&format!("{upload_path}/import{query}"), None)
        .await
}

/// Sends bytes `offset..offset + length` of the file; the upload as the server then has it.
async fn send_piece(
    client: &Client,
    upload_path: &str,
    path: &Path,
    offset: u64,
    length: u64,
    counter: &Counter,
) -> anyhow::Result<Value> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    file.seek(SeekFrom::Start(offset)).await?;
    let counter = counter.clone();
    let stream =
        ReaderStream::with_capacity(file.take(length), 256 * 1024).inspect_ok(move |chunk| {
            counter.add(chunk.len() as u64);
        });
    client
        .patch_piece(
            upload_path,
            offset,
            length,
            reqwest::Body::wrap_stream(stream),
        )
        .await
}
