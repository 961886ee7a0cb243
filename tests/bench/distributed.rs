//! The distributed stack (`deploy/local/up.sh`: every service its own process, PostgreSQL, an S3
//! server, nats-server) against the embedded default on the same delivery, and the image stage's
//! scale-out: the same import with 1 and then 2 image-processor processes, each pinned to a core
//! of its own (`taskset`). Prints photos/s, the CPU each process spent per photo (PostgreSQL with
//! its backends), the ratios within this run, and the cores a night of 500,000 photos needs.
//!
//!   scripts/build-release.sh && source scripts/env.sh
//!   target/release/distributed-bench [--people N] [--size WxH] [--image-processors 1,2]
//!                                    [--no-pin] [--no-embedded]
//!
//! Run from the checkout, with nothing on the local stack's ports (8080.., 4222, 5433, 9000).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use pictureday_tests::bench_pipeline::{Api, Delivery, cpu_seconds, tree_cpu_seconds};

struct Args {
    people: u32,
    width: u32,
    height: u32,
    distinct: u32,
    processors: Vec<usize>,
    pin: bool,
    /// Decoding threads per image-processor; `None`: one when pinned, else each counts its cores.
    image_workers: Option<usize>,
    embedded: bool,
    bin: PathBuf,
}

const USAGE: &str = "distributed-bench [--people 4000] [--size 640x800] [--distinct 64] [--image-processors 1,2] [--no-pin] [--image-workers N] [--no-embedded] [--bin target/release/pictureday]";

fn parse_args() -> anyhow::Result<Args> {
    pictureday_tests::bench_args::exit_on_help(USAGE);
    let mut args = Args {
        people: 4_000,
        width: 640,
        height: 800,
        distinct: 64,
        processors: vec![1, 2],
        pin: true,
        image_workers: None,
        embedded: true,
        bin: PathBuf::from("target/release/pictureday"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--no-pin" => args.pin = false,
            "--no-embedded" => args.embedded = false,
            _ => {
                let value = it.next().with_context(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "--people" => args.people = value.parse()?,
                    "--size" => {
                        let (w, h) = value.split_once('x').context("--size is WxH")?;
                        args.width = w.parse()?;
                        args.height = h.parse()?;
                    }
                    "--distinct" => args.distinct = value.parse()?,
                    "--image-processors" => {
                        args.processors = value
                            .split(',')
                            .map(str::parse)
                            .collect::<Result<_, _>>()
                            .context("--image-processors is a list like 1,2")?;
                    }
                    "--image-workers" => args.image_workers = Some(value.parse()?),
                    "--bin" => args.bin = value.into(),
                    other => bail!("unknown flag {other}"),
                }
            }
        }
    }
    Ok(args)
}

/// One measured import: its rate and the CPU seconds each process spent on it.
struct Run {
    label: String,
    photos_per_sec: f64,
    secs: f64,
    /// From the upload's first byte to its 202: the pipeline has nothing to do before that.
    upload_secs: f64,
    cpu: BTreeMap<String, f64>,
}

impl Run {
    fn total_cpu(&self) -> f64 {
        self.cpu.values().sum()
    }

    fn print(&self, people: u32, cores: usize) {
        println!(
            "{}: {:.1} photos/s ({:.1} s, upload to 202 {:.1} s), system CPU {:.1} ms/photo ({:.0}% of {cores} cores)",
            self.label,
            self.photos_per_sec,
            self.secs,
            self.upload_secs,
            1000.0 * self.total_cpu() / f64::from(people),
            100.0 * self.total_cpu() / self.secs / cores as f64
        );
        for (name, secs) in &self.cpu {
            println!(
                "    {name:<20} {:>6.2} ms/photo",
                1000.0 * secs / f64::from(people)
            );
        }
    }
}

/// CPU seconds so far of each named process (PostgreSQL with its backends).
fn cpu_of(pids: &[(String, u32)]) -> BTreeMap<String, f64> {
    pids.iter()
        .filter_map(|(name, pid)| {
            let secs = if name == "postgres" {
                tree_cpu_seconds(*pid)
            } else {
                cpu_seconds(*pid)
            };
            secs.map(|s| (name.clone(), s))
        })
        .collect()
}

fn spent(before: &BTreeMap<String, f64>, after: BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .into_iter()
        .map(|(name, secs)| {
            let start = before.get(&name).copied().unwrap_or(0.0);
            (name, secs - start)
        })
        .collect()
}

async fn embedded(args: &Args, work: &Path, delivery: &Delivery) -> anyhow::Result<Run> {
    let token = "bench-operator-token-0123456789abcdef";
    let data = work.join("embedded");
    let server = pictureday_tests::bench_server::Embedded::start(&args.bin, &data, token).await?;
    let api = Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        token: token.into(),
    };
    api.district_with_roster("bench", delivery).await?;
    let mut pids = vec![("pictureday serve".to_owned(), server.pid)];
    pids.extend(server.nats_pid().map(|pid| ("nats-server".to_owned(), pid)));
    let before = cpu_of(&pids);
    let imported = api.import("bench", delivery, || {}).await?;
    let cpu = spent(&before, cpu_of(&pids));
    drop(server);
    Ok(Run {
        label: "embedded default (SQLite, local disk)".into(),
        photos_per_sec: f64::from(delivery.people) / imported.total_secs,
        secs: imported.total_secs,
        upload_secs: imported.upload_secs,
        cpu,
    })
}

/// Stops the stack in `dir` however the run ended.
struct Stack {
    dir: PathBuf,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new("deploy/local/down.sh")
            .arg("--dir")
            .arg(&self.dir)
            .output();
    }
}

