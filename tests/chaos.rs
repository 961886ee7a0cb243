//! The chaos run: the distributed stack (every service its own process, on nats-server,
//! PostgreSQL and an S3 server) takes concurrent uploads for several districts while
//! image-processors are killed with `kill -9`, nats-server and PostgreSQL are restarted and the
//! roster service is stopped for longer than a minute; then the embedded default
//! (`pictureday serve`) is killed outright in the middle of a batch, again and again. Afterwards
//! every file is accounted for from the API: each must end in exactly one outcome, applied once,
//! and no outage may have turned into a rejection.
//!
//! `chaos` (scripts/chaos.sh) runs the full plan; the end-to-end suite runs a short one.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use pictureday_platform::nats_server::NatsServer;
use reqwest::multipart::Form;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::{
    OPERATOR_TOKEN, PostgresServer, S3Server, ServiceProcess, TestClient, file_part, free_port,
    images, s3_server, zip_of,
};

/// What to do to the system, and to how much work.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Photos uploaded to the distributed stack, shared evenly by the districts.
    pub photos: u32,
    pub districts: u32,
    /// Photos per zip: a district's photos arrive as several imports.
    pub photos_per_archive: u32,
    /// Imports in flight at once.
    pub uploaders: usize,
    pub photo_size: (u32, u32),
    /// Image-processors running at any time (each killed one is replaced).
    pub image_processors: usize,
    pub processor_kills: usize,
    pub nats_restarts: usize,
    pub postgres_restarts: usize,
    /// The roster service is stopped this long, once, in the middle of the faults.
    pub roster_outage: Option<Duration>,
    /// Time between two faults.
    pub fault_gap: Duration,
    /// How long nats-server and PostgreSQL stay down when restarted.
    pub downtime: Duration,
    /// `PICTUREDAY_ACK_WAIT_SECS`: how soon a killed processor's photos are delivered again.
    pub ack_wait_secs: u64,
    /// `PICTUREDAY_STALL_AFTER_SECS`: how soon the reconciler publishes a lost file again.
    pub stall_after_secs: u64,
    /// How long every job may take to become final after the last fault.
    pub patience: Duration,
    /// Photos imported into the embedded default, shared by the districts.
    pub embedded_photos: u32,
    /// SIGKILLs of the embedded default (and its nats-server) in the middle of its batch.
    pub embedded_kills: usize,
    /// Seed of the choice of which image-processor dies.
    pub seed: u64,
}

impl Plan {
    /// The full run: 10,000 photos in 3 districts, 50 processor kills, 5 NATS and 3 PostgreSQL
    /// restarts, the roster away for 70 s, 3 kills of the embedded server.
    pub fn full() -> Self {
        Self {
            photos: 10_000,
            districts: 3,
            photos_per_archive: 500,
            uploaders: 3,
            photo_size: (320, 400),
            image_processors: 3,
            processor_kills: 50,
            nats_restarts: 5,
            postgres_restarts: 3,
            roster_outage: Some(Duration::from_secs(70)),
            fault_gap: Duration::from_secs(2),
            downtime: Duration::from_secs(2),
            ack_wait_secs: 5,
            stall_after_secs: 20,
            patience: Duration::from_secs(600),
            embedded_photos: 1_500,
            embedded_kills: 3,
            seed: 1,
        }
    }

    /// The run of the test suite: 600 photos, 10 processor kills, one restart of each server,
    /// one kill of the embedded default, no long roster outage (a test of its own has one).
    pub fn short() -> Self {
        Self {
            photos: 600,
            photos_per_archive: 100,
            processor_kills: 10,
            nats_restarts: 1,
            postgres_restarts: 1,
            roster_outage: None,
            fault_gap: Duration::from_secs(1),
            downtime: Duration::from_secs(1),
            patience: Duration::from_secs(180),
            embedded_photos: 200,
            embedded_kills: 1,
            ..Self::full()
        }
    }
}

/// The programs the run starts.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub ingest: PathBuf,
    pub matcher: PathBuf,
    pub image_processor: PathBuf,
    pub roster: PathBuf,
    pub reporting: PathBuf,
    /// The launcher: `pictureday gateway` and `pictureday serve`.
    pub pictureday: PathBuf,
}

impl Binaries {
    /// The workspace's own binaries in `dir` (a `cargo build` output directory).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ingest: dir.join("pictureday-ingest"),
            matcher: dir.join("pictureday-matcher"),
            image_processor: dir.join("pictureday-image-processor"),
            roster: dir.join("pictureday-roster"),
            reporting: dir.join("pictureday-reporting"),
            pictureday: dir.join("pictureday"),
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        for path in [
            &self.ingest,
            &self.matcher,
            &self.image_processor,
            &self.roster,
            &self.reporting,
            &self.pictureday,
        ] {
            anyhow::ensure!(
                path.exists(),
                "{} not found; build it first",
                path.display()
            );
        }
        Ok(())
    }
}

