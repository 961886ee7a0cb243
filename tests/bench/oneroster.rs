//! OneRoster benchmark: starts the real `pictureday serve` (the embedded default, SQLite) as its
//! own process, posts a OneRoster bulk zip of N users across S schools (`orgs.csv`, `users.csv`;
//! with `--version 1.2`, `roles.csv` too), and times the import from the post until it has
//! completed, with the server's peak resident memory meanwhile. Then the same zip again without
//! 1% of the users (everyone else unchanged, those deactivated). Target: under a minute and under
//! 200 MB for 100,000 users across 50 schools.
//!
//!   cargo build -p pictureday-tests --bin oneroster-bench --bin pictureday-under-test
//!   target/debug/oneroster-bench [--users 100000] [--schools 50] [--version 1.1|1.2] [--bin target/debug/pictureday-under-test]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use pictureday_tests::bench_server::Embedded;
use serde_json::{Value, json};

const TOKEN: &str = "bench-operator-token-0123456789abcdef";

struct Args {
    users: u32,
    schools: u32,
    version: String,
    bin: PathBuf,
}

const USAGE: &str = "oneroster-bench [--users 100000] [--schools 50] [--version 1.1|1.2] [--bin target/debug/pictureday-under-test]";

fn parse_args() -> anyhow::Result<Args> {
    pictureday_tests::bench_args::exit_on_help(USAGE);
    let mut args = Args {
        users: 100_000,
        schools: 50,
        version: "1.1".into(),
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
            "--version" if value == "1.1" || value == "1.2" => args.version = value,
            "--bin" => args.bin = value.into(),
            other => bail!("unknown flag {other} (or a bad value)"),
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

/// The zip: every `skip`th user (if any) left out.
fn oneroster_zip(args: &Args, skip: Option<u32>) -> anyhow::Result<Vec<u8>> {
    let v12 = args.version == "1.2";
    let mut orgs = String::from(
        "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n\
         district,,,Bench USD,district,,\n",
    );
    for s in 0..args.schools {
        orgs.push_str(&format!("school-{s},,,School {s},school,{s},district\n"));
    }
    let mut users = if v12 {
        String::from(
            "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,resourceSourcedIds,preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns\n",
        )
    } else {
        String::from(
            "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n",
        )
    };
    let mut roles = String::from(
        "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId\n",
    );
    for n in 0..args.users {
        if skip.is_some_and(|k| n % k == k - 1) {
            continue;
        }
        let school = format!("school-{}", n % args.schools);
        let role = if n % 20 == 0 { "teacher" } else { "student" };
        let (first, last, grade) = (
            format!("First{}", n % 997),
            format!("Last{}", n % 1009),
            format!("{:02}", n % 12 + 1),
        );
        if v12 {
            users.push_str(&format!(
                "u{n},,,true,user{n},{{SIS:S{n}}},{first},{last},,{n},user{n}@bench.example.org,,,,{grade},,,,,,,{school},\n"
            ));
            roles.push_str(&format!("r{n},,,u{n},primary,{role},,,{school},\n"));
        } else {
            users.push_str(&format!(
                "u{n},,,true,{school},{role},user{n},{{SIS:S{n}}},{first},{last},,{n},user{n}@bench.example.org,,,,{grade},\n"
            ));
        }
    }
    let manifest = format!(
        "propertyName,value\nmanifest.version,1.0\noneroster.version,{}\nfile.users,bulk\nfile.orgs,bulk\nfile.roles,{}\n",
        args.version,
        if v12 { "bulk" } else { "absent" }
    );
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default();
        let mut files = vec![
            ("manifest.csv", manifest),
            ("orgs.csv", orgs),
            ("users.csv", users),
        ];
        if v12 {
            files.push(("roles.csv", roles));
        }
        for (name, text) in files {
            zip.start_file(name, options)?;
            zip.write_all(text.as_bytes())?;
        }
        zip.finish()?;
    }
    Ok(out.into_inner())
}

/// The embedded default on `data`, ready.
async fn start(bin: &std::path::Path, data: &std::path::Path) -> anyhow::Result<Embedded> {
    Embedded::start(bin, data, TOKEN).await
}

/// Posts the zip and waits for its import; returns the import, the seconds from the post to its
/// end, and the server's peak RSS meanwhile (MB).
async fn import(
    http: &reqwest::Client,
    base: &str,
    pid: u32,
    zip: Vec<u8>,
) -> anyhow::Result<(Value, f64, f64)> {
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
    let accepted: Value = http
        .post(format!("{base}/v1/districts/bench/roster?wait=false"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/zip")
        .body(zip)
        .send()
        .await?
        .json()
        .await?;
    let url = format!(
        "{base}{}",
        accepted["status_url"]
            .as_str()
            .with_context(|| format!("not accepted: {accepted}"))?
    );
    let done = loop {
        let status: Value = http
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        if status["state"] == "completed" || status["state"] == "failed" {
            break status;
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
    Ok((done, secs, peak))
}

fn report(what: &str, done: &Value, secs: f64, peak: f64) {
    println!("  {what}: {secs:.1} s, peak RSS {peak:.0} MB");
    println!(
        "    created {} updated {} unchanged {} deactivated {} rejected {} (state {})",
        done["created"],
        done["updated"],
        done["unchanged"],
        done["deactivated"],
        done["rejected_rows"],
        done["state"]
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    let server = start(&args.bin, &data).await?;
    let (pid, base) = (server.pid, server.base.clone());
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/v1/districts"))
        .bearer_auth(TOKEN)
        .json(&json!({"id": "bench", "name": "Bench"}))
        .send()
        .await?;
    anyhow::ensure!(created.status() == 201, "district: {}", created.status());
    let zip = oneroster_zip(&args, None)?;
    println!(
        "OneRoster benchmark: {} users across {} schools, OneRoster {} bulk zip of {:.1} MB, SQLite",
        args.users,
        args.schools,
        args.version,
        zip.len() as f64 / 1e6
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = status_mb(pid, "VmRSS:").context("no RSS for the server")?;
    println!("  server idle: {idle:.0} MB RSS");

    let (done, secs, peak) = import(&http, &base, pid, zip).await?;
    report("first bulk zip (everyone created)", &done, secs, peak);
    anyhow::ensure!(done["state"] == "completed", "{done}");
    let first = (secs, peak);

    let zip = oneroster_zip(&args, Some(100))?;
    let (done, secs, peak) = import(&http, &base, pid, zip).await?;
    report(
        "second bulk zip without 1% (deactivated)",
        &done,
        secs,
        peak,
    );
    anyhow::ensure!(done["state"] == "completed", "{done}");
    anyhow::ensure!(
        done["deactivated"] == args.users / 100,
        "deactivated: {done}"
    );

    let ok = first.0 < 60.0 && first.1 < 200.0 && secs < 60.0 && peak < 200.0;
    println!(
        "  target under 60 s and under 200 MB: {}",
        if ok { "met" } else { "NOT met" }
    );
    drop(server);
    Ok(())
}
