//! A short chaos run: the distributed stack under image-processor kills and a restart of
//! nats-server and of PostgreSQL, and the embedded default killed once mid-batch. Every file
//! ends in exactly one outcome, none is applied twice, every job is final, and no outage turns
//! into a rejection. (`scripts/chaos.sh` runs the long one.)

use std::path::PathBuf;

use pictureday_tests::chaos::{Binaries, Plan, run};

#[tokio::test]
async fn a_short_chaos_run_loses_nothing() -> anyhow::Result<()> {
    pictureday_platform::telemetry::init("pictureday-tests");
    let binaries = Binaries {
        ingest: PathBuf::from(env!("CARGO_BIN_EXE_ingest-under-test")),
        matcher: PathBuf::from(env!("CARGO_BIN_EXE_matcher-under-test")),
        image_processor: PathBuf::from(env!("CARGO_BIN_EXE_image-processor-under-test")),
        roster: PathBuf::from(env!("CARGO_BIN_EXE_roster-under-test")),
        reporting: PathBuf::from(env!("CARGO_BIN_EXE_reporting-under-test")),
        pictureday: PathBuf::from(env!("CARGO_BIN_EXE_pictureday-under-test")),
    };
    let dir = tempfile::tempdir()?;
    let report = run(&Plan::short(), &binaries, dir.path()).await?;
    println!("{report}");
    let failures = report.failures();
    if !failures.is_empty() {
        // Keep the logs of a failed run.
        let kept = dir.keep();
        anyhow::bail!("{failures:?}\n{report}logs kept in {}", kept.display());
    }
    Ok(())
}
