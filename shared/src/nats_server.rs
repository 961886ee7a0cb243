//! Starts a local `nats-server` with JetStream: the embedded default runs its own, and tests start
//! one each on a free port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

#[derive(Debug, thiserror::Error)]
pub enum NatsServerError {
    #[error(
        "could not start nats-server (is it installed? scripts/install-deps.sh installs it): {0}"
    )]
    Spawn(std::io::Error),
    #[error("nats-server did not start listening within {0:?}; its log: {1}")]
    NotListening(Duration, String),
    #[error("preparing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct NatsServer {
    child: Child,
    url: String,
}

const START_PATIENCE: Duration = Duration::from_secs(20);

impl NatsServer {
    /// Starts a server on a free loopback port, keeping JetStream data under `store_dir`.
    pub async fn start(store_dir: &Path) -> Result<Self, NatsServerError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| NatsServerError::Io { path, source }
        };
        tokio::fs::create_dir_all(store_dir)
            .await
            .map_err(io(store_dir))?;
        let log = store_dir.join("nats-server.log");
        // A fresh log each start, so the port read below is this run's.
        let _ = tokio::fs::remove_file(&log).await;
        let child = Command::new("nats-server")
            .args(["--jetstream", "--addr", "127.0.0.1", "--port", "-1"])
            .arg("--store_dir")
            .arg(store_dir)
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(NatsServerError::Spawn)?;
        let deadline = tokio::time::Instant::now() + START_PATIENCE;
        loop {
            let text = tokio::fs::read_to_string(&log).await.unwrap_or_default();
            if let Some(url) = listening_url(&text) {
                return Ok(Self { child, url });
            }
            if tokio::time::Instant::now() > deadline {
                return Err(NatsServerError::NotListening(START_PATIENCE, text));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server with SIGTERM, so it closes its JetStream files cleanly.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

/// Finds `Listening for client connections on 127.0.0.1:PORT` in the server's log.
fn listening_url(log: &str) -> Option<String> {
    let marker = "Listening for client connections on ";
    let line = log.lines().find(|l| l.contains(marker))?;
    let addr = line.split(marker).nth(1)?.trim();
    Some(format!("nats://{addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_port_from_the_log() {
        let log = "[1] 2026/11/21 [INF] Starting nats-server\n[1] 2026/11/21 14:00:00.000 [INF] Listening for client connections on 127.0.0.1:41234\n";
        assert_eq!(
            listening_url(log).as_deref(),
            Some("nats://127.0.0.1:41234")
        );
        assert_eq!(listening_url("nothing"), None);
    }
}
