//! Clever sync benchmark: starts the real `pictureday serve` (the embedded default, SQLite) as its
//! own process and a fake Clever (`pictureday_tests::fake_clever`) in this one with N users
//! across S schools (95% students, 4% teachers, 1% staff), configures a district's Clever source
//! and times its first, full sync from the `PUT` until the run has finished, with the server's
//! peak resident memory meanwhile. Then a second full sync (`?full=true`: everyone unchanged)
//! and an incremental one of 1% of the users updated through the events feed. Target: under a
//! minute and under 200 MB for 100,000 users across 50 schools.
//!
//!   cargo build -p pictureday-tests --bin clever-sync-bench --bin pictureday-under-test
//!   target/debug/clever-sync-bench [--users 100000] [--schools 50] [--bin target/debug/pictureday-under-test]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use pictureday_tests::bench_server::Embedded;
use pictureday_tests::fake_clever::{FakeClever, school, staff, student, teacher};
use serde_json::{Value, json};

const OPERATOR: &str = "bench-operator-token-0123456789abcdef";
const CLEVER_TOKEN: &str = "bench-clever-token-0123456789";

struct Args {
    users: u32,
    schools: u32,
    bin: PathBuf,
}

const USAGE: &str =
    "clever-sync-bench [--users 100000] [--schools 50] [--bin target/debug/pictureday-under-test]";

fn parse_args() -> anyhow::Result<Args> {
    pictureday_tests::bench_args::exit_on_help(USAGE);
    let mut args = Args {
        users: 100_000,
        schools: 50,
        bin: std::env::current_exe()?
            .parent()
            .context("this program has no directory")?
            .join("pictureday-under-test"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--users" => args.users = value.parse()?,
            "--schools" => args.schools = value.parse()?,
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

/// Starts the peak (`VmHWM`) again from the current RSS.
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

fn user_id(n: u32) -> String {
    format!("{:024x}", 0x7000_0000_0000u64 + u64::from(n))
}

fn user(n: u32, schools: &[String], last: &str) -> serde_json::Value {
    let id = user_id(n);
    let at = &schools[n as usize % schools.len()];
    let first = format!("First{}", n % 997);
    match n % 100 {
        0 => staff(&id, &first, last, &format!("ST{n}"), &[at]),
        1..=4 => teacher(
            &id,
            &first,
            last,
            &format!("T{n}"),
            &format!("TN{n}"),
            &[at],
        ),
        _ => student(
            &id,
            &first,
            last,
            &format!("S{n}"),
            &format!("{n}"),
            &format!("{}", n % 12 + 1),
            &[at],
        ),
    }
}

/// The embedded default on `data`, ready.
async fn start(bin: &std::path::Path, data: &std::path::Path) -> anyhow::Result<Embedded> {
    Embedded::start(bin, data, OPERATOR).await
}

/// Runs `start_run` (which makes a sync happen) and waits for the source's `nth` run to end;
/// returns the run, the seconds it took and the server's peak RSS meanwhile (MB).
async fn measured<F, Fut>(
    http: &reqwest::Client,
    base: &str,
    pid: u32,
    nth: usize,
    start_run: F,
) -> anyhow::Result<(Value, f64, f64)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let peak_reset = reset_peak(pid);
    let sampled = Arc::new(AtomicU64::new(0));
    let sampler = {
        let sampled = sampled.clone();
        tokio::spawn(async move {
            loop {
                if let Some(mb) = status_mb(pid, "VmRSS:") {
                    sampled.fetch_max((mb * 1024.0) as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let started = Instant::now();
    start_run().await?;
    let run = loop {
        let source: Value = http
            .get(format!("{base}/v1/districts/bench/sources/clever"))
            .bearer_auth(OPERATOR)
            .send()
            .await?
            .json()
            .await?;
        let runs = source["runs"].as_array().cloned().unwrap_or_default();
        if runs.len() >= nth && (runs[0]["status"] == "finished" || runs[0]["status"] == "failed") {
            break runs[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let secs = started.elapsed().as_secs_f64();
    sampler.abort();
    let sampled = sampled.load(Ordering::Relaxed) as f64 / 1024.0;
    let peak = match (peak_reset, status_mb(pid, "VmHWM:")) {
        (true, Some(hwm)) => hwm.max(sampled),
        _ => sampled,
    };
    Ok((run, secs, peak))
}

fn report(what: &str, run: &Value, secs: f64, peak: f64) {
    println!("  {what}: {secs:.1} s, peak RSS {peak:.0} MB");
    println!(
        "    {} {}: counts {} schools {} errors {}",
        run["kind"], run["status"], run["counts"], run["schools"], run["error_count"]
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let fake = FakeClever::start(&[CLEVER_TOKEN]).await?;
    let schools: Vec<String> = (0..args.schools).map(|_| fake.id()).collect();
    for (i, id) in schools.iter().enumerate() {
        fake.put_school(&school(id, &format!("School {i}"), &i.to_string()));
    }
    fake.put_users_raw((0..args.users).map(|n| {
        (
            user_id(n),
            user(n, &schools, &format!("Last{}", n % 1009)).to_string(),
        )
    }));
    // One event, so full syncs start from a cursor.
    fake.change("schools.updated", school(&schools[0], "School 0", "0"));

    let work = tempfile::tempdir()?;
    let server = start(&args.bin, &work.path().join("data")).await?;
    let (pid, base) = (server.pid, server.base.clone());
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/v1/districts"))
        .bearer_auth(OPERATOR)
        .json(&json!({"id": "bench", "name": "Bench USD"}))
        .send()
        .await?;
    if !created.status().is_success() {
        bail!("creating the district: {}", created.text().await?);
    }
    println!(
        "Clever sync of {} users across {} schools (embedded default, SQLite), baseline RSS {:.0} MB:",
        args.users,
        args.schools,
        status_mb(pid, "VmRSS:").unwrap_or(0.0)
    );

    let (run, secs, peak) = measured(&http, &base, pid, 1, || async {
        let put = http
            .put(format!("{base}/v1/districts/bench/sources/clever"))
            .bearer_auth(OPERATOR)
            .json(&json!({"token": CLEVER_TOKEN, "base_url": fake.base_url}))
            .send()
            .await?;
        if !put.status().is_success() {
            bail!("configuring: {}", put.text().await?);
        }
        Ok(())
    })
    .await?;
    report("first full sync (everyone created)", &run, secs, peak);
    let first = (secs, peak);

    let sync = |query: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        move || async move {
            http.post(format!(
                "{base}/v1/districts/bench/sources/clever/sync{query}"
            ))
            .bearer_auth(OPERATOR)
            .send()
            .await?
            .error_for_status()?;
            Ok(())
        }
    };
    let (run, secs, peak) = measured(&http, &base, pid, 2, sync("?full=true")).await?;
    report("second full sync (everyone unchanged)", &run, secs, peak);

    let changed = args.users / 100;
    for n in 0..changed {
        fake.change("users.updated", user(n * 100 + 7, &schools, "Renamed"));
    }
    let (run, secs, peak) = measured(&http, &base, pid, 3, sync("")).await?;
    report(
        &format!("incremental sync ({changed} users.updated events)"),
        &run,
        secs,
        peak,
    );

    let verdict = if first.0 < 60.0 && first.1 < 200.0 {
        "met"
    } else {
        "NOT met"
    };
    println!("  target (full sync under 60 s and 200 MB): {verdict}");
    drop(server);
    Ok(())
}
