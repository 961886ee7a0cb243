//! Following a job until every file has an outcome, then the summary and the saved log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use super::progress::{Display, job_line, write_line};
use super::{Client, Outcome, table};

/// How often the job's status is asked for.
const POLL: Duration = Duration::from_millis(500);

/// States a job does not leave by itself.
fn is_final(state: &str) -> bool {
    matches!(
        state,
        "finished" | "finished_with_errors" | "failed" | "previewed"
    )
}

/// What the job's end means for the exit code (an error for a failed job).
pub fn outcome_of(job: &Value) -> Outcome {
    match job["state"].as_str() {
        Some("finished" | "previewed") => Outcome::Done,
        _ => Outcome::FinishedWithErrors,
    }
}

pub async fn follow_and_report(
    client: &Client,
    job_id: &str,
    display: Display,
    log_dir: &Path,
) -> anyhow::Result<Outcome> {
    let job = follow(client, job_id, display).await?;
    table::print_job(&job);
    let saved = save_log(client, job_id, log_dir).await?;
    println!("Log: {}", saved.display());
    if job["state"] == "failed" {
        anyhow::bail!("job {job_id} failed");
    }
    Ok(outcome_of(&job))
}

async fn follow(client: &Client, job_id: &str, display: Display) -> anyhow::Result<Value> {
    let path = format!("/jobs/{job_id}");
    let mut last = String::new();
    let mut unavailable = 0u32;
    loop {
        let job = match client.get_json(&path).await {
            Ok(job) => {
                unavailable = 0;
                job
            }
            // A restart or a moment's outage: the job goes on; ask again for a while.
            Err(error) if unavailable < 120 && super::client::is_passing(&error) => {
                unavailable += 1;
                tokio::time::sleep(POLL).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        let counts = &job["counts"];
        let n = |key: &str| counts[key].as_u64().unwrap_or(0);
        let done = n("applied") + n("skipped") + n("previewed") + n("unmatched") + n("rejected");
        let line = job_line(
            done,
            n("files"),
            n("applied"),
            n("unmatched"),
            n("rejected"),
        );
        if line != last {
            write_line(display, &line);
            last = line;
        }
        if job["state"].as_str().is_some_and(is_final) {
            if display == Display::Terminal {
                eprintln!();
            }
            return Ok(job);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Saves the job's log as CSV beside the user's files: `pictureday-<job>.csv`.
async fn save_log(client: &Client, job_id: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let response = client
        .get(&format!("/jobs/{job_id}/log?format=csv"))
        .await?;
    let bytes = response
        .bytes()
        .await
        .context("downloading the job's log")?;
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("pictureday-{job_id}.csv"));
    tokio::fs::write(&path, &bytes)
        .await
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
