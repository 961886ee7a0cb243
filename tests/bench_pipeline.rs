//! What the whole-pipeline benchmarks share: a photographer's delivery (a zip of N photo-like
//! JPEGs and a roster of N people), the image stage's own rate on those photos, and one import
//! through a running Pictureday's public API, from the upload to the finished job.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pictureday_image_processor::packing::pack;
use pictureday_imaging::{Config, Processor};
use pictureday_platform::storage::Storage;
use serde_json::{Value, json};

use crate::images::{jpeg_q, photo};

/// A delivery of `people` photos (cycled from `samples`) and the roster that names them.
pub struct Delivery {
    pub people: u32,
    pub samples: Vec<Vec<u8>>,
    pub zip_path: PathBuf,
    pub zip_bytes: u64,
}

impl Delivery {
    /// Makes `distinct` photo-like JPEGs of `width`×`height` (q90) and a stored (uncompressed)
    /// zip of `people` of them in `dir`, as photographers deliver them.
    pub fn make(
        dir: &Path,
        people: u32,
        (width, height): (u32, u32),
        distinct: u32,
    ) -> anyhow::Result<Self> {
        let samples: Vec<Vec<u8>> = (0..distinct.max(1))
            .map(|seed| jpeg_q(photo(width, height, seed), 90))
            .collect::<anyhow::Result<_>>()?;
        let zip_path = dir.join("delivery.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path)?);
        // Photographers' zips store JPEGs uncompressed: they do not compress.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for n in 0..people {
            zip.start_file(format!("{n}.jpg"), options)?;
            zip.write_all(&samples[n as usize % samples.len()])?;
        }
        zip.finish()?;
        let zip_bytes = std::fs::metadata(&zip_path)?.len();
        Ok(Self {
            people,
            samples,
            zip_path,
            zip_bytes,
        })
    }

    pub fn mean_kb(&self) -> f64 {
        self.samples.iter().map(Vec::len).sum::<usize>() as f64 / self.samples.len() as f64 / 1024.0
    }

    /// The image stage alone, on one thread of this process, on the same photos: photos/s.
    pub fn stage_per_core(&self) -> anyhow::Result<f64> {
        self.stage_on_threads(1)
    }

    /// How many photos a reference run on `threads` threads processes.
    pub fn reference_photos(&self, threads: usize) -> usize {
        (self.samples.len() * 4).max(64) * threads.max(1)
    }

    /// The image stage alone on `threads` threads of this process at once, each with its own
    /// processor, on the same photos: photos/s of all of them together. The image stage's own
    /// rate "on all cores": it is less than `threads` × the one-thread rate when the cores share
    /// caches, memory bandwidth or a host's physical core.
    pub fn stage_on_threads(&self, threads: usize) -> anyhow::Result<f64> {
        self.stage_on_threads_storing(threads, None)
    }

    /// The image stage on `threads` threads at once, each photo's renditions then written to
    /// `store` as the pipeline writes them (one object per photo; on local storage synced and
    /// renamed into place before anything may say it exists): photos/s. What the pipeline
    /// cannot do without on this disk, whatever its plumbing costs.
    pub fn stage_and_store_on_threads(
        &self,
        threads: usize,
        store: &Storage,
    ) -> anyhow::Result<f64> {
        self.stage_on_threads_storing(threads, Some(store))
    }

