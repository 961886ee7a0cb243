//! Connection load on loopback (scripts/load-connections.sh): holds `--idle` idle connections
//! (opening a new one whenever the server closes one), `--slow` request bodies trickling slower
//! than the minimum rate (each cut and started again), and meanwhile imports `--photos` photos
//! and asks `/healthz` every 50 ms on a fresh connection. Prints the worst health latency and
//! fails if it is over 100 ms or the batch does not finish.
//!
//!   load-connections --url http://127.0.0.1:PORT --token OPERATOR_TOKEN [--idle 2000]
//!                    [--slow 200] [--photos 200]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use pictureday_tests::TestClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The latency `/healthz` must stay under.
const HEALTH_BUDGET: Duration = Duration::from_millis(100);

struct Args {
    url: String,
    token: String,
    idle: usize,
    slow: usize,
    photos: u32,
}

const USAGE: &str = "load-connections --url http://127.0.0.1:PORT --token OPERATOR_TOKEN [--idle 2000] [--slow 200] [--photos 200]";

fn parse_args() -> anyhow::Result<Args> {
    pictureday_tests::bench_args::exit_on_help(USAGE);
    let mut args = Args {
        url: String::new(),
        token: String::new(),
        idle: 2000,
        slow: 200,
        photos: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => args.url = value,
            "--token" => args.token = value,
            "--idle" => args.idle = value.parse()?,
            "--slow" => args.slow = value.parse()?,
            "--photos" => args.photos = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    // Loopback only: this opens thousands of connections on purpose.
    if !args.url.starts_with("http://127.0.0.1:") {
        bail!("--url must be http://127.0.0.1:PORT (loopback only)");
    }
    if args.token.is_empty() {
        bail!("--token is required");
    }
    Ok(args)
}

#[derive(Default)]
struct Counters {
    idle_reopened: AtomicU64,
    slow_cut: AtomicU64,
    slow_other: AtomicU64,
    connect_failed: AtomicU64,
}

/// One idle connection, opened again whenever the server closes it.
async fn hold_idle(addr: String, stop: Arc<AtomicBool>, counters: Arc<Counters>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(&addr).await else {
            counters.connect_failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut buf = [0u8; 256];
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
                Err(_) => continue,
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(_)) => {}
            }
        }
        counters.idle_reopened.fetch_add(1, Ordering::Relaxed);
    }
}

/// A request body sent at 100 bytes a second, below the minimum rate, started again when cut.
async fn trickle(addr: String, token: String, stop: Arc<AtomicBool>, counters: Arc<Counters>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(&addr).await else {
            counters.connect_failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let head = format!(
            "POST /v1/districts HTTP/1.1\r\nHost: load\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"id\":\""
        );
        if stream.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        let chunk = [b'a'; 100];
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if stream.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            }
        }
        if answer.starts_with(b"HTTP/1.1 408") {
            counters.slow_cut.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.slow_other.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `/healthz` every 50 ms on a fresh connection, on a thread of its own so the load's own work
/// does not delay the measurement; returns every latency.
fn probe_health(addr: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let mut latencies = Vec::new();
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return latencies;
        };
        let begun = Instant::now();
        runtime.block_on(async {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answered = tokio::time::timeout(Duration::from_secs(5), async {
                    let mut stream = TcpStream::connect(&addr).await?;
                    stream
                        .write_all(
                            b"GET /healthz HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n",
                        )
                        .await?;
                    let mut answer = Vec::new();
                    stream.read_to_end(&mut answer).await?;
                    anyhow::ensure!(
                        answer.starts_with(b"HTTP/1.1 200"),
                        "healthz: {}",
                        String::from_utf8_lossy(&answer)
                    );
                    Ok(())
                })
                .await;
                let latency = match answered {
                    Ok(Ok(())) => started.elapsed(),
                    // A failed probe counts as the worst case.
                    _ => Duration::from_secs(5),
                };
                if latency > HEALTH_BUDGET {
                    eprintln!(
                        "slow /healthz at {:.1} s: {latency:?}",
                        begun.elapsed().as_secs_f64()
                    );
                }
                latencies.push(latency);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        latencies
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let addr = args.url.trim_start_matches("http://").to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let client = TestClient::new(&args.url, &args.token);
    let district = format!("load-{}", std::process::id());
    let token = client.create_district(&district, "Load").await?;
    client
        .upload_numbered_roster(&token, &district, args.photos)
        .await?;

    let prober = probe_health(addr.clone(), stop.clone());
    let mut load = Vec::new();
    for n in 0..args.idle {
        // Opened over about two seconds, as clients arrive, rather than in one instant.
        if n % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        load.push(tokio::spawn(hold_idle(
            addr.clone(),
            stop.clone(),
            counters.clone(),
        )));
    }
    for _ in 0..args.slow {
        load.push(tokio::spawn(trickle(
            addr.clone(),
            args.token.clone(),
            stop.clone(),
            counters.clone(),
        )));
    }
    // Let the connections pile up before the batch starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let imported = async {
        let job = client
            .import_numbered_photos(&token, &district, args.photos, (640, 800))
            .await?;
        client
            .wait_for_job_within(&token, &district, &job, Duration::from_secs(900))
            .await
    }
    .await;
    let batch_time = started.elapsed();
    // Long enough for the slow bodies to be cut at least once (the default 30 s window).
    let minimum = Duration::from_secs(35);
    if batch_time < minimum {
        tokio::time::sleep(minimum - batch_time).await;
    }
    stop.store(true, Ordering::Relaxed);
    let latencies = prober.join().unwrap_or_default();
    for task in load {
        task.abort();
    }

    let mut sorted = latencies.clone();
    sorted.sort();
    let pick = |q: f64| {
        sorted
            .get(((sorted.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let worst = sorted.last().copied().unwrap_or_default();
    let over = sorted.iter().filter(|l| **l > HEALTH_BUDGET).count();
    println!(
        "load: {} idle connections (reopened {} times after the server closed them), {} slow bodies (cut with 408: {}, other endings: {}), connects failed: {}",
        args.idle,
        counters.idle_reopened.load(Ordering::Relaxed),
        args.slow,
        counters.slow_cut.load(Ordering::Relaxed),
        counters.slow_other.load(Ordering::Relaxed),
        counters.connect_failed.load(Ordering::Relaxed),
    );
    println!(
        "healthz: {} probes, p50 {:?}, p99 {:?}, worst {:?}, over {:?}: {over}",
        sorted.len(),
        pick(0.5),
        pick(0.99),
        worst,
        HEALTH_BUDGET
    );
    let job = imported?;
    println!(
        "batch: {} photos, state {}, applied {}, in {:.1} s",
        args.photos,
        job["state"],
        job["counts"]["applied"],
        batch_time.as_secs_f64()
    );
    if job["state"] != "finished" {
        bail!("the batch did not finish: {job}");
    }
    if worst > HEALTH_BUDGET {
        bail!("/healthz took {worst:?} at worst (budget {HEALTH_BUDGET:?})");
    }
    Ok(())
}
