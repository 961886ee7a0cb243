//! Whole-pipeline benchmark: starts the real `pictureday serve` (the embedded default), loads a
//! roster of N people, uploads N vendor-size photos as one zip through the public API, waits for
//! the job to finish, and compares end-to-end throughput with the image stage's own throughput on
//! the same photos in this process.
//!
//!   scripts/build-release.sh && source scripts/env.sh
//!   target/release/pipeline-bench [--people N] [--size 640x800] [--bin target/release/pictureday]

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use pictureday_platform::storage::{Storage, StorageConfig};
use pictureday_tests::bench_pipeline::{Api, Delivery, cpu_seconds, peak_rss_mb};

struct Args {
    people: u32,
    width: u32,
    height: u32,
    bin: PathBuf,
    distinct: u32,
}

const USAGE: &str = "pipeline-bench [--people 10000] [--size 640x800] [--distinct 64] [--bin target/release/pictureday]";

fn parse_args() -> anyhow::Result<Args> {
    pictureday_tests::bench_args::exit_on_help(USAGE);
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "pipeline benchmark: {} photos of {}x{} (q90, {} distinct), {} cores",
        args.people, args.width, args.height, args.distinct, cores
    );
    let work = tempfile::tempdir()?;
    // Photos: a set of distinct photo-like JPEGs, cycled (every file is decoded in full anyway).
    let delivery = Delivery::make(
        work.path(),
        args.people,
        (args.width, args.height),
        args.distinct,
    )?;
    let stage_per_core = delivery.stage_per_core()?;
    // This process's CPU around each reference: what a photo costs the cores, apart from how
    // long its thread waited (a pipeline with many photos in flight overlaps the waits).
    let me = std::process::id();
    let cpu_at_start = cpu_seconds(me);
    let stage_at_once = delivery.stage_on_threads(cores)?;
    let cpu_after_stage = cpu_seconds(me);
    let store = Storage::open(&StorageConfig::Local {
        root: work.path().join("stored"),
    })
    .await?;
    // Off the async workers: it blocks on runtimes of its own.
    let stage_and_store =
        tokio::task::block_in_place(|| delivery.stage_and_store_on_threads(cores, &store))?;
    let cpu_after_store = cpu_seconds(me);
    let photos_per_reference = delivery.reference_photos(cores) as f64;
    let reference_ms = |before: Option<f64>, after: Option<f64>| {
        after
            .zip(before)
            .map(|(after, before)| 1000.0 * (after - before) / photos_per_reference)
    };
    let stage_cpu_ms = reference_ms(cpu_at_start, cpu_after_stage);
    let stored_cpu_ms = reference_ms(cpu_after_stage, cpu_after_store);

    // The real embedded default, as a user starts it.
    let token = "bench-operator-token-0123456789abcdef";
    let server = pictureday_tests::bench_server::Embedded::start(
        &args.bin,
        &work.path().join("data"),
        token,
    )
    .await?;
    let pid = server.pid;
    let api = Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        token: token.into(),
    };
    let roster_secs = api.district_with_roster("bench", &delivery).await?;

    // The nats-server the embedded default started: its CPU is the system's cost too.
    let nats_pid = server.nats_pid();
    let nats_before = nats_pid.and_then(cpu_seconds);
    let cpu_before = cpu_seconds(pid);
    // Peak after the upload: receiving and listing the archive (the pipeline has barely started).
    let mut upload_rss = None;
    let imported = api
        .import("bench", &delivery, || upload_rss = peak_rss_mb(pid))
        .await?;
    let (upload_secs, total_secs) = (imported.upload_secs, imported.total_secs);
    let rss = peak_rss_mb(pid);
    let cpu_used = cpu_seconds(pid)
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let nats_used = nats_pid
        .and_then(cpu_seconds)
        .zip(nats_before)
        .map(|(after, before)| after - before);
    drop(server);

    let zip_bytes = delivery.zip_bytes;
    let mean_kb = delivery.mean_kb();
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
        "image stage alone:      {stage_per_core:.1} photos/s on one thread, × {cores} = {stage_all_cores:.1} photos/s"
    );
    println!(
        "                        {stage_at_once:.1} photos/s on {cores} threads at once ({:.2} of {cores} × one thread)",
        stage_at_once / stage_all_cores
    );
    println!(
        "pipeline / image stage: {:.2} of {cores} × one thread, {:.2} of {cores} threads at once",
        end_to_end / stage_all_cores,
        end_to_end / stage_at_once
    );
    println!(
        "image stage + store:    {stage_and_store:.1} photos/s on {cores} threads at once, each photo's object written and synced ({:.2} of the image stage at once; pipeline / this: {:.2})",
        stage_and_store / stage_at_once,
        end_to_end / stage_and_store
    );
    if let Some((stage, stored)) = stage_cpu_ms.zip(stored_cpu_ms) {
        println!(
            "                        CPU per photo {stored:.2} ms against {stage:.2} ms for the image stage alone: storing costs {:.2} ms; at most {:.2} of the image stage for any pipeline that stores each photo durably",
            stored - stage,
            stage / stored
        );
    }
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
        "50,000 photos at this rate: {:.1} min (target: under 2.5)",
        50_000.0 / end_to_end / 60.0
    );
    Ok(())
}