    fn stage_on_threads_storing(
        &self,
        threads: usize,
        store: Option<&Storage>,
    ) -> anyhow::Result<f64> {
        let threads = threads.max(1);
        let n = self.reference_photos(1);
        let started = Instant::now();
        std::thread::scope(|scope| {
            let running: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || -> anyhow::Result<()> {
                        // Its own runtime, to store with: this thread is not one of the caller's.
                        let runtime = match store {
                            Some(_) => Some(
                                tokio::runtime::Builder::new_current_thread()
                                    .enable_all()
                                    .build()?,
                            ),
                            None => None,
                        };
                        let mut processor = Processor::new(Config::default());
                        for i in 0..n {
                            let processed = processor
                                .process(&self.samples[(i + t) % self.samples.len()])
                                .map_err(|e| anyhow::anyhow!("{e}"))?;
                            if let Some((store, runtime)) = store.zip(runtime.as_ref()) {
                                // Packed as the image-processor packs it.
                                let key = format!("photos/{t}-{i}.jpgs");
                                let (object, _) = pack(processed.renditions, &key);
                                runtime.block_on(store.put_bytes(&key, object.into()))?;
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            running.into_iter().try_for_each(|thread| {
                thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("an image stage thread panicked"))?
            })
        })?;
        Ok((n * threads) as f64 / started.elapsed().as_secs_f64())
    }

    /// The roster CSV naming one student per photo (`{n}.jpg` is student number `n`).
    fn roster(&self) -> String {
        let mut roster = String::from("role,sis_id,student_number,first_name,last_name,school\n");
        for n in 0..self.people {
            roster.push_str(&format!(
                "student,S{n},{n},First{n},Last{n},School{}\n",
                n % 20
            ));
        }
        roster
    }
}

/// A running Pictureday's API, as the operator.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

/// How one import went.
pub struct Imported {
    /// From the first byte of the upload to its `202`.
    pub upload_secs: f64,
    /// From the first byte of the upload to the job's end.
    pub total_secs: f64,
    pub job: Value,
}

impl Api {
    /// Creates `district` and loads the delivery's roster into it; how long the roster took.
    pub async fn district_with_roster(
        &self,
        district: &str,
        delivery: &Delivery,
    ) -> anyhow::Result<f64> {
        let created = self
            .http
            .post(format!("{}/v1/districts", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"id": district, "name": district}))
            .send()
            .await?;
        anyhow::ensure!(
            created.status() == 201,
            "creating the district: {}",
            created.status()
        );
        let started = Instant::now();
        let loaded: Value = self
            .http
            .post(format!("{}/v1/districts/{district}/roster", self.base))
            .bearer_auth(&self.token)
            .body(delivery.roster())
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(loaded["created"] == delivery.people, "roster: {loaded}");
        Ok(started.elapsed().as_secs_f64())
    }

    /// Uploads the delivery's zip (streamed) and waits for its job to end. `on_upload` runs
    /// once the upload is accepted (to read a process's memory then).
    pub async fn import(
        &self,
        district: &str,
        delivery: &Delivery,
        on_upload: impl FnOnce(),
    ) -> anyhow::Result<Imported> {
        let started = Instant::now();
        let file = tokio::fs::File::open(&delivery.zip_path).await?;
        // Read as `pictureday import` reads it: 256 KiB at a time (4 KiB, the default, makes
        // this process the upload's bottleneck).
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            256 * 1024,
        ));
        let part = reqwest::multipart::Part::stream_with_length(body, delivery.zip_bytes)
            .file_name("delivery.zip");
        let accepted: Value = self
            .http
            .post(format!("{}/v1/districts/{district}/imports", self.base))
            .bearer_auth(&self.token)
            .multipart(reqwest::multipart::Form::new().part("archive", part))
            .send()
            .await?
            .json()
            .await?;
        let upload_secs = started.elapsed().as_secs_f64();
        on_upload();
        let job_id = accepted["job_id"]
            .as_str()
            .with_context(|| format!("no job: {accepted}"))?
            .to_owned();
        let job = loop {
            let job: Value = self
                .http
                .get(format!(
                    "{}/v1/districts/{district}/jobs/{job_id}",
                    self.base
                ))
                .bearer_auth(&self.token)
                .send()
                .await?
                .json()
                .await?;
            if matches!(
                job["state"].as_str(),
                Some("finished" | "finished_with_errors" | "failed")
            ) {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let total_secs = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            job["state"] == "finished" && job["counts"]["applied"] == delivery.people,
            "the job did not apply every photo: {job}"
        );
        Ok(Imported {
            upload_secs,
            total_secs,
            job,
        })
    }
}

/// CPU seconds (user + system) a process has used, from /proc (clock ticks are 100 Hz on
/// Linux).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let fields = stat_fields(pid)?;
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU seconds of a process and every process below it (PostgreSQL's backends), including the
/// children that already ended.
pub fn tree_cpu_seconds(root: u32) -> Option<f64> {
    let own = stat_fields(root)?;
    let ended: f64 = own.get(13)?.parse::<f64>().ok()? + own.get(14)?.parse::<f64>().ok()?;
    let mut total = cpu_seconds(root)? + ended / 100.0;
    for child in children(root) {
        total += tree_cpu_seconds(child).unwrap_or(0.0);
    }
    Some(total)
}

/// The fields of /proc/<pid>/stat after the command name: state is 0, ppid 1, utime 11.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            stat_fields(*pid)
                .and_then(|f| f.get(1)?.parse::<u32>().ok())
                .is_some_and(|ppid| ppid == parent)
        })
        .collect()
}

/// Peak resident memory of a process, from /proc.
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
