//! A service binary running as its own operating-system process, configured by environment
//! variables as in a deployment, so a test can stop it gracefully or kill it outright.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::free_port;

pub struct ServiceProcess {
    pub instance: String,
    pub base_url: String,
    child: Child,
    log: PathBuf,
}

impl ServiceProcess {
    /// Starts `binary` with exactly `env` (plus `PATH` and a listen address) and waits until its
    /// `/readyz` answers.
    pub async fn start(
        binary: &str,
        instance: &str,
        env: Vec<(String, String)>,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        Self::start_with_args(binary, &[], instance, env, log_dir).await
    }

    /// As [`ServiceProcess::start`], with arguments (`pictureday serve`).
    pub async fn start_with_args(
        binary: &str,
        args: &[&str],
        instance: &str,
        env: Vec<(String, String)>,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        Self::start_on(binary, args, instance, env, log_dir, free_port()?).await
    }

    /// As [`ServiceProcess::start_with_args`], listening on `port`: a process started again
    /// where others (the gateway) expect it.
    pub async fn start_on(
        binary: &str,
        args: &[&str],
        instance: &str,
        env: Vec<(String, String)>,
        log_dir: &Path,
        port: u16,
    ) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{instance}.log"));
        // Appended to, so the log of a process started again on the same name keeps the past.
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = Command::new(binary)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PICTUREDAY_LISTEN", format!("127.0.0.1:{port}"))
            // The launcher's default SFTP port would clash between tests running at once, and
            // these tests are about other things: SFTP has its own (tests/e2e/sftp.rs).
            .env("PICTUREDAY_SFTP_LISTEN", "off")
            .env("RUST_LOG", "info,pictureday_platform=debug")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let mut process = Self {
            instance: instance.to_owned(),
            base_url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        process.wait_ready().await?;
        Ok(process)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited at start ({status}):\n{}",
                    self.instance,
                    self.log()
                );
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.base_url)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{} did not become ready:\n{}", self.instance, self.log())
    }

    /// How the process exited, if it has.
    pub fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// The port it listens on.
    pub fn port(&self) -> anyhow::Result<u16> {
        self.base_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no port in {}", self.base_url))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process gets no chance to finish, ack or hand anything back.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, as an orchestrator stops a container; returns how the process exited.
    pub async fn terminate(&mut self, patience: Duration) -> anyhow::Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{} still running {patience:?} after SIGTERM:\n{}",
                    self.instance,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the process has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
