//! Jobs as tables on standard output.

use serde_json::Value;

/// One job: its state, times and counts.
pub fn print_job(job: &Value) {
    let counts = &job["counts"];
    let n = |key: &str| counts[key].as_u64().unwrap_or(0);
    println!("Job       {}", text(&job["job_id"]));
    println!("State     {}", text(&job["state"]));
    println!("Started   {}", text(&job["started_at"]));
    println!("Finished  {}", text(&job["finished_at"]));
    println!();
    println!("{:<12}{:>8}", "Files", n("files"));
    for (label, key) in [
        ("Applied", "applied"),
        ("Skipped", "skipped"),
        ("Previewed", "previewed"),
        ("Unmatched", "unmatched"),
        ("Rejected", "rejected"),
    ] {
        println!("{label:<12}{:>8}", n(key));
    }
    if let Some(warnings) = job["warnings"].as_array().filter(|w| !w.is_empty()) {
        println!();
        for warning in warnings {
            println!(
                "Warning: {}",
                warning
                    .as_str()
                    .map_or_else(|| warning.to_string(), str::to_owned)
            );
        }
    }
}

/// Jobs, newest first, one a line.
pub fn print_jobs(jobs: &[Value]) {
    println!(
        "{:<38} {:<22} {:>7} {:>8} {:>10} {:>9}  CREATED",
        "JOB", "STATE", "FILES", "APPLIED", "UNMATCHED", "REJECTED"
    );
    for job in jobs {
        let counts = &job["counts"];
        let n = |key: &str| counts[key].as_u64().unwrap_or(0);
        println!(
            "{:<38} {:<22} {:>7} {:>8} {:>10} {:>9}  {}",
            text(&job["job_id"]),
            text(&job["state"]),
            n("files"),
            n("applied"),
            n("unmatched"),
            n("rejected"),
            text(&job["created_at"]),
        );
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