/// What happened to one district's files.
#[derive(Debug, Clone, Default)]
pub struct DistrictCounts {
    pub district: String,
    /// Files uploaded (in imports that were accepted).
    pub files: u64,
    /// Log rows `applied`, `replaced` or `superseded`.
    pub applied: u64,
    pub unmatched: u64,
    pub rejected: u64,
    /// Rejections whose reason is a dependency that was away. Every photo here is valid and on
    /// the roster, so any rejection is one.
    pub outage_rejections: u64,
    /// Files with no outcome: log rows still `pending`, and files with no log row at all.
    pub lost: u64,
    /// Files applied more than once: people given more than one photo, or log rows `replaced`
    /// or `superseded` (each person has exactly one photo in these uploads), whichever is more.
    pub applied_twice: u64,
    pub jobs: u64,
    pub jobs_not_final: u64,
    /// Jobs the district has that no accepted import returned (an upload recorded twice).
    pub unexpected_jobs: u64,
    /// Imports sent again after an error or a 5xx.
    pub upload_retries: u64,
    /// From the last fault until the district's last job was final.
    pub drain: Option<Duration>,
    /// Distinct rejection reasons, for the report.
    pub reasons: BTreeMap<String, u64>,
}

/// One part of the run: the distributed stack or the embedded default.
#[derive(Debug, Clone, Default)]
pub struct PartReport {
    pub name: String,
    pub districts: Vec<DistrictCounts>,
    /// Faults injected, in words, with how many.
    pub faults: Vec<(String, usize)>,
    /// Service processes that exited without being told to, by service, and were started again.
    pub exits: BTreeMap<String, usize>,
    pub uploads_took: Duration,
    pub faults_took: Duration,
    /// From the last fault until every job was final.
    pub drain: Option<Duration>,
    /// Where the logs are.
    pub logs: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub parts: Vec<PartReport>,
}

impl PartReport {
    fn total(&self) -> DistrictCounts {
        let mut total = DistrictCounts {
            district: "total".into(),
            ..DistrictCounts::default()
        };
        for d in &self.districts {
            total.files += d.files;
            total.applied += d.applied;
            total.unmatched += d.unmatched;
            total.rejected += d.rejected;
            total.outage_rejections += d.outage_rejections;
            total.lost += d.lost;
            total.applied_twice += d.applied_twice;
            total.jobs += d.jobs;
            total.jobs_not_final += d.jobs_not_final;
            total.unexpected_jobs += d.unexpected_jobs;
            total.upload_retries += d.upload_retries;
            total.drain = total.drain.max(d.drain);
            for (reason, n) in &d.reasons {
                *total.reasons.entry(reason.clone()).or_default() += n;
            }
        }
        total
    }
}

impl Report {
    /// Why the run failed; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for part in &self.parts {
            let t = part.total();
            let mut check = |what: &str, n: u64| {
                if n > 0 {
                    failures.push(format!("{}: {n} {what}", part.name));
                }
            };
            check("files lost (no outcome)", t.lost);
            check("files applied twice", t.applied_twice);
            check("jobs not final", t.jobs_not_final);
            check("files rejected because of an outage", t.outage_rejections);
            check("files rejected", t.rejected - t.outage_rejections);
            check(
                "files unmatched (every photo is on the roster)",
                t.unmatched,
            );
            check("jobs recorded twice", t.unexpected_jobs);
            if t.files == 0 {
                failures.push(format!("{}: no files were uploaded", part.name));
            }
        }
        failures
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            writeln!(f, "== {}", part.name)?;
            writeln!(
                f,
                "{:<12} {:>6} {:>8} {:>9} {:>8} {:>5} {:>13} {:>5} {:>10} {:>8} {:>8}",
                "district",
                "files",
                "applied",
                "unmatched",
                "rejected",
                "lost",
                "applied twice",
                "jobs",
                "not final",
                "retries",
                "drain"
            )?;
            for d in part.districts.iter().chain(std::iter::once(&part.total())) {
                writeln!(
                    f,
                    "{:<12} {:>6} {:>8} {:>9} {:>8} {:>5} {:>13} {:>5} {:>10} {:>8} {:>8}",
                    d.district,
                    d.files,
                    d.applied,
                    d.unmatched,
                    d.rejected,
                    d.lost,
                    d.applied_twice,
                    d.jobs,
                    d.jobs_not_final,
                    d.upload_retries,
                    d.drain.map_or_else(|| "-".into(), secs),
                )?;
            }
            let total = part.total();
            writeln!(
                f,
                "rejected because of an outage: {}",
                total.outage_rejections
            )?;
            for (reason, n) in &total.reasons {
                writeln!(f, "  {n} × {reason}")?;
            }
            if total.unexpected_jobs > 0 {
                writeln!(f, "jobs recorded twice: {}", total.unexpected_jobs)?;
            }
            let faults: Vec<String> = part
                .faults
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(what, n)| format!("{n} × {what}"))
                .collect();
            writeln!(f, "faults: {}", faults.join(", "))?;
            let exits: Vec<String> = part
                .exits
                .iter()
                .map(|(service, n)| format!("{service} {n}"))
                .collect();
            writeln!(
                f,
                "service exits (started again): {}",
                if exits.is_empty() {
                    "none".into()
                } else {
                    exits.join(", ")
                }
            )?;
            writeln!(
                f,
                "uploads took {}, faults {}, drain after the last fault {}",
                secs(part.uploads_took),
                secs(part.faults_took),
                part.drain.map_or_else(|| "never".into(), secs)
            )?;
            writeln!(f, "logs: {}", part.logs.display())?;
        }
        let failures = self.failures();
        if failures.is_empty() {
            writeln!(f, "PASS")
        } else {
            writeln!(f, "FAIL: {}", failures.join("; "))
        }
    }
}

