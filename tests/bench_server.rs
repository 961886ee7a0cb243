//! The embedded default as the benchmarks run it: `pictureday serve` on a data directory and a
//! free loopback port, its output quiet, ready before anything is measured.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Starts `bin serve` on `data` with `operator_token` and waits for `/readyz`; the child (killed
/// when dropped), its pid and its base URL.
pub async fn start_embedded(
    bin: &Path,
    data: &Path,
    operator_token: &str,
) -> anyhow::Result<(tokio::process::Child, u32, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let server = tokio::process::Command::new(bin)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .env("PICTUREDAY_OPERATOR_TOKEN", operator_token)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = server.id().context("no pid")?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status().is_success())
        .ok()
        != Some(true)
    {
        if Instant::now() > deadline {
            bail!("pictureday did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((server, pid, base))
}
