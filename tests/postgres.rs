//! A real PostgreSQL server for a test: started from Debian's packaged binaries in a temporary
//! directory on a free loopback port, with a fresh database per test, and stopped when dropped.
//!
//! PostgreSQL refuses to run as root, so when the tests are root the server runs as the
//! `postgres` user (`runuser`), in directories that user owns.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use sea_orm::{ConnectionTrait, Database};

use crate::free_port;

/// How many ports a server start tries when the one it chose was taken in the meantime.
const PORT_ATTEMPTS: usize = 3;
/// What postgres logs when its port is taken.
const PORT_TAKEN: &str = "Address already in use";

pub struct PostgresServer {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    log: PathBuf,
    /// Commits are written to the WAL before they are acknowledged.
    durable: bool,
    /// `None` while stopped.
    child: Option<Child>,
    /// Holds the data directory until the server is stopped.
    _dir: tempfile::TempDir,
}

impl PostgresServer {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(false).await
    }

    /// A server whose every acknowledged commit survives the server being killed: a test
    /// that crashes PostgreSQL must not lose what it acknowledged (commits still skip fsync,
    /// which only matters when the machine itself dies).
    pub async fn start_durable() -> anyhow::Result<Self> {
        Self::start_with(true).await
    }

    async fn start_with(durable: bool) -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        let owner = Owner::find()?;
        let dir = tempfile::Builder::new()
            .prefix("pictureday-pg-")
            .tempdir()?;
        owner.give(dir.path())?;
        let data = dir.path().join("data");
        let template = template(&bin, &owner).await?;
        run(owner.command("cp").arg("-a").arg(&template).arg(&data))
            .context("copying the PostgreSQL template cluster")?;
        let port = free_port()?;
        let log = dir.path().join("postgres.log");
        std::fs::File::create(&log)?;
        owner.give(&log)?;
        let mut server = Self {
            bin,
            data,
            port,
            log,
            durable,
            child: None,
            _dir: dir,
        };
        // The port was free when it was chosen, but another test's process can take it before
        // postgres binds it: then postgres exits at once, and another port is tried.
        for _ in 0..PORT_ATTEMPTS {
            server.spawn(&owner)?;
            match server.wait_ready().await {
                Err(error) if server.child.is_none() && server.log_tail().contains(PORT_TAKEN) => {
                    eprintln!(
                        "postgres: port {} was taken ({error}); trying another",
                        server.port
                    );
                    server.port = free_port()?;
                }
                ready => return ready.map(|()| server),
            }
        }
        bail!(
            "postgres found no free port in {PORT_ATTEMPTS} attempts; its log ends:\n{}",
            server.log_tail()
        )
    }

    /// The end of the server's log, for an error that says why it stopped (the log itself goes
    /// with its temporary directory).
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Runs the server on this data directory and port; its output is appended to the log.
    fn spawn(&mut self, owner: &Owner) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().append(true).open(&self.log)?;
        let child = owner
            .command(self.bin.join("postgres"))
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(&self.data)
            // A test database is thrown away: durability only costs time.
            .args(["-c", "fsync=off", "-c"])
            .arg(if self.durable {
                "synchronous_commit=on"
            } else {
                "synchronous_commit=off"
            })
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting postgres")?;
        self.child = Some(child);
        Ok(())
    }

    /// Stops the server: `immediate` aborts every backend at once, as a crash would (the next
    /// start recovers from the WAL); otherwise open sessions are disconnected and the server
    /// shuts down cleanly.
    pub async fn stop(&mut self, immediate: bool) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let owner = Owner::find()?;
        let mut pg_ctl = owner.command(self.bin.join("pg_ctl"));
        pg_ctl
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args([
                "-m",
                if immediate { "immediate" } else { "fast" },
                "-s",
                "-w",
            ])
            .stdout(Stdio::null());
        tokio::task::spawn_blocking(move || {
            let stopped = run(&mut pg_ctl);
            if stopped.is_err() {
                let _ = child.kill();
            }
            child.wait()?;
            stopped
        })
        .await?
    }

    /// Starts a stopped server again on the same data directory and port.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        self.spawn(&Owner::find()?)?;
        self.wait_ready().await
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match Database::connect(self.admin_url()).await {
                Ok(db) => {
                    db.close().await?;
                    return Ok(());
                }
                Err(error) => {
                    if let Some(child) = &mut self.child
                        && let Some(status) = child.try_wait()?
                    {
                        self.child = None;
                        bail!(
                            "postgres exited ({status}); its log ends:\n{}",
                            self.log_tail()
                        );
                    }
                    if tokio::time::Instant::now() > deadline {
                        bail!("postgres did not accept connections: {error}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Creates a fresh database, named by a UUID, and returns its URL.
    pub async fn create_database(&self) -> anyhow::Result<String> {
        let name = uuid::Uuid::new_v4().simple().to_string();
        let admin = Database::connect(self.admin_url()).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        admin.close().await?;
        Ok(format!(
            "postgres://postgres@127.0.0.1:{}/{name}",
            self.port
        ))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let owner = Owner::find();
        if let (Some(mut child), Ok(owner)) = (self.child.take(), owner) {
            // Killing `runuser` would orphan postgres; pg_ctl stops the server itself.
            let stopped = owner
                .command(self.bin.join("pg_ctl"))
                .arg("stop")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-s"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !matches!(stopped, Ok(status) if status.success()) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// Where the server binaries are: `PICTUREDAY_PG_BIN`, else the newest Debian-packaged version,
/// else whatever `initdb` is on the PATH.
fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PICTUREDAY_PG_BIN") {
        return Ok(dir.into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").exists())
        .context("PostgreSQL server binaries not found; run scripts/install-deps.sh")
}

/// An initialised cluster, made once per machine and copied for every server: `initdb` takes
/// seconds, a copy a fraction of one.
async fn template(bin: &Path, owner: &Owner) -> anyhow::Result<PathBuf> {
    let template = std::env::temp_dir().join(format!(
        "pictureday-pg-template-{}{}",
        owner.uid,
        bin.display().to_string().replace('/', "-")
    ));
    if template.join("PG_VERSION").exists() {
        return Ok(template);
    }
    let work = tempfile::Builder::new()
        .prefix("pictureday-pg-initdb-")
        .tempdir()?;
    owner.give(work.path())?;
    let fresh = work.path().join("data");
    let mut initdb = owner.command(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&fresh)
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale"])
        .args(["--no-sync", "--no-instructions"])
        .stdout(Stdio::null());
    tokio::task::spawn_blocking(move || run(&mut initdb)).await??;
    // Another test process may have made it meanwhile; either copy will do.
    if std::fs::rename(&fresh, &template).is_err() && !template.join("PG_VERSION").exists() {
        bail!(
            "could not keep the PostgreSQL template at {}",
            template.display()
        );
    }
    Ok(template)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Who runs PostgreSQL: this user, or `postgres` when this user is root.
struct Owner {
    uid: u32,
    gid: u32,
    switch: bool,
}

impl Owner {
    fn find() -> anyhow::Result<Self> {
        let me = std::fs::metadata("/proc/self")?;
        if me.uid() != 0 {
            return Ok(Self {
                uid: me.uid(),
                gid: me.gid(),
                switch: false,
            });
        }
        let passwd = std::fs::read_to_string("/etc/passwd")?;
        let (uid, gid) = passwd
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|fields| fields.first() == Some(&"postgres"))
            .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
            .context(
                "running as root needs a `postgres` user (the postgresql package makes one)",
            )?;
        Ok(Self {
            uid,
            gid,
            switch: true,
        })
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        if self.switch {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn give(&self, path: &Path) -> anyhow::Result<()> {
        if self.switch {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
                .with_context(|| format!("giving {} to postgres", path.display()))?;
        }
        Ok(())
    }
}