/// Runs the plan: the distributed stack, then the embedded default. Logs and data are kept
/// under `dir`.
pub async fn run(plan: &Plan, binaries: &Binaries, dir: &Path) -> anyhow::Result<Report> {
    binaries.check()?;
    let mut report = Report::default();
    report
        .parts
        .push(distributed(plan, binaries, &dir.join("distributed")).await?);
    if plan.embedded_kills > 0 || plan.embedded_photos > 0 {
        report
            .parts
            .push(embedded(plan, binaries, &dir.join("embedded")).await?);
    }
    Ok(report)
}

fn district_name(n: u32) -> String {
    format!("district-{}", n + 1)
}

/// One import: `count` photos of a district, students `first..first + count`.
#[derive(Debug, Clone)]
struct Batch {
    district: u32,
    first: u32,
    count: u32,
}

/// An accepted import.
#[derive(Debug, Clone)]
struct Accepted {
    district: u32,
    job_id: String,
    files: u32,
    retries: u32,
}

fn batches(plan: &Plan, photos: u32) -> (u32, VecDeque<Batch>) {
    let per_district = photos / plan.districts.max(1);
    let mut queue = VecDeque::new();
    let mut first = 0;
    // Interleaved, so every district has imports in flight throughout.
    while first < per_district {
        let count = plan.photos_per_archive.min(per_district - first);
        for district in 0..plan.districts {
            queue.push_back(Batch {
                district,
                first,
                count,
            });
        }
        first += count;
    }
    (per_district, queue)
}

/// Distinct pictures per batch; the rest are copies told apart by a comment (drawing a picture
/// is most of the cost of an upload in a debug build).
const PICTURES_PER_BATCH: u32 = 16;

/// The zip of a batch: `<n>.jpg` for each student, no two files the same.
fn archive(batch: &Batch, (width, height): (u32, u32)) -> anyhow::Result<Vec<u8>> {
    let mut pictures = Vec::new();
    for k in 0..PICTURES_PER_BATCH.min(batch.count) {
        let seed = batch.district * 1_000_000 + batch.first + k;
        pictures.push(images::jpeg(images::photo(width, height, seed))?);
    }
    let mut entries = Vec::with_capacity(batch.count as usize);
    for (i, n) in (batch.first..batch.first + batch.count).enumerate() {
        let picture = pictures
            .get(i % pictures.len().max(1))
            .context("no picture")?;
        entries.push((format!("{n}.jpg"), with_comment(picture, &format!("{n}"))));
    }
    let entries: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.clone()))
        .collect();
    zip_of(&entries)
}

