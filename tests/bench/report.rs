//! Report streaming benchmark: starts the real `pictureday serve` (the embedded default, SQLite)
//! as its own process, loads N people without photos through the roster CSV API, then downloads
//! the missing-photos CSV alone and twice at once, reading each body as it arrives and keeping
//! none of it. Prints the server's resident memory idle and at its peak during the downloads, and
//! the download rate, each as a ratio against a reference from the same run: the idle server's
//! RSS, and the same people read through the paged `GET …/people?missing_photo=true` list.
//!
//!   cargo build -p pictureday-tests --bin report-bench --bin pictureday-under-test
//!   target/debug/report-bench [--people 200000] [--index] [--bin target/debug/pictureday-under-test]
//!
//! The server is restarted after loading, so the idle reference is a fresh server on a full
//! database, not one still holding what the roster upload allocated.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use pictureday_tests::bench_server::Embedded;
use serde_json::{Value, json};

/// People per roster upload (the API takes up to 64 MB, ~300,000 people, at once).
const CHUNK: u32 = 50_000;
const TOKEN: &str = "bench-operator-token-0123456789abcdef";

struct Args {
    people: u32,
    bin: PathBuf,
    /// Add the index a follow-up migration would add (see `INDEX`) before downloading.
    index: bool,
}

/// The index the report's keyset pages can seek in (roster's schema does not have it yet).
const INDEX: &str = "CREATE INDEX IF NOT EXISTS people_missing_photos_report ON people \
    (district_id, school, last_name, first_name, id) WHERE current_photo_id IS NULL";

const USAGE: &str =
    "report-bench [--people 200000] [--index] [--bin target/debug/pictureday-under-test]";