async fn distributed(
    processors: usize,
    pin: bool,
    image_workers: Option<usize>,
    work: &Path,
    delivery: &Delivery,
    cores: usize,
) -> anyhow::Result<Run> {
    let dir = work.join(format!("stack-{processors}"));
    std::fs::create_dir_all(&dir)?;
    let mut up = Command::new("deploy/local/up.sh");
    up.args(["--image-processors", &processors.to_string(), "--dir"])
        .arg(&dir);
    // Pinned, one decoding thread for the one core each image-processor gets (it counts the
    // machine's cores when it starts, before it is pinned).
    let workers = image_workers.or(pin.then_some(1));
    if let Some(workers) = workers {
        up.env("PICTUREDAY_IMAGE_WORKERS", workers.to_string());
    }
    let started = up
        .output()
        .context("deploy/local/up.sh (run the benchmark from the checkout)")?;
    let stack = Stack { dir: dir.clone() };
    if !started.status.success() {
        bail!(
            "deploy/local/up.sh failed: {}",
            String::from_utf8_lossy(&started.stderr)
        );
    }
    let pids: Vec<(String, u32)> = std::fs::read_to_string(dir.join("pids"))?
        .lines()
        .filter_map(|line| {
            let (name, pid) = line.split_once(' ')?;
            Some((name.to_owned(), pid.trim().parse().ok()?))
        })
        .collect();
    if pin {
        // Each image-processor on a core of its own, every thread of it; the rest go anywhere.
        for (name, pid) in &pids {
            if let Some(n) = name.strip_prefix("image-processor-") {
                let core = n.parse::<usize>()? % cores;
                let pinned = Command::new("taskset")
                    .args(["-a", "-p", "-c", &core.to_string(), &pid.to_string()])
                    .output()
                    .context("taskset (util-linux)")?;
                anyhow::ensure!(pinned.status.success(), "taskset {name} failed");
            }
        }
    }
    let token = std::fs::read_to_string(dir.join("operator-token"))?
        .trim()
        .to_owned();
    let base_port: u16 = std::env::var("PICTUREDAY_LOCAL_PORT_BASE")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{base_port}"),
        token,
    };
    api.district_with_roster("bench", delivery).await?;
    let before = cpu_of(&pids);
    let imported = api.import("bench", delivery, || {}).await?;
    let cpu = spent(&before, cpu_of(&pids));
    drop(stack);
    Ok(Run {
        label: format!(
            "distributed, {processors} image-processor{}{}{}",
            if processors == 1 { "" } else { "s" },
            if pin { " (one core each)" } else { "" },
            workers.map_or(String::new(), |n| format!(", {n} decoding thread(s) each"))
        ),
        photos_per_sec: f64::from(delivery.people) / imported.total_secs,
        secs: imported.total_secs,
        upload_secs: imported.upload_secs,
        cpu,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "distributed benchmark: {} photos of {}x{} (q90, {} distinct), {} cores",
        args.people, args.width, args.height, args.distinct, cores
    );
    let work = tempfile::tempdir()?;
    let delivery = Delivery::make(
        work.path(),
        args.people,
        (args.width, args.height),
        args.distinct,
    )?;
    let stage_per_core = delivery.stage_per_core()?;
    let stage_ms = 1000.0 / stage_per_core;
    println!(
        "image stage alone: {stage_per_core:.1} photos/s on one core ({stage_ms:.1} ms/photo)"
    );
    // The image stage's own scale-out on this machine: the most two pinned image-processors
    // could show, whatever the plumbing costs.
    let stage_at_once = delivery.stage_on_threads(cores)?;
    println!(
        "image stage alone: {stage_at_once:.1} photos/s on {cores} threads at once ({:.2} of {cores} × one core)",
        stage_at_once / (stage_per_core * cores as f64)
    );

    let mut runs = Vec::new();
    if args.embedded {
        let run = embedded(&args, work.path(), &delivery).await?;
        run.print(args.people, cores);
        runs.push(run);
    }
    let mut by_processors = BTreeMap::new();
    for &processors in &args.processors {
        let run = distributed(
            processors,
            args.pin,
            args.image_workers,
            work.path(),
            &delivery,
            cores,
        )
        .await?;
        run.print(args.people, cores);
        by_processors.insert(processors, run.photos_per_sec);
        runs.push(run);
    }

    println!();
    let stage_all = stage_per_core * cores as f64;
    for run in &runs {
        println!(
            "{:<50} pipeline / image stage on {cores} cores: {:.2}",
            run.label,
            run.photos_per_sec / stage_all
        );
    }
    if let (Some(first), true) = (runs.first(), args.embedded) {
        for run in runs.iter().skip(1) {
            println!(
                "{:<50} / embedded default: {:.2} photos/s, {:.2} CPU per photo",
                run.label,
                run.photos_per_sec / first.photos_per_sec,
                run.total_cpu() / first.total_cpu()
            );
        }
    }
    if let (Some(one), Some(two)) = (by_processors.get(&1), by_processors.get(&2)) {
        println!(
            "scale-out efficiency (2 image-processors ÷ 2 × 1): {:.2}",
            two / (2.0 * one)
        );
    }
    // Sizing: the CPU a photo costs, all processes together, is what a night needs in cores.
    if let Some(run) = runs.last() {
        let ms = 1000.0 * run.total_cpu() / f64::from(args.people);
        let cores_needed = 500_000.0 * ms / 1000.0 / 600.0;
        println!(
            "500,000 photos in 10 minutes at {ms:.1} ms of CPU per photo ({}): {cores_needed:.1} cores fully busy",
            run.label
        );
    }
    Ok(())
}
