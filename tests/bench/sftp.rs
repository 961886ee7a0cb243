//! SFTP benchmark: the same N photos end to end over one SFTP session (the real OpenSSH `sftp`
//! client, `put *.jpg`) and over HTTP (one import of N `files` parts) in the same run, on the
//! embedded default in this process; then one 1 GB file over SFTP with this process's memory
//! sampled, to show it stays flat.
//!
//!   cargo build --release -p pictureday-tests --bin sftp-bench && source scripts/env.sh
//!   target/release/sftp-bench [--photos 5000] [--size 480x600] [--big-mb 1024]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use pictureday_platform::config::SftpArgs;
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{AppLayout, Backend, TestApp, file_part};
use reqwest::multipart::Form;
use serde_json::{Value, json};

const DISTRICT: &str = "bench";

struct Args {
    photos: u32,
    width: u32,
    height: u32,
    big_mb: u64,
}

const USAGE: &str = "sftp-bench [--photos 5000] [--size 480x600] [--big-mb 1024]";

fn parse_args() -> anyhow::Result<Args> {
    pictureday_tests::bench_args::exit_on_help(USAGE);
    let mut args = Args {
        photos: 5000,
        width: 480,
        height: 600,
        big_mb: 1024,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--photos" => args.photos = value.parse()?,
            "--size" => {
                let (w, h) = value.split_once('x').context("--size is WxH")?;
                args.width = w.parse()?;
                args.height = h.parse()?;
            }
            "--big-mb" => args.big_mb = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The highest RSS of this process while `work` runs, sampled every 20 ms.
async fn sampled_peak<T>(work: impl Future<Output = T>) -> (T, f64) {
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                if let Some(mb) = rss_mb() {
                    peak.fetch_max(mb as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let out = work.await;
    sampler.abort();
    (out, peak.load(Ordering::Relaxed) as f64)
}

async fn sftp(dir: &Path, port: u16, key: &Path, commands: &str) -> anyhow::Result<()> {
    let batch = dir.join("batch");
    tokio::fs::write(&batch, commands).await?;
    let output = tokio::process::Command::new("sftp")
        .current_dir(dir)
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            dir.join("known_hosts").display()
        ))
        .arg("-i")
        .arg(key)
        .arg("-P")
        .arg(port.to_string())
        .arg("-b")
        .arg(&batch)
        .arg("bench-sis@127.0.0.1")
        .stdin(std::process::Stdio::null())
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "sftp: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Waits for the district's job count to reach `n` and the newest to finish; returns it.
async fn newest_job(app: &TestApp, token: &str, n: usize) -> anyhow::Result<Value> {
    loop {
        let page = app
            .get_json(token, &format!("/v1/districts/{DISTRICT}/jobs"))
            .await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            let id = items[0]["job_id"].as_str().unwrap_or_default().to_owned();
            return app
                .wait_for_job_within(token, DISTRICT, &id, Duration::from_secs(3600))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let app = TestApp::spawn_with(
        Backend::Embedded,
        AppLayout {
            sftp: SftpArgs {
                sftp_listen: Some("127.0.0.1:0".into()),
                sftp_quiet_secs: Some(1),
                sftp_host_key_file: None,
            },
            ..AppLayout::default()
        },
    )
    .await?;
    let token = app.create_district(DISTRICT, "Bench").await?;
    app.upload_numbered_roster(&token, DISTRICT, args.photos)
        .await?;
    let dir = app.dir.path().join("bench");
    tokio::fs::create_dir_all(dir.join("photos")).await?;
    // A few distinct images, each written under many names: made quickly, decoded for real.
    let distinct: Vec<Vec<u8>> = (0..32)
        .map(|seed| jpeg(photo(args.width, args.height, seed)))
        .collect::<anyhow::Result<_>>()?;
    let mut bytes = 0u64;
    for n in 0..args.photos {
        let image = &distinct[n as usize % distinct.len()];
        bytes += image.len() as u64;
        tokio::fs::write(dir.join("photos").join(format!("{n}.jpg")), image).await?;
    }
    println!(
        "{} photos of {}x{}, {:.1} MB in all",
        args.photos,
        args.width,
        args.height,
        bytes as f64 / 1e6
    );

    // HTTP: one import of every file.
    let started = Instant::now();
    let mut form = Form::new();
    for n in 0..args.photos {
        let image = distinct[n as usize % distinct.len()].clone();
        form = form.part("files", file_part(&format!("{n}.jpg"), image));
    }
    let (status, body) = app.import(&token, DISTRICT, form).await?;
    anyhow::ensure!(status == 202, "import: {status}: {body}");
    let accepted = started.elapsed();
    let job = newest_job(&app, &token, 1).await?;
    let http = started.elapsed();
    println!(
        "HTTP: accepted in {:.1} s, finished in {:.1} s ({:.0} photos/s), {}",
        accepted.as_secs_f64(),
        http.as_secs_f64(),
        f64::from(args.photos) / http.as_secs_f64(),
        job["counts"]
    );

    // SFTP: one session, `put *.jpg`.
    let server = app.get_json(&token, "/v1/sftp").await?;
    let port = u16::try_from(server["port"].as_u64().unwrap_or(0))?;
    tokio::fs::write(
        dir.join("known_hosts"),
        format!(
            "[127.0.0.1]:{port} {}\n",
            server["public_key"].as_str().unwrap_or_default()
        ),
    )
    .await?;
    let key = dir.join("id_bench");
    let made = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .await?;
    anyhow::ensure!(made.success(), "ssh-keygen failed");
    let public = tokio::fs::read_to_string(key.with_extension("pub")).await?;
    let created = app
        .http
        .post(app.url(&format!("/v1/districts/{DISTRICT}/sftp-accounts")))
        .bearer_auth(&token)
        .json(&json!({"username": "bench-sis", "public_keys": [public.trim()]}))
        .send()
        .await?;
    anyhow::ensure!(created.status() == 201, "account: {}", created.status());
    let started = Instant::now();
    sftp(
        &dir,
        port,
        &key,
        "lcd photos\ncd /incoming/idphotos\nput *.jpg\n",
    )
    .await?;
    let sent = started.elapsed();
    let job = newest_job(&app, &token, 2).await?;
    let over_sftp = started.elapsed();
    println!(
        "SFTP: sent in {:.1} s, finished in {:.1} s ({:.0} photos/s; the job is made after a 1 s quiet period), {}",
        sent.as_secs_f64(),
        over_sftp.as_secs_f64(),
        f64::from(args.photos) / over_sftp.as_secs_f64(),
        job["counts"]
    );
    println!(
        "SFTP end to end at {:.0}% of HTTP's throughput",
        100.0 * http.as_secs_f64() / over_sftp.as_secs_f64()
    );

    // One large file: this process's memory while it arrives. Sent under a temporary name
    // that is never renamed, so it is stored and then left out (no job reads it).
    if args.big_mb > 0 {
        let big = dir.join("big.bin");
        let file = std::fs::File::create(&big)?;
        file.set_len(args.big_mb * 1024 * 1024)?;
        drop(file);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = rss_mb().unwrap_or(0.0);
        let started = Instant::now();
        let (sent, peak) = sampled_peak(sftp(
            &dir,
            port,
            &key,
            "put big.bin /incoming/data/big.csv.filepart\n",
        ))
        .await;
        sent?;
        println!(
            "{} MB over SFTP in {:.1} s ({:.0} MB/s): RSS {:.0} MB before, peak {:.0} MB while it arrived",
            args.big_mb,
            started.elapsed().as_secs_f64(),
            args.big_mb as f64 / started.elapsed().as_secs_f64(),
            before,
            peak
        );
        std::fs::remove_file(&big)?;
    }
    app.stop().await
}
