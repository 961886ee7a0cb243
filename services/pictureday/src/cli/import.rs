//! `pictureday import`: every path becomes a part of one import — a zip as it is, a folder zipped
//! while it is sent (photos stored, not compressed again: they are JPEGs already), a photo file
//! as it is — streamed from disk with the upload's progress, then the job is followed. A single
//! zip goes as a resumable upload instead (`resumable`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use reqwest::multipart::{Form, Part};
use tokio::sync::mpsc;
use tokio_util::io::ReaderStream;

use super::progress::{Counter, Display, UploadMeter, size};
use super::{Client, ImportArgs, Outcome, follow};

/// One part of the import, before it is sent.
enum Source {
    Zip(PathBuf),
    Folder(PathBuf, Vec<(String, PathBuf, u64)>),
    Photo(PathBuf),
}

pub async fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let client = Client::connect(&args.client).await?;
    let display = Display::choose(args.plain);
    let counter = Counter::default();
    let mut sources = Vec::new();
    let mut total = 0u64;
    for path in &args.paths {
        let (source, bytes) = classify(path)?;
        total += bytes;
        sources.push(source);
    }
    let mut form = Form::new();
    if let Some(mapping) = &args.mapping {
        let bytes = std::fs::metadata(mapping)
            .with_context(|| format!("reading {}", mapping.display()))?
            .len();
        total += bytes;
        form = form.part("mapping", streamed_file(mapping, &counter).await?);
    }
    let described = describe(&sources, total);
    // One zip alone goes in resumable pieces; anything else is one multipart request.
    let piece_bytes = args.piece_mib.saturating_mul(1 << 20);
    let resumable_zip = match sources.as_slice() {
        [Source::Zip(zip)] if args.mapping.is_none() && piece_bytes > 0 => Some(zip.clone()),
        _ => None,
    };
    if resumable_zip.is_some() {
        sources.clear();
    }
    for source in sources {
        form = match source {
            Source::Zip(path) => form.part("archive", streamed_file(&path, &counter).await?),
            Source::Photo(path) => form.part("files", streamed_file(&path, &counter).await?),
            Source::Folder(path, files) => {
                form.part("archive", zipped_folder(&path, files, &counter)?)
            }
        };
    }
    let mut query = Vec::new();
    if args.preview {
        query.push("mode=preview".to_owned());
    }
    if let Some(replace) = &args.replace {
        query.push(format!("replace={replace}"));
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };

    eprintln!("Uploading {described} to district {}", client.district);
    let accepted = match resumable_zip {
        Some(zip) => super::resumable::send(&client, &zip, &query, display, piece_bytes).await?,
        None => {
            let meter = UploadMeter::start(display, counter, total);
            let accepted = client.import(form, &query).await;
            meter.stop();
            accepted?
        }
    };
    let job = accepted["job_id"]
        .as_str()
        .context("the server accepted the upload but named no job")?
        .to_owned();
    eprintln!("Job {job} accepted; processing");
    follow::follow_and_report(&client, &job, display, &args.log_dir).await
}

/// What a path is, and how many bytes it will send.
fn classify(path: &Path) -> anyhow::Result<(Source, u64)> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        let files = folder_files(path)?;
        if files.is_empty() {
            bail!("{} holds no files to import", path.display());
        }
        let bytes = files.iter().map(|(_, _, len)| len).sum();
        return Ok((Source::Folder(path.to_owned(), files), bytes));
    }
    let is_zip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        || starts_like_a_zip(path);
    let source = if is_zip {
        Source::Zip(path.to_owned())
    } else {
        Source::Photo(path.to_owned())
    };
    Ok((source, meta.len()))
}

fn starts_like_a_zip(path: &Path) -> bool {
    use std::io::Read as _;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == *b"PK\x03\x04")
}

/// Every file under `root` (hidden ones left out), by its path inside the folder, in order.
fn folder_files(root: &Path) -> anyhow::Result<Vec<(String, PathBuf, u64)>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let relative = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push((relative, path.clone(), entry.metadata()?.len()));
            }
        }
    }
    found.sort();
    Ok(found)
}

fn describe(sources: &[Source], total: u64) -> String {
    let (mut zips, mut folders, mut photos) = (0, 0, 0);
    for source in sources {
        match source {
            Source::Zip(_) => zips += 1,
            Source::Folder(..) => folders += 1,
            Source::Photo(_) => photos += 1,
        }
    }
    let mut parts = Vec::new();
    for (n, one, many) in [
        (zips, "zip", "zips"),
        (folders, "folder", "folders"),
        (photos, "photo", "photos"),
    ] {
        match n {
            0 => {}
            1 => parts.push(format!("1 {one}")),
            n => parts.push(format!("{n} {many}")),
        }
    }
    format!("{} ({})", parts.join(", "), size(total))
}

/// A file as a part, read as it is sent and counted.
async fn streamed_file(path: &Path, counter: &Counter) -> anyhow::Result<Part> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata().await?.len();
    let counter = counter.clone();
    let stream = ReaderStream::with_capacity(file, 256 * 1024).inspect_ok(move |chunk| {
        counter.add(chunk.len() as u64);
    });
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload".into());
    Ok(Part::stream_with_length(reqwest::Body::wrap_stream(stream), len).file_name(name))
}

/// A folder as a zip part, written on a thread while the request sends it: nothing is staged
/// on disk, and memory holds a few chunks.
fn zipped_folder(
    root: &Path,
    files: Vec<(String, PathBuf, u64)>,
    counter: &Counter,
) -> anyhow::Result<Part> {
    let (sender, receiver) = mpsc::channel::<std::io::Result<Bytes>>(8);
    let error_sender = sender.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(error) = write_zip(files, ChannelWriter(sender)) {
            // The request fails with it; the receiver may already be gone.
            let _ = error_sender.blocking_send(Err(std::io::Error::other(format!("{error:#}"))));
        }
    });
    let counter = counter.clone();
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
    .inspect_ok(move |chunk: &Bytes| counter.add(chunk.len() as u64));
    let name = root
        .file_name()
        .map(|n| format!("{}.zip", n.to_string_lossy()))
        .unwrap_or_else(|| "folder.zip".into());
    Ok(Part::stream(reqwest::Body::wrap_stream(stream.boxed())).file_name(name))
}

fn write_zip(files: Vec<(String, PathBuf, u64)>, out: ChannelWriter) -> anyhow::Result<()> {
    let mut zip = zip::ZipWriter::new_stream(std::io::BufWriter::with_capacity(256 * 1024, out));
    for (name, path, len) in files {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(len >= u64::from(u32::MAX));
        zip.start_file(name.as_str(), options)
            .with_context(|| format!("adding {name} to the zip"))?;
        let mut file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        std::io::copy(&mut file, &mut zip)
            .with_context(|| format!("reading {}", path.display()))?;
    }
    let mut out = zip.finish().context("finishing the zip")?;
    out.flush()?;
    Ok(())
}

/// Writes into the request body's channel, a chunk at a time.
struct ChannelWriter(mpsc::Sender<std::io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::other("the upload stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