/// `jpeg` with a comment segment (COM) after its start marker.
fn with_comment(jpeg: &[u8], text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(jpeg.get(..2).unwrap_or_default());
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((text.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(jpeg.get(2..).unwrap_or_default());
    out
}

/// Creates the districts, each with a roster of `per_district` numbered students.
async fn districts(
    client: &TestClient,
    plan: &Plan,
    per_district: u32,
) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::new();
    for n in 0..plan.districts {
        let name = district_name(n);
        let token = client.create_district(&name, &name).await?;
        client
            .upload_numbered_roster(&token, &name, per_district)
            .await?;
        tokens.push(token);
    }
    Ok(tokens)
}

/// How long an import is tried again while the system is (partly) away.
const UPLOAD_PATIENCE: Duration = Duration::from_secs(300);

/// Posts the archive until it is accepted. An error or a 5xx means it was not recorded (ingest
/// answers 202 as soon as the job is committed), so sending it again cannot record it twice;
/// the district's job list is checked for that afterwards all the same.
async fn import(
    client: &TestClient,
    token: &str,
    district: &str,
    archive: Vec<u8>,
) -> anyhow::Result<(String, u32)> {
    let deadline = Instant::now() + UPLOAD_PATIENCE;
    let mut retries = 0;
    loop {
        let form = Form::new().part("archive", file_part("batch.zip", archive.clone()));
        let problem = match client.import(token, district, form).await {
            Ok((202, accepted)) => {
                let job = accepted["job_id"]
                    .as_str()
                    .context("no job_id in the import's answer")?;
                return Ok((job.to_owned(), retries));
            }
            Ok((status, body)) if status >= 500 => format!("{status}: {body}"),
            Ok((status, body)) => bail!("import refused: {status}: {body}"),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() > deadline {
            bail!("import into {district} not accepted within {UPLOAD_PATIENCE:?}: {problem}");
        }
        retries += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Uploads every batch, `plan.uploaders` at a time.
async fn upload_all(
    client: &TestClient,
    plan: &Plan,
    tokens: &[String],
    queue: VecDeque<Batch>,
) -> anyhow::Result<Vec<Accepted>> {
    let queue = Arc::new(std::sync::Mutex::new(queue));
    let mut uploaders = tokio::task::JoinSet::new();
    for _ in 0..plan.uploaders.max(1) {
        let (queue, client, tokens, size) = (
            queue.clone(),
            client.clone(),
            tokens.to_vec(),
            plan.photo_size,
        );
        uploaders.spawn(async move {
            let mut accepted = Vec::new();
            loop {
                let next = queue
                    .lock()
                    .map_err(|_| anyhow::anyhow!("upload queue poisoned"))?
                    .pop_front();
                let Some(batch) = next else {
                    return anyhow::Ok(accepted);
                };
                let zip = {
                    let batch = batch.clone();
                    tokio::task::spawn_blocking(move || archive(&batch, size)).await??
                };
                let name = district_name(batch.district);
                let token = tokens
                    .get(batch.district as usize)
                    .context("no token for the district")?;
                let (job_id, retries) = import(&client, token, &name, zip).await?;
                accepted.push(Accepted {
                    district: batch.district,
                    job_id,
                    files: batch.count,
                    retries,
                });
            }
        });
    }
    let mut accepted = Vec::new();
    while let Some(done) = uploaders.join_next().await {
        accepted.extend(done??);
    }
    Ok(accepted)
}

/// GET that rides out a dependency's brief absence (a restart): errors and 5xx are asked again.
async fn get_json(client: &TestClient, token: &str, path: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match client.get(token, path).await {
            Ok(response) if response.status().is_success() => return Ok(response.json().await?),
            Ok(response) if response.status().is_server_error() => {}
            Ok(response) => {
                let status = response.status();
                bail!("GET {path}: {status}: {}", response.text().await?);
            }
            Err(_) => {}
        }
        if Instant::now() > deadline {
            bail!("GET {path} did not succeed within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn is_final(job: &Value) -> bool {
    matches!(
        job["state"].as_str(),
        Some("finished" | "finished_with_errors" | "failed")
    )
}

/// Waits until every job is final or `patience` has passed since `last_fault`; returns, per
/// job id, when it was first seen final.
async fn wait_final(
    client: &TestClient,
    tokens: &[String],
    accepted: &[Accepted],
    last_fault: Instant,
    patience: Duration,
) -> anyhow::Result<BTreeMap<String, Instant>> {
    let mut finals = BTreeMap::new();
    let deadline = last_fault + patience;
    while finals.len() < accepted.len() && Instant::now() < deadline {
        for job in accepted {
            if finals.contains_key(&job.job_id) {
                continue;
            }
            let district = district_name(job.district);
            let token = &tokens[job.district as usize];
            let path = format!("/v1/districts/{district}/jobs/{}", job.job_id);
            // A failed request counts as not final yet.
            if let Ok(body) = client.get_json(token, &path).await
                && is_final(&body)
            {
                finals.insert(job.job_id.clone(), Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(finals)
}

/// Words in the reason of a file rejected because something it needed was away.
const OUTAGE_WORDS: [&str; 6] = [
    "unavailable",
    "did not answer",
    "attempts",
    "timed out",
    "connection",
    "waited",
];

/// Counts, from the API, what happened to every file of every accepted import.
async fn account(
    client: &TestClient,
    plan: &Plan,
    tokens: &[String],
    accepted: &[Accepted],
    finals: &BTreeMap<String, Instant>,
    last_fault: Instant,
) -> anyhow::Result<Vec<DistrictCounts>> {
    let mut out = Vec::new();
    for n in 0..plan.districts {
        let district = district_name(n);
        let token = &tokens[n as usize];
        let mine: Vec<&Accepted> = accepted.iter().filter(|a| a.district == n).collect();
        let mut counts = DistrictCounts {
            district: district.clone(),
            jobs: mine.len() as u64,
            ..DistrictCounts::default()
        };
        let mut replaced_or_superseded = 0;
        for job in &mine {
            counts.files += u64::from(job.files);
            counts.upload_retries += u64::from(job.retries);
            let body = get_json(
                client,
                token,
                &format!("/v1/districts/{district}/jobs/{}", job.job_id),
            )
            .await?;
            if !is_final(&body) {
                counts.jobs_not_final += 1;
            }
            if let Some(at) = finals.get(&job.job_id) {
                let drain = at.saturating_duration_since(last_fault);
                counts.drain = counts.drain.max(Some(drain));
            }
            let log = get_json(
                client,
                token,
                &format!("/v1/districts/{district}/jobs/{}/log", job.job_id),
            )
            .await?;
            let rows = log["items"].as_array().cloned().unwrap_or_default();
            counts.lost += u64::from(job.files).saturating_sub(rows.len() as u64);
            for row in &rows {
                match row["outcome"].as_str().unwrap_or_default() {
                    "applied" => counts.applied += 1,
                    "replaced" | "superseded" => {
                        counts.applied += 1;
                        replaced_or_superseded += 1;
                    }
                    "unmatched" => counts.unmatched += 1,
                    "rejected" => {
                        counts.rejected += 1;
                        let reason = row["reason"].as_str().unwrap_or_default().to_owned();
                        let lower = reason.to_lowercase();
                        if OUTAGE_WORDS.iter().any(|w| lower.contains(w)) {
                            counts.outage_rejections += 1;
                        }
                        *counts.reasons.entry(reason).or_default() += 1;
                    }
                    _ => counts.lost += 1,
                }
            }
        }
        if !finals.is_empty() && mine.iter().any(|j| !finals.contains_key(&j.job_id)) {
            counts.drain = None;
        }
        let twice = people_with_several_photos(client, token, &district).await?;
        counts.applied_twice = twice.max(replaced_or_superseded);
        counts.unexpected_jobs = unexpected_jobs(client, token, &district, &mine).await?;
        out.push(counts);
    }
    Ok(out)
}

/// People of the district given more than one photo.
async fn people_with_several_photos(
    client: &TestClient,
    token: &str,
    district: &str,
) -> anyhow::Result<u64> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/districts/{district}/people?limit=1000");
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let page = get_json(client, token, &path).await?;
        for person in page["items"].as_array().into_iter().flatten() {
            if person["has_photo"].as_bool() == Some(true)
                && let Some(id) = person["id"].as_str()
            {
                ids.push(id.to_owned());
            }
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let versions = futures::stream::iter(ids)
        .map(|id| async move {
            let path = format!("/v1/districts/{district}/people/{id}/photos");
            let body = get_json(client, token, &path).await?;
            // The versions are a plain array; a page of them would be under `items`.
            let versions = body.as_array().or_else(|| body["items"].as_array());
            anyhow::Ok(versions.map_or(0, Vec::len))
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let mut several = 0;
    for count in versions {
        if count? > 1 {
            several += 1;
        }
    }
    Ok(several)
}

/// Jobs of the district that no accepted import returned.
async fn unexpected_jobs(
    client: &TestClient,
    token: &str,
    district: &str,
    mine: &[&Accepted],
) -> anyhow::Result<u64> {
    let mut unexpected = 0;
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/districts/{district}/jobs?limit=1000");
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let page = get_json(client, token, &path).await?;
        for job in page["items"].as_array().into_iter().flatten() {
            let id = job["job_id"].as_str().unwrap_or_default();
            if !mine.iter().any(|a| a.job_id == id) {
                unexpected += 1;
            }
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(unexpected)
}

/// A small deterministic generator, for which image-processor dies next.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (r % n.max(1) as u64) as usize
    }
}

/// A service process the run keeps alive: started again whenever it exits, unless held down.
struct Service {
    kind: &'static str,
    name: String,
    binary: String,
    args: Vec<&'static str>,
    env: Vec<(String, String)>,
    port: u16,
    process: Option<ServiceProcess>,
    /// Stopped on purpose (the roster outage): not started again until released.
    held: bool,
}

impl Service {
    async fn start(&mut self, logs: &Path) -> anyhow::Result<()> {
        let process = ServiceProcess::start_on(
            &self.binary,
            &self.args,
            &self.name,
            self.env.clone(),
            logs,
            self.port,
        )
        .await?;
        self.process = Some(process);
        Ok(())
    }
}

/// Every service process of the distributed stack.
struct Services {
    logs: PathBuf,
    list: Vec<Service>,
    processor_env: Vec<(String, String)>,
    processor_binary: String,
    next_processor: usize,
    exits: BTreeMap<String, usize>,
    dice: Dice,
}

/// Starts again, every half second, any service that exited, until `stop` is cancelled.
async fn keep_alive(services: &Mutex<Services>, stop: &CancellationToken) -> anyhow::Result<()> {
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        services.lock().await.keep_alive().await;
    }
    Ok(())
}

impl Services {
    /// Starts every service that is down and not held; counts those that exited.
    async fn keep_alive(&mut self) {
        for service in &mut self.list {
            if let Some(process) = &mut service.process
                && let Ok(Some(status)) = process.exited()
            {
                tracing::warn!(service = %service.name, %status, "exited; starting it again");
                *self.exits.entry(service.kind.to_owned()).or_default() += 1;
                service.process = None;
            }
            if service.process.is_none()
                && !service.held
                && let Err(error) = service.start(&self.logs).await
            {
                tracing::warn!(service = %service.name, error = format!("{error:#}"), "could not start; trying again");
            }
        }
    }

    fn processor(&mut self) -> anyhow::Result<Service> {
        let name = format!("image-processor-{}", self.next_processor);
        self.next_processor += 1;
        let mut env = self.processor_env.clone();
        env.push(("PICTUREDAY_INSTANCE".into(), name.clone()));
        env.push((
            "PICTUREDAY_SPOOL_DIR".into(),
            self.logs.join("spool").join(&name).display().to_string(),
        ));
        Ok(Service {
            kind: "image-processor",
            name,
            binary: self.processor_binary.clone(),
            args: Vec::new(),
            env,
            port: free_port()?,
            process: None,
            held: false,
        })
    }

    /// `kill -9` of a running image-processor, chosen at random, and a new one in its place.
    async fn kill_processor(&mut self) -> anyhow::Result<()> {
        let running: Vec<usize> = self
            .list
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == "image-processor" && s.process.is_some())
            .map(|(i, _)| i)
            .collect();
        anyhow::ensure!(!running.is_empty(), "no image-processor is running");
        let victim = running[self.dice.below(running.len())];
        let mut dead = self.list.remove(victim);
        if let Some(process) = &mut dead.process {
            process.kill()?;
        }
        let mut replacement = self.processor()?;
        // Started by the next keep_alive if it cannot start now (NATS away).
        if let Err(error) = replacement.start(&self.logs).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "replacement image-processor did not start yet"
            );
        }
        self.list.push(replacement);
        Ok(())
    }

    fn find(&mut self, kind: &str) -> anyhow::Result<&mut Service> {
        self.list
            .iter_mut()
            .find(|s| s.kind == kind)
            .with_context(|| format!("no {kind} service"))
    }
}

/// The servers under the services; the run restarts them.
struct Servers {
    nats: Option<NatsServer>,
    nats_dir: PathBuf,
    nats_port: u16,
    postgres: PostgresServer,
}

/// What the fault task did.
#[derive(Default)]
struct Faults {
    processor_kills: usize,
    nats_kills: usize,
    nats_stops: usize,
    postgres_crashes: usize,
    postgres_stops: usize,
    roster_outage: Option<Duration>,
}

enum Fault {
    KillProcessor,
    RestartNats,
    RestartPostgres,
}

/// The order of the faults: processor kills, with the server restarts spread evenly among them.
fn schedule(plan: &Plan) -> Vec<Fault> {
    let mut faults: Vec<Fault> = (0..plan.processor_kills)
        .map(|_| Fault::KillProcessor)
        .collect();
    // Inserted from the back, so earlier positions stay where they were computed.
    let mut heavy: Vec<(usize, Fault)> = Vec::new();
    for i in 0..plan.nats_restarts {
        heavy.push((
            (i + 1) * plan.processor_kills / (plan.nats_restarts + 1),
            Fault::RestartNats,
        ));
    }
    for i in 0..plan.postgres_restarts {
        // Offset by half a step from the NATS restarts, so the two are not back to back.
        let step = plan.processor_kills / (plan.postgres_restarts + 1);
        heavy.push((
            ((i + 1) * step + step / 2).min(plan.processor_kills),
            Fault::RestartPostgres,
        ));
    }
    heavy.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    for (at, fault) in heavy {
        faults.insert(at.min(faults.len()), fault);
    }
    faults
}

async fn inject(
    plan: &Plan,
    services: &Mutex<Services>,
    servers: &Mutex<Servers>,
    faults: &Mutex<Faults>,
) -> anyhow::Result<()> {
    let (mut nats_restarts, mut postgres_restarts) = (0, 0);
    for fault in schedule(plan) {
        tokio::time::sleep(plan.fault_gap).await;
        match fault {
            Fault::KillProcessor => {
                services.lock().await.kill_processor().await?;
                faults.lock().await.processor_kills += 1;
            }
            Fault::RestartNats => {
                let mut servers = servers.lock().await;
                let nats = servers.nats.take().context("nats-server is not running")?;
                // Every other restart is a crash: kill -9, no chance to close its files.
                nats_restarts += 1;
                if nats_restarts % 2 == 1 {
                    nats.kill().await;
                    faults.lock().await.nats_kills += 1;
                } else {
                    nats.stop().await;
                    faults.lock().await.nats_stops += 1;
                }
                tokio::time::sleep(plan.downtime).await;
                let port = Some(servers.nats_port);
                servers.nats = Some(NatsServer::start_on(&servers.nats_dir, port).await?);
            }
            Fault::RestartPostgres => {
                let mut servers = servers.lock().await;
                postgres_restarts += 1;
                let immediate = postgres_restarts % 2 == 1;
                servers.postgres.stop(immediate).await?;
                tokio::time::sleep(plan.downtime).await;
                servers.postgres.start_again().await?;
                let mut faults = faults.lock().await;
                if immediate {
                    faults.postgres_crashes += 1;
                } else {
                    faults.postgres_stops += 1;
                }
            }
        }
    }
    Ok(())
}

/// Stops the roster service for `outage`, then lets it start again.
async fn roster_outage(
    services: &Mutex<Services>,
    faults: &Mutex<Faults>,
    outage: Duration,
) -> anyhow::Result<()> {
    {
        let mut services = services.lock().await;
        let roster = services.find("roster")?;
        roster.held = true;
        if let Some(mut process) = roster.process.take() {
            process.terminate(Duration::from_secs(30)).await?;
        }
    }
    tokio::time::sleep(outage).await;
    let mut services = services.lock().await;
    let logs = services.logs.clone();
    let roster = services.find("roster")?;
    roster.held = false;
    roster.start(&logs).await?;
    faults.lock().await.roster_outage = Some(outage);
    Ok(())
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn path_str(path: &Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// The distributed stack under faults.
async fn distributed(plan: &Plan, binaries: &Binaries, dir: &Path) -> anyhow::Result<PartReport> {
    std::fs::create_dir_all(dir)?;
    // Durable commits: PostgreSQL is killed, and a commit it acknowledged must survive that
    // (without fsync, which only matters if the machine dies).
    let (postgres, s3) = tokio::try_join!(PostgresServer::start_durable(), S3Server::start())?;
    let database_url = postgres.create_database().await?;
    let nats_dir = dir.join("nats");
    let nats_port = free_port()?;
    let nats = NatsServer::start_on(&nats_dir, Some(nats_port)).await?;
    let nats_url = nats.url().to_owned();
    let servers = Mutex::new(Servers {
        nats: Some(nats),
        nats_dir,
        nats_port,
        postgres,
    });

    let ack_wait = plan.ack_wait_secs.to_string();
    let stall_after = plan.stall_after_secs.to_string();
    let common = env(&[
        ("NATS_URL", &nats_url),
        ("PICTUREDAY_ACK_WAIT_SECS", &ack_wait),
        ("PICTUREDAY_STALL_AFTER_SECS", &stall_after),
    ]);
    let storage = env(&[
        (
            "PICTUREDAY_STORAGE",
            &format!("s3://{}/pictureday", s3_server::BUCKET),
        ),
        ("PICTUREDAY_S3_FORCE_PATH_STYLE", "true"),
        ("AWS_ENDPOINT_URL", &s3.endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", s3_server::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", s3_server::SECRET_KEY),
    ]);
    let database = env(&[
        ("DATABASE_URL", &database_url),
        ("PICTUREDAY_OPERATOR_TOKEN", OPERATOR_TOKEN),
    ]);
    let logs = dir.to_owned();
    let service = |kind: &'static str, binary: &Path, with: &[&Vec<(String, String)>]| {
        let mut env = common.clone();
        for extra in with {
            env.extend(extra.iter().cloned());
        }
        env.push(("PICTUREDAY_INSTANCE".into(), kind.into()));
        env.push((
            "PICTUREDAY_SPOOL_DIR".into(),
            logs.join("spool").join(kind).display().to_string(),
        ));
        anyhow::Ok(Service {
            kind,
            name: kind.to_owned(),
            binary: path_str(binary)?,
            args: Vec::new(),
            env,
            port: free_port()?,
            process: None,
            held: false,
        })
    };
    // Roster first: it runs the migrations on the empty database, and the matcher asks it.
    // The matcher and the image-processors get no database: an outage of it is not theirs.
    let mut list = vec![
        service("roster", &binaries.roster, &[&storage, &database])?,
        service("ingest", &binaries.ingest, &[&storage, &database])?,
        service("reporting", &binaries.reporting, &[&storage, &database])?,
        service("matcher", &binaries.matcher, &[])?,
    ];
    let upstream = |kind: &str| {
        list.iter()
            .find(|s| s.kind == kind)
            .map(|s| format!("http://127.0.0.1:{}", s.port))
            .unwrap_or_default()
    };
    let gateway_env = env(&[
        ("PICTUREDAY_INGEST_URL", &upstream("ingest")),
        ("PICTUREDAY_ROSTER_URL", &upstream("roster")),
        ("PICTUREDAY_REPORTING_URL", &upstream("reporting")),
    ]);
    let gateway_port = free_port()?;
    list.push(Service {
        kind: "gateway",
        name: "gateway".into(),
        binary: path_str(&binaries.pictureday)?,
        args: vec!["gateway"],
        env: gateway_env,
        port: gateway_port,
        process: None,
        held: false,
    });
    let mut processor_env = common.clone();
    processor_env.extend(storage.iter().cloned());
    processor_env.push(("PICTUREDAY_IMAGE_WORKERS".into(), "1".into()));
    let mut services = Services {
        logs: logs.clone(),
        list,
        processor_env,
        processor_binary: path_str(&binaries.image_processor)?,
        next_processor: 0,
        exits: BTreeMap::new(),
        dice: Dice(plan.seed.max(1)),
    };
    for _ in 0..plan.image_processors {
        let processor = services.processor()?;
        services.list.push(processor);
    }
    for service in &mut services.list {
        service.start(&logs).await?;
    }
    let services = Mutex::new(services);

    let client = TestClient::new(&format!("http://127.0.0.1:{gateway_port}"), OPERATOR_TOKEN);
    let (per_district, queue) = batches(plan, plan.photos);
    let tokens = districts(&client, plan, per_district).await?;

    let faults = Mutex::new(Faults::default());
    let stop = CancellationToken::new();
    let alive = keep_alive(&services, &stop);
    let started = Instant::now();
    let work = async {
        let uploads = async {
            let accepted = upload_all(&client, plan, &tokens, queue).await?;
            anyhow::Ok((accepted, started.elapsed()))
        };
        let chaos = async {
            let outage = async {
                if let Some(outage) = plan.roster_outage {
                    // After a third of the other faults, so kills and restarts happen while
                    // the roster is away too.
                    let kills_first = plan.processor_kills / 3;
                    tokio::time::sleep(plan.fault_gap * kills_first as u32).await;
                    roster_outage(&services, &faults, outage).await?;
                }
                anyhow::Ok(())
            };
            tokio::try_join!(inject(plan, &services, &servers, &faults), outage)?;
            anyhow::Ok(Instant::now())
        };
        let ((accepted, uploads_took), last_fault) = tokio::try_join!(uploads, chaos)?;
        stop.cancel();
        anyhow::Ok((accepted, uploads_took, last_fault))
    };
    let ((accepted, uploads_took, last_fault), ()) = tokio::try_join!(work, alive)?;
    let faults_took = last_fault - started;

    // Keep the services up while the work drains.
    let stop = CancellationToken::new();
    let alive = keep_alive(&services, &stop);
    let settle = async {
        let finals = wait_final(&client, &tokens, &accepted, last_fault, plan.patience).await?;
        let counts = account(&client, plan, &tokens, &accepted, &finals, last_fault).await?;
        stop.cancel();
        anyhow::Ok((finals, counts))
    };
    let ((finals, districts), ()) = tokio::try_join!(settle, alive)?;
    let drain = (finals.len() == accepted.len()).then(|| {
        finals
            .values()
            .map(|at| at.saturating_duration_since(last_fault))
            .max()
            .unwrap_or_default()
    });

    let mut services = services.into_inner();
    for service in &mut services.list {
        if let Some(process) = &mut service.process {
            let _ = process.terminate(Duration::from_secs(30)).await;
        }
    }
    if let Some(nats) = servers.into_inner().nats {
        nats.stop().await;
    }
    let faults = faults.into_inner();
    let mut done = vec![
        (
            "image-processor killed (kill -9) and replaced".to_owned(),
            faults.processor_kills,
        ),
        ("nats-server killed (kill -9)".to_owned(), faults.nats_kills),
        (
            "nats-server stopped (SIGTERM)".to_owned(),
            faults.nats_stops,
        ),
        (
            "PostgreSQL crashed (immediate stop)".to_owned(),
            faults.postgres_crashes,
        ),
        (
            "PostgreSQL stopped (fast stop)".to_owned(),
            faults.postgres_stops,
        ),
    ];
    if let Some(outage) = faults.roster_outage {
        done.push((format!("roster stopped for {}", secs(outage)), 1));
    }
    Ok(PartReport {
        name: format!(
            "distributed: PostgreSQL, S3, nats-server, {} image-processors; {} photos",
            plan.image_processors,
            per_district * plan.districts
        ),
        districts,
        faults: done,
        exits: services.exits,
        uploads_took,
        faults_took,
        drain,
        logs: logs.clone(),
    })
}

/// `pictureday serve` on `data`, listening on `port`.
async fn serve(
    binary: &str,
    data: &Path,
    logs: &Path,
    port: u16,
    plan: &Plan,
) -> anyhow::Result<ServiceProcess> {
    let mut env = env(&[
        ("PICTUREDAY_DATA_DIR", &path_str(data)?),
        ("PICTUREDAY_OPERATOR_TOKEN", OPERATOR_TOKEN),
        ("PICTUREDAY_IMAGE_WORKERS", "2"),
        ("PICTUREDAY_ACK_WAIT_SECS", &plan.ack_wait_secs.to_string()),
        (
            "PICTUREDAY_STALL_AFTER_SECS",
            &plan.stall_after_secs.to_string(),
        ),
    ]);
    if let Ok(nats) = std::env::var(pictureday_platform::nats_server::BINARY_ENV) {
        env.push((
            pictureday_platform::nats_server::BINARY_ENV.to_owned(),
            nats,
        ));
    }
    ServiceProcess::start_on(binary, &["serve"], "pictureday", env, logs, port).await
}

/// Kills the nats-server a launcher on its data directory started, when a test ends early (a
/// killed launcher cannot stop it).
pub struct NatsReaper<'a>(pub &'a Path);

impl Drop for NatsReaper<'_> {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.0.join("nats/nats-server.pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<u32>() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// SIGKILL of the launcher and of its nats-server, as when the machine dies.
pub fn kill_embedded(server: &mut ServiceProcess, data: &Path) -> anyhow::Result<()> {
    let nats_pid = std::fs::read_to_string(data.join("nats/nats-server.pid")).unwrap_or_default();
    server.kill()?;
    if let Ok(pid) = nats_pid.trim().parse::<u32>() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    Ok(())
}

/// The embedded default killed outright in the middle of its batch, `plan.embedded_kills`
/// times.
async fn embedded(plan: &Plan, binaries: &Binaries, dir: &Path) -> anyhow::Result<PartReport> {
    std::fs::create_dir_all(dir)?;
    let data = dir.join("data");
    let binary = path_str(&binaries.pictureday)?;
    let port = free_port()?;
    let mut server = serve(&binary, &data, dir, port, plan).await?;
    let client = TestClient::new(&server.base_url, OPERATOR_TOKEN);
    let (per_district, queue) = batches(plan, plan.embedded_photos);
    let tokens = districts(&client, plan, per_district).await?;
    // Uploaded before the kills: ingest answers once a job is committed, so an import cut off
    // by a kill could be recorded and then sent again by the client as a second job.
    let started = Instant::now();
    let accepted = upload_all(&client, plan, &tokens, queue).await?;
    let uploads_took = started.elapsed();
    let mut kills = 0;
    let mut kills_mid_batch = 0;
    for _ in 0..plan.embedded_kills {
        tokio::time::sleep(plan.fault_gap).await;
        let open = open_jobs(&client, &tokens, &accepted).await;
        kill_embedded(&mut server, &data)?;
        kills += 1;
        if open > 0 {
            kills_mid_batch += 1;
        }
        server = serve(&binary, &data, dir, port, plan).await?;
    }
    let last_fault = Instant::now();
    let finals = wait_final(&client, &tokens, &accepted, last_fault, plan.patience).await?;
    let districts = account(&client, plan, &tokens, &accepted, &finals, last_fault).await?;
    let drain = (finals.len() == accepted.len()).then(|| {
        finals
            .values()
            .map(|at| at.saturating_duration_since(last_fault))
            .max()
            .unwrap_or_default()
    });
    server.terminate(Duration::from_secs(30)).await?;
    Ok(PartReport {
        name: format!(
            "embedded: pictureday serve (SQLite, local disk, its own nats-server); {} photos",
            per_district * plan.districts
        ),
        districts,
        faults: vec![
            (
                "pictureday serve and its nats-server killed (SIGKILL)".to_owned(),
                kills,
            ),
            ("of them with a job still open".to_owned(), kills_mid_batch),
        ],
        exits: BTreeMap::new(),
        uploads_took,
        faults_took: last_fault - started,
        drain,
        logs: dir.to_owned(),
    })
}

/// Jobs not yet final (a failed request counts as open).
async fn open_jobs(client: &TestClient, tokens: &[String], accepted: &[Accepted]) -> usize {
    let mut open = 0;
    for job in accepted {
        let district = district_name(job.district);
        let path = format!("/v1/districts/{district}/jobs/{}", job.job_id);
        match client.get_json(&tokens[job.district as usize], &path).await {
            Ok(body) if is_final(&body) => {}
            _ => open += 1,
        }
    }
    open
}