fn parse_args() -> anyhow::Result<Args> {
    pictureday_tests::bench_args::exit_on_help(USAGE);
    let mut args = Args {
        people: 200_000,
        bin: std::env::current_exe()?
            .parent()
            .context("this program has no directory")?
            .join("pictureday-under-test"),
        index: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--index" {
            args.index = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--people" => args.people = value.parse()?,
            "--bin" => args.bin = value.into(),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

/// A field of /proc/<pid>/status in MB (`VmRSS`: now; `VmHWM`: the peak).
fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Starts the peak (`VmHWM`) again from the current RSS, so the peak read later is the peak of
/// what came after, not of loading the roster.
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The highest RSS seen while `work` runs, sampled every 10 ms (a check on `VmHWM`, and the
/// figure when the peak cannot be reset).
async fn sampled_peak<T>(pid: u32, work: impl Future<Output = T>) -> (T, f64) {
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                if let Some(mb) = status_mb(pid, "VmRSS:") {
                    peak.fetch_max((mb * 1024.0) as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let out = work.await;
    sampler.abort();
    (out, peak.load(Ordering::Relaxed) as f64 / 1024.0)
}

/// Downloads `url`, counting the bytes and keeping none.
async fn download(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let response = http.get(url).bearer_auth(TOKEN).send().await?;
    anyhow::ensure!(response.status() == 200, "{url}: {}", response.status());
    let mut bytes = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        bytes += chunk?.len() as u64;
    }
    Ok(bytes)
}

/// Reads every person without a photo through the paged list; returns the bytes read.
async fn page_through(http: &reqwest::Client, base: &str) -> anyhow::Result<(u64, u64)> {
    let (mut bytes, mut people) = (0u64, 0u64);
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/districts/bench/people?missing_photo=true&limit=1000");
        if let Some(after) = &after {
            url.push_str(&format!("&after={after}"));
        }
        let body = http
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await?
            .bytes()
            .await?;
        bytes += body.len() as u64;
        let page: Value = serde_json::from_slice(&body)?;
        people += page["items"].as_array().map_or(0, Vec::len) as u64;
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return Ok((bytes, people)),
        }
    }
}

/// The embedded default on `data`, ready.
async fn start(bin: &std::path::Path, data: &std::path::Path) -> anyhow::Result<Embedded> {
    Embedded::start(bin, data, TOKEN).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    let server = start(&args.bin, &data).await?;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/v1/districts"))
        .bearer_auth(TOKEN)
        .json(&json!({"id": "bench", "name": "Bench"}))
        .send()
        .await?;
    anyhow::ensure!(created.status() == 201, "district: {}", created.status());

    println!(
        "report benchmark: {} people without photos, SQLite, dev build",
        args.people
    );
    let started = Instant::now();
    let mut first = 0;
    while first < args.people {
        let last = (first + CHUNK).min(args.people);
        let mut roster =
            String::from("role,sis_id,student_number,email,first_name,last_name,school\n");
        for n in first..last {
            roster.push_str(&format!(
                "student,S{n},{n},p{n}@bench.example.org,First{},Last{},School {}\n",
                n % 997,
                n % 1009,
                n % 40
            ));
        }
        let loaded: Value = http
            .post(format!("{base}/v1/districts/bench/roster"))
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .body(roster)
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(loaded["created"] == last - first, "roster: {loaded}");
        first = last;
    }
    println!(
        "  roster loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    server.stop().await?;
    if args.index {
        let url = format!("sqlite://{}?mode=rw", data.join("pictureday.db").display());
        let db = sea_orm::Database::connect(url).await?;
        sea_orm::ConnectionTrait::execute_unprepared(&db, INDEX).await?;
        db.close().await?;
        println!("  with the index: {INDEX}");
    }
    let server = start(&args.bin, &data).await?;
    let (pid, base) = (server.pid, server.base.clone());

    let report = format!("{base}/v1/districts/bench/reports/missing-photos.csv");
    // Settle, then the idle server: the reference for memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = status_mb(pid, "VmRSS:").context("no RSS for the server")?;
    let peak_reset = reset_peak(pid);

    let started = Instant::now();
    let (single, single_peak) = sampled_peak(pid, download(&http, &report)).await;
    let single = single?;
    let single_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (both, both_peak) = sampled_peak(pid, async {
        tokio::try_join!(download(&http, &report), download(&http, &report))
    })
    .await;
    let (a, b) = both?;
    let both_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        a == single && b == single,
        "downloads differ: {single}, {a}, {b}"
    );
    let hwm = status_mb(pid, "VmHWM:").filter(|_| peak_reset);

    let started = Instant::now();
    let (paged_bytes, paged_people) = page_through(&http, &base).await?;
    let paged_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        paged_people == u64::from(args.people),
        "the list has {paged_people} people"
    );

    let mb = |bytes: u64| bytes as f64 / 1_048_576.0;
    let people = f64::from(args.people);
    let paged_rate = people / paged_secs;
    println!("  report: {:.1} MB, {} rows", mb(single), args.people);
    println!("  server RSS idle (reference)          {idle:>8.1} MB");
    println!(
        "  peak during one download             {single_peak:>8.1} MB  ×{:.2} idle",
        single_peak / idle
    );
    println!(
        "  peak during two at once              {both_peak:>8.1} MB  ×{:.2} idle",
        both_peak / idle
    );
    if let Some(hwm) = hwm {
        println!(
            "  VmHWM since idle (both runs)         {hwm:>8.1} MB  ×{:.2} idle",
            hwm / idle
        );
    }
    println!(
        "  paged list (reference)   {:>7.2} MB/s  {:>9.0} people/s",
        mb(paged_bytes) / paged_secs,
        paged_rate
    );
    println!(
        "  one download             {:>7.2} MB/s  {:>9.0} people/s  ×{:.2} paged list",
        mb(single) / single_secs,
        people / single_secs,
        people / single_secs / paged_rate
    );
    println!(
        "  two at once (together)   {:>7.2} MB/s  {:>9.0} people/s  ×{:.2} paged list",
        mb(a + b) / both_secs,
        2.0 * people / both_secs,
        2.0 * people / both_secs / paged_rate
    );
    drop(server);
    Ok(())
}
