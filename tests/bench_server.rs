//! The embedded default as the benchmarks run it: `pictureday serve` on a data directory and a
//! free loopback port, its output quiet, ready before anything is measured; and stopped with
//! the nats-server it started, so no benchmark leaves one running to load the next.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A running `pictureday serve`. Dropped, it and its nats-server are killed.
pub struct Embedded {
    child: tokio::process::Child,
    /// The server's pid.
    pub pid: u32,
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    data: PathBuf,
    /// Stopped gracefully: it stopped its nats-server itself, whose pid may since be another
    /// process's.
    stopped: bool,
}

impl Embedded {
    /// Starts `bin serve` on `data` with `operator_token` and waits for `/readyz`.
    pub async fn start(bin: &Path, data: &Path, operator_token: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new(bin)
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
        let pid = child.id().context("no pid")?;
        let server = Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            data: data.to_owned(),
            stopped: false,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while http
            .get(format!("{}/readyz", server.base))
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
        Ok(server)
    }

    /// The pid of the nats-server it started, from its pid file.
    pub fn nats_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data.join("nats/nats-server.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// Stops it as an operator would (SIGTERM), waiting for it to exit; it stops its
    /// nats-server itself.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await?;
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .context("the server did not stop")??;
        self.stopped = true;
        Ok(())
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        // A server killed outright leaves its nats-server running: kill that too.
        let nats = self.nats_pid();
        let _ = self.child.start_kill();
        if let Some(pid) = nats {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}
