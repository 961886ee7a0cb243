//! The chaos command: the distributed stack and the embedded default under kills and outages,
//! then an account of every file, per district. Exits non-zero unless every file ended in
//! exactly one outcome, none was applied twice, every job is final and no outage turned into a
//! rejection. See docs/operations.md ("Chaos") and scripts/chaos.sh.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use pictureday_tests::chaos::{Binaries, Plan, run};

/// Defaults are the full run.
#[derive(Parser)]
#[command(
    about = "Kills and restarts Pictureday's processes under load, then accounts for every file"
)]
struct Args {
    /// Photos uploaded to the distributed stack, shared evenly by the districts.
    #[arg(long, default_value_t = 10_000)]
    photos: u32,
    #[arg(long, default_value_t = 3)]
    districts: u32,
    /// Photos per uploaded zip.
    #[arg(long, default_value_t = 500)]
    photos_per_archive: u32,
    /// Image-processors running at once.
    #[arg(long, default_value_t = 3)]
    image_processors: usize,
    /// `kill -9` of a random image-processor, each replaced by a new one.
    #[arg(long, default_value_t = 50)]
    processor_kills: usize,
    #[arg(long, default_value_t = 5)]
    nats_restarts: usize,
    #[arg(long, default_value_t = 3)]
    postgres_restarts: usize,
    /// Seconds the roster service is stopped, once (0: not at all).
    #[arg(long, default_value_t = 70)]
    roster_outage_secs: u64,
    /// Seconds between two faults.
    #[arg(long, default_value_t = 2.0)]
    fault_gap_secs: f64,
    /// Photos imported into the embedded default.
    #[arg(long, default_value_t = 1_500)]
    embedded_photos: u32,
    /// SIGKILLs of the embedded default mid-batch (0 and --embedded-photos 0: skip it).
    #[arg(long, default_value_t = 3)]
    embedded_kills: usize,
    /// Seconds every job may take to become final after the last fault.
    #[arg(long, default_value_t = 600)]
    patience_secs: u64,
    /// Which image-processor dies next is drawn from this seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the service binaries are (default: beside this program).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Where data and logs go (default: a new temporary directory, kept).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .context("this program has no directory")?
            .to_owned(),
    };
    let dir = match args.dir {
        Some(dir) => dir,
        None => tempfile::Builder::new()
            .prefix("pictureday-chaos-")
            .tempdir()?
            .keep(),
    };
    let plan = Plan {
        photos: args.photos,
        districts: args.districts.max(1),
        photos_per_archive: args.photos_per_archive.max(1),
        processor_kills: args.processor_kills,
        image_processors: args.image_processors.max(1),
        nats_restarts: args.nats_restarts,
        postgres_restarts: args.postgres_restarts,
        roster_outage: (args.roster_outage_secs > 0)
            .then(|| Duration::from_secs(args.roster_outage_secs)),
        fault_gap: Duration::from_secs_f64(args.fault_gap_secs.max(0.0)),
        embedded_photos: args.embedded_photos,
        embedded_kills: args.embedded_kills,
        patience: Duration::from_secs(args.patience_secs),
        seed: args.seed,
        ..Plan::full()
    };
    println!("chaos: {plan:?}");
    println!("data and logs: {}", dir.display());
    let report = run(&plan, &Binaries::in_dir(&bin_dir), &dir).await?;
    print!("{report}");
    if !report.failures().is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
