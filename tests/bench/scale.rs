//! Write scaling on PostgreSQL. Two measurements, each as a ratio within one run:
//!
//! 1. The pipeline on PostgreSQL + S3: three districts import at once, first with one replica of
//!    roster and reporting, then with three (each replica its own connection pool, as its own
//!    process would have). Prints photos applied per second for each and the ratio.
//! 2. The write path alone: writers projecting batches of events into reporting's tables, each
//!    for a job of its own, one writer and then three, with the fleet-wide lock every write
//!    transaction used to take and without it. Prints batches per second and the ratios.
//!
//!   scripts/build-release.sh
//!   target/release/scale-bench [--photos 600] [--size 160x200] [--batches 300]

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use pictureday_contract::DistrictId;
use pictureday_contract::events::{ApplyOutcome, FileRef, PhotoApplied, SCHEMA_VERSION};
use pictureday_platform::db;
use pictureday_reporting::projection::{self, Event};
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{AppLayout, Backend, PostgresServer, TestApp, zip_of};
use sea_orm::{ConnectionTrait, DatabaseConnection};

const DISTRICTS: [&str; 3] = ["north", "south", "west"];

struct Args {
    photos: u32,
    width: u32,
    height: u32,
    batches: u32,
}

const USAGE: &str = "scale-bench [--photos 600] [--size 160x200] [--batches 300]";

fn parse_args() -> anyhow::Result<Args> {
    pictureday_tests::bench_args::exit_on_help(USAGE);
    let mut args = Args {
        photos: 600,
        width: 160,
        height: 200,
        batches: 300,
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
            "--batches" => args.batches = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    println!(
        "pipeline: {} districts × {} photos of {}x{}, PostgreSQL + S3",
        DISTRICTS.len(),
        args.photos,
        args.width,
        args.height
    );
    let one = pipeline(&args, 1).await?;
    let three = pipeline(&args, 3).await?;
    println!("  roster+reporting replicas  photos applied/s");
    println!("  1                          {one:.1}");
    println!("  3                          {three:.1}");
    println!("  ratio 3/1                  {:.2}", three / one);

    println!(
        "write path: {} batches of 100 events, each writer its own job",
        args.batches
    );
    let postgres = PostgresServer::start().await?;
    let mut rates = Vec::new();
    for fleet_lock in [true, false] {
        for writers in [1u32, 3] {
            let url = postgres.create_database().await?;
            let conn = db::connect(&url).await?;
            db::migrate::<pictureday_reporting::db::Migrator>(&conn).await?;
            let rate = write_path(&conn, writers, args.batches, fleet_lock).await?;
            rates.push(((fleet_lock, writers), rate));
        }
    }
    println!("  lock          writers  batches/s");
    for ((fleet_lock, writers), rate) in &rates {
        let lock = if *fleet_lock { "fleet-wide" } else { "per job" };
        println!("  {lock:<12}  {writers:<7}  {rate:.1}");
    }
    let rate = |lock: bool, writers: u32| {
        rates
            .iter()
            .find(|((l, w), _)| *l == lock && *w == writers)
            .map_or(f64::NAN, |(_, r)| *r)
    };
    println!(
        "  ratio 3/1: fleet-wide lock {:.2}, per-job locks {:.2}",
        rate(true, 3) / rate(true, 1),
        rate(false, 3) / rate(false, 1)
    );
    Ok(())
}

/// Photos applied per second, three districts importing at once, with `replicas` of roster and
/// reporting.
async fn pipeline(args: &Args, replicas: usize) -> anyhow::Result<f64> {
    let app = TestApp::spawn_with(
        Backend::PostgresS3,
        AppLayout {
            extra_replicas: replicas - 1,
            ..AppLayout::default()
        },
    )
    .await?;
    let mut imports = Vec::new();
    for district in DISTRICTS {
        let token = app.create_district(district, district).await?;
        app.upload_numbered_roster(&token, district, args.photos)
            .await?;
        let mut entries = Vec::new();
        for n in 0..args.photos {
            entries.push((format!("{n}.jpg"), jpeg(photo(args.width, args.height, n))?));
        }
        let entries: Vec<(&str, Vec<u8>)> = entries
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.clone()))
            .collect();
        imports.push((district, token, zip_of(&entries)?));
    }
    let started = Instant::now();
    let uploads = imports.iter().map(|(district, token, zip)| {
        let app = &app;
        async move {
            let job = app.import_archive(token, district, zip.clone()).await?;
            app.wait_for_job_within(token, district, &job, Duration::from_secs(1800))
                .await
        }
    });
    let jobs = futures::future::try_join_all(uploads).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut applied = 0;
    for job in &jobs {
        applied += job["counts"]["applied"].as_u64().unwrap_or(0);
    }
    let expected = u64::from(args.photos) * DISTRICTS.len() as u64;
    anyhow::ensure!(
        applied == expected,
        "applied {applied} of {expected}: {jobs:?}"
    );
    app.stop().await?;
    Ok(applied as f64 / elapsed)
}

/// Batches per second: `writers` writers each project `batches / writers` batches of 100
/// `photo.applied` events of a job of their own, each batch one transaction.
async fn write_path(
    conn: &DatabaseConnection,
    writers: u32,
    batches: u32,
    fleet_lock: bool,
) -> anyhow::Result<f64> {
    let district = DistrictId::parse("north")?;
    let per_writer = batches / writers;
    let started = Instant::now();
    let tasks = (0..writers).map(|w| {
        let (conn, district) = (conn.clone(), district.clone());
        tokio::spawn(async move {
            let job_id = format!("job-{w}");
            for b in 0..per_writer {
                let events: Vec<Event> = (0..100)
                    .map(|i| applied(&district, &job_id, b * 100 + i))
                    .collect();
                let txn = db::begin_write(&conn).await?;
                if fleet_lock {
                    // What every write transaction of every service took before.
                    txn.execute_unprepared("SELECT pg_advisory_xact_lock(5793833412390242628)")
                        .await?;
                }
                projection::apply(&txn, &events).await?;
                txn.commit().await?;
            }
            anyhow::Ok(())
        })
    });
    for task in futures::future::join_all(tasks).await {
        task??;
    }
    Ok(f64::from(per_writer * writers) / started.elapsed().as_secs_f64())
}

fn applied(district: &DistrictId, job_id: &str, seq: u32) -> Event {
    Event::Applied(PhotoApplied {
        v: SCHEMA_VERSION,
        file: FileRef {
            district: district.clone(),
            job_id: job_id.into(),
            seq,
            file_name: format!("{seq}.jpg"),
            replay: 0,
        },
        person_id: format!("person-{seq}").into(),
        photo_id: format!("photo-{job_id}-{seq}").into(),
        outcome: ApplyOutcome::Applied,
        previous_photo_id: None,
        note: None,
    })
}
