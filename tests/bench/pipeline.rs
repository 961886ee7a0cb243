//! Whole-pipeline benchmark: starts the real `pictureday serve` (the embedded default), loads a
//! roster of N people, uploads N vendor-size photos as one zip through the public API, waits for
//! the job to finish, and compares end-to-end throughput with the image stage's own throughput on
//! the same photos in this process.
//!
//!   scripts/build-release.sh && source scripts/env.sh
//!   target/release/pipeline-bench [--people N] [--size 640x800] [--bin target/release/pictureday]

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use pictureday_imaging::{Config, Processor};
use pictureday_tests::images::{jpeg_q, photo};
use serde_json::{Value, json};

struct Args {
    people: u32,
    width: u32,
    height: u32,
    bin: PathBuf,
    distinct: u32,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        people: 10_000,
        width: 640,
        height: 800,
        bin: PathBuf::from("target/release/pictureday"),
        distinct: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--people" => args.people = value.parse()?,
            "--size" => {
                let (w, h) = value.split_once('x').context("--size is WxH")?;
                args.width = w.parse()?;
                args.height = h.parse()?;
            }
            "--bin" => args.bin = value.into(),
            "--distinct" => args.distinct = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

/// CPU seconds (user + system) a process has used, from /proc (clock ticks are 100 Hz on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Peak resident memory of a process, from /proc.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "pipeline benchmark: {} photos of {}x{} (q90, {} distinct), {} cores",
        args.people, args.width, args.height, args.distinct, cores
    );

    // Photos: a set of distinct photo-like JPEGs, cycled (every file is decoded in full anyway).
    let samples: Vec<Vec<u8>> = (0..args.distinct)
        .map(|seed| jpeg_q(photo(args.width, args.height, seed), 90))
        .collect::<anyhow::Result<_>>()?;
    let mean_kb =
        samples.iter().map(Vec::len).sum::<usize>() as f64 / samples.len() as f64 / 1024.0;

    // The image stage alone, single-threaded, on the same photos.
    let mut processor = Processor::new(Config::default());
    let stage_n = (args.distinct * 4).max(64);
    let started = Instant::now();
    for i in 0..stage_n {
        processor
            .process(&samples[(i % args.distinct) as usize])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let stage_per_core = f64::from(stage_n) / started.elapsed().as_secs_f64();

    let work = tempfile::tempdir()?;
    let zip_path = work.path().join("delivery.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path)?);
        // Photographers' zips store JPEGs uncompressed: they do not compress.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for n in 0..args.people {
            zip.start_file(format!("{n}.jpg"), options)?;
            zip.write_all(&samples[(n % args.distinct) as usize])?;
        }
        zip.finish()?;
    }
    let zip_bytes = std::fs::metadata(&zip_path)?.len();

    // The real embedded default, as a user starts it.
    let token = "bench-operator-token-0123456789abcdef";
    let (mut server, pid, base) =
        pictureday_tests::bench_server::start_embedded(&args.bin, &work.path().join("data"), token)
            .await?;
    let http = reqwest::Client::new();

    let created = http
        .post(format!("{base}/v1/districts"))
        .bearer_auth(token)
        .json(&json!({"id": "bench", "name": "Bench"}))
        .send()
        .await?;
    anyhow::ensure!(
        created.status() == 201,
        "creating the district: {}",
        created.status()
    );
    let mut roster = String::from("role,sis_id,student_number,first_name,last_name,school\n");
    for n in 0..args.people {
        roster.push_str(&format!(
            "student,S{n},{n},First{n},Last{n},School{}\n",
            n % 20
        ));
    }
    let started = Instant::now();
    let loaded: Value = http
        .post(format!("{base}/v1/districts/bench/roster"))
        .bearer_auth(token)
        .body(roster)
        .send()
        .await?
        .json()
        .await?;
    let roster_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(loaded["created"] == args.people, "roster: {loaded}");

    // The nats-server the embedded default started: its CPU is the system's cost too.
    let nats_pid: Option<u32> =
        std::fs::read_to_string(work.path().join("data/nats/nats-server.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok());
    let nats_before = nats_pid.and_then(cpu_seconds);
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let file = tokio::fs::File::open(&zip_path).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let part =
        reqwest::multipart::Part::stream_with_length(body, zip_bytes).file_name("delivery.zip");
    let accepted: Value = http
        .post(format!("{base}/v1/districts/bench/imports"))
        .bearer_auth(token)
        .multipart(reqwest::multipart::Form::new().part("archive", part))
        .send()
        .await?
        .json()
        .await?;
    let upload_secs = started.elapsed().as_secs_f64();
    // Peak so far: receiving and listing the archive (the pipeline has barely started).
    let upload_rss = peak_rss_mb(pid);
    let job_id = accepted["job_id"]
        .as_str()
        .with_context(|| format!("no job: {accepted}"))?
        .to_owned();
    let job = loop {
        let job: Value = http
            .get(format!("{base}/v1/districts/bench/jobs/{job_id}"))
            .bearer_auth(token)
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
    let rss = peak_rss_mb(pid);
    let cpu_used = cpu_seconds(pid)
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let nats_used = nats_pid
        .and_then(cpu_seconds)
        .zip(nats_before)
        .map(|(after, before)| after - before);
    server.kill().await.ok();

    anyhow::ensure!(
        job["state"] == "finished" && job["counts"]["applied"] == args.people,
        "the job did not apply every photo: {job}"
    );
    let end_to_end = f64::from(args.people) / total_secs;
    let stage_all_cores = stage_per_core * cores as f64;
    println!(
        "photo size:             {mean_kb:.0} KB mean, zip {:.1} MB",
        zip_bytes as f64 / 1e6
    );
    println!(
        "roster load:            {roster_secs:.2} s for {} people",
        args.people
    );
    println!(
        "upload (202):           {upload_secs:.2} s ({:.0} MB/s)",
        zip_bytes as f64 / 1e6 / upload_secs
    );
    println!("upload to finished:     {total_secs:.2} s");
    println!("end to end:             {end_to_end:.1} photos/s");
    println!(
        "image stage alone:      {stage_per_core:.1} photos/s/core, {stage_all_cores:.1} photos/s on {cores} cores"
    );
    println!(
        "pipeline / image stage: {:.2}",
        end_to_end / stage_all_cores
    );
    if let Some(cpu) = cpu_used {
        println!(
            "server CPU:             {cpu:.1} s over {total_secs:.1} s ({:.0}% of {cores} cores), {:.1} ms per photo",
            100.0 * cpu / total_secs / cores as f64,
            1000.0 * cpu / f64::from(args.people)
        );
        if let Some(nats) = nats_used {
            println!(
                "nats-server CPU:        {nats:.1} s, {:.1} ms per photo",
                1000.0 * nats / f64::from(args.people)
            );
            println!(
                "system CPU (both):      {:.1} ms per photo ({:.0}% of {cores} cores)",
                1000.0 * (cpu + nats) / f64::from(args.people),
                100.0 * (cpu + nats) / total_secs / cores as f64
            );
        }
        println!(
            "image stage CPU:        {:.1} ms per photo",
            1000.0 / stage_per_core
        );
    }
    if let Some(rss) = upload_rss {
        println!(
            "server peak RSS by 202: {rss:.0} MB (zip {:.0} MB)",
            zip_bytes as f64 / 1e6
        );
    }
    if let Some(rss) = rss {
        println!("server peak RSS:        {rss:.0} MB");
    }
    println!(
        "50,000 photos at this rate: {:.1} min (target: under 10)",
        50_000.0 / end_to_end / 60.0
    );
    Ok(())
}
