//! The command line for people who move thousands of files: `pictureday import` uploads a zip, a
//! folder (zipped while it is sent) or loose files with a mapping, shows the upload and then the
//! job as it is processed, prints a summary and saves the job's log; `jobs`, `job` and `missing`
//! look at a district. Settings come from flags or `PICTUREDAY_URL`, `PICTUREDAY_TOKEN` and
//! `PICTUREDAY_DISTRICT` (a district token's own district when absent: `GET /v1/whoami`).
//!
//! Exit codes: 0 when every file was applied (or skipped by the replace policy), 2 when the job
//! finished with errors (unmatched or rejected files), 1 when the command failed.

mod client;
mod follow;
mod import;
mod missing;
mod progress;
mod resumable;
mod table;

use std::path::PathBuf;

pub use client::Client;

/// Where the API is and who is asking.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The API's address.
    #[arg(long, env = "PICTUREDAY_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A district token (or the operator token).
    #[arg(long, env = "PICTUREDAY_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The district's id; a district token's own district when absent.
    #[arg(long, env = "PICTUREDAY_DISTRICT")]
    pub district: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// A SmartPass-style mapping CSV (no header: email or id, file name) for loose files.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Preview only: nothing is applied until the preview is applied.
    #[arg(long)]
    pub preview: bool,
    /// Whose photo the import may set: `always` (the server's default), `missing_only` or
    /// `existing_only`.
    #[arg(long)]
    pub replace: Option<String>,
    /// Where the job's log is saved (the current directory by default).
    #[arg(long, default_value = ".")]
    pub log_dir: PathBuf,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// A single zip is sent in resumable pieces of this many MiB (an interrupted upload goes on
    /// from the last piece stored when the command is run again); 0 sends it in one request.
    #[arg(long, env = "PICTUREDAY_PIECE_MIB", default_value_t = 64)]
    pub piece_mib: u64,
    /// A zip, a folder (zipped while it is sent) or photo files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// How many jobs, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

#[derive(Debug, clap::Args)]
pub struct JobArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The job's id.
    pub job: String,
    /// Follow the job until it ends, then save its log.
    #[arg(long)]
    pub follow: bool,
    /// Where the log is saved with `--follow`.
    #[arg(long, default_value = ".")]
    pub log_dir: PathBuf,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
}

#[derive(Debug, clap::Args)]
pub struct MissingArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The report as CSV on standard output, as the server writes it.
    #[arg(long)]
    pub csv: bool,
    /// Only `student`s or only `staff`.
    #[arg(long)]
    pub role: Option<String>,
    /// Only the people of this school (its id).
    #[arg(long)]
    pub school: Option<String>,
}

/// How a command ended, as the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every file applied or skipped; or a command that only reads.
    Done,
    /// The job finished with unmatched or rejected files.
    FinishedWithErrors,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::FinishedWithErrors => 2,
        }
    }
}

pub async fn import(args: ImportArgs) -> anyhow::Result<Outcome> {
    import::run(args).await
}

pub async fn jobs(args: JobsArgs) -> anyhow::Result<Outcome> {
    let client = Client::connect(&args.client).await?;
    let page = client
        .get_json(&format!("/jobs?limit={}", args.limit.clamp(1, 1000)))
        .await?;
    let jobs = page["items"].as_array().cloned().unwrap_or_default();
    table::print_jobs(&jobs);
    Ok(Outcome::Done)
}

pub async fn job(args: JobArgs) -> anyhow::Result<Outcome> {
    let client = Client::connect(&args.client).await?;
    if args.follow {
        let display = progress::Display::choose(args.plain);
        return follow::follow_and_report(&client, &args.job, display, &args.log_dir).await;
    }
    let job = client.get_json(&format!("/jobs/{}", args.job)).await?;
    table::print_job(&job);
    Ok(follow::outcome_of(&job))
}

pub async fn missing(args: MissingArgs) -> anyhow::Result<Outcome> {
    missing::run(args).await
}
