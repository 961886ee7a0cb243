//! Starts a local `nats-server` with JetStream: the embedded default runs its own, and tests start
//! one each on a free port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::nats_client::NatsAddress;

#[derive(Debug, thiserror::Error)]
pub enum NatsServerError {
    #[error(
        "could not start {binary} (is it installed? scripts/install-deps.sh installs it into .tools/bin): {source}"
    )]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error(
        "{binary} is version {found}; Pictureday needs nats-server {MIN_MAJOR}.{MIN_MINOR} or newer (scripts/install-deps.sh installs one into .tools/bin)"
    )]
    TooOld { binary: String, found: String },
    #[error("nats-server did not start listening within {0:?}; its log: {1}")]
    NotListening(Duration, String),
    #[error("preparing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The oldest nats-server accepted: `sync_interval` (JetStream's fsync policy) and the
/// consumer and stream settings used here need 2.10; older ones lost acknowledged writes on a
/// crash.
const MIN_MAJOR: u32 = 2;
const MIN_MINOR: u32 = 10;

/// The environment variable naming the nats-server binary (default: `nats-server` on `PATH`).
pub const BINARY_ENV: &str = "PICTUREDAY_NATS_SERVER";

pub struct NatsServer {
    child: Child,
    url: String,
}

const START_PATIENCE: Duration = Duration::from_secs(20);

/// The nats-server binary to run.
pub fn binary() -> String {
    std::env::var(BINARY_ENV).unwrap_or_else(|_| "nats-server".into())
}

/// The binary's version, checked to be new enough.
pub async fn checked_version(binary: &str) -> Result<String, NatsServerError> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .await
        .map_err(|source| NatsServerError::Spawn {
            binary: binary.to_owned(),
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let found = text
        .split_whitespace()
        .find_map(|word| word.strip_prefix('v'))
        .unwrap_or(text.trim())
        .to_owned();
    let mut parts = found.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (MIN_MAJOR, MIN_MINOR) {
        return Err(NatsServerError::TooOld {
            binary: binary.to_owned(),
            found,
        });
    }
    Ok(found)
}

impl NatsServer {
    /// Starts a server on a free loopback port, keeping JetStream data under `store_dir`.
    pub async fn start(store_dir: &Path) -> Result<Self, NatsServerError> {
        Self::start_on(store_dir, None).await
    }

    /// Starts a server on `port` (a free one if `None`), keeping JetStream data under
    /// `store_dir`. JetStream syncs every write to disk before acknowledging it: on a single
    /// node there is no replica to recover a write from, and the default (every two minutes)
    /// loses acknowledged messages when the machine or the process dies.
    pub async fn start_on(store_dir: &Path, port: Option<u16>) -> Result<Self, NatsServerError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| NatsServerError::Io { path, source }
        };
        let binary = binary();
        checked_version(&binary).await?;
        tokio::fs::create_dir_all(store_dir)
            .await
            .map_err(io(store_dir))?;
        let config = store_dir.join("nats-server.conf");
        let pid_file = store_dir.join("nats-server.pid");
        let token = client_token(store_dir).await?;
        stop_orphan(&pid_file, &config).await;
        let log = store_dir.join("nats-server.log");
        // A fresh log each start, so the port read below is this run's.
        let _ = tokio::fs::remove_file(&log).await;
        let port = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        // Clients must present the token: on a shared machine any local process could otherwise
        // read every district's events and publish forged ones.
        let text = format!(
            "# Written by Pictureday at each start.\n\
             listen: \"127.0.0.1:{port}\"\n\
             pid_file: {pid}\n\
             authorization {{\n  token: {token}\n}}\n\
             jetstream {{\n  store_dir: {store}\n  sync_interval: always\n}}\n",
            pid = serde_json::Value::String(pid_file.display().to_string()),
            store = serde_json::Value::String(store_dir.display().to_string()),
            token = serde_json::Value::String(token.clone()),
        );
        write_private(&config, text.as_bytes())
            .await
            .map_err(io(&config))?;
        let child = Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| NatsServerError::Spawn {
                binary: binary.clone(),
                source,
            })?;
        let deadline = tokio::time::Instant::now() + START_PATIENCE;
        loop {
            let text = tokio::fs::read_to_string(&log).await.unwrap_or_default();
            if let Some(url) = listening_url(&text) {
                let url = NatsAddress::with_token(&url, &token);
                return Ok(Self { child, url });
            }
            if tokio::time::Instant::now() > deadline {
                return Err(NatsServerError::NotListening(START_PATIENCE, text));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The URL clients connect with, its token included (`nats://TOKEN@127.0.0.1:PORT`): pass it
    /// to `NatsAddress`, never to a log.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process id (tests kill it).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> Option<u16> {
        self.url.rsplit(':').next()?.parse().ok()
    }

    /// The URL without its token, for messages (and for tests that must be refused).
    pub fn url_without_credentials(&self) -> String {
        NatsAddress::parse(&self.url).url
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

    /// Kills the server at once (`SIGKILL`), as a crash would.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The token clients of this store's server present: made once, kept beside the store (0600), so
/// a restarted server and its reconnecting clients agree.
async fn client_token(store_dir: &Path) -> Result<String, NatsServerError> {
    let path = store_dir.join("nats.token");
    let io = |source| NatsServerError::Io {
        path: path.clone(),
        source,
    };
    match tokio::fs::read_to_string(&path).await {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_owned()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io(error)),
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_private(&path, token.as_bytes()).await.map_err(io)?;
    Ok(token)
}

/// Writes a file only its owner may read (it holds a secret).
async fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await?;
    // A file made before with wider permissions is narrowed too.
    tokio::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).await?;
    file.write_all(contents).await?;
    file.sync_all().await
}

/// A nats-server left running on this store by a launcher that was killed outright (it had no
/// chance to stop its child) would hold the store and the port: it is stopped first. Only a
/// process whose command line names this store's config file is touched.
async fn stop_orphan(pid_file: &Path, config: &Path) {
    let Ok(text) = tokio::fs::read_to_string(pid_file).await else {
        return;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return;
    };
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cmdline) = tokio::fs::read(proc_dir.join("cmdline")).await else {
        return;
    };
    let ours = String::from_utf8_lossy(&cmdline).contains(&*config.to_string_lossy());
    if !ours {
        return;
    }
    tracing::warn!(
        pid,
        "stopping a nats-server left running by an earlier start"
    );
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await;
    for _ in 0..100 {
        if !proc_dir.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
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
