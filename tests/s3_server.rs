//! A real S3-protocol server for a test: `s3s-fs` (installed by scripts/install-deps.sh) on a free
//! loopback port with a temporary root, checking SigV4 signatures against its own keys. Stopped
//! when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use pictureday_platform::storage::S3Credentials;

use crate::free_port;

pub const BUCKET: &str = "pictureday-test";
pub const ACCESS_KEY: &str = "pictureday-test-access";
pub const SECRET_KEY: &str = "pictureday-test-secret-0123456789";

pub struct S3Server {
    pub endpoint: String,
    child: Child,
    root: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server with one empty bucket, [`BUCKET`], addressed by path.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_domain(None).await
    }

    /// With `domain`, the server also takes virtual-hosted requests: `BUCKET.<domain>` in the
    /// `Host` header names the bucket.
    pub async fn start_with_domain(domain: Option<&str>) -> anyhow::Result<Self> {
        let binary = binary()?;
        let root = tempfile::Builder::new()
            .prefix("pictureday-s3-")
            .tempdir()?;
        // s3s-fs keeps a bucket as a directory of its root.
        std::fs::create_dir(root.path().join(BUCKET))?;
        let port = free_port()?;
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            // The Host header carries the port, so the server's domain must too.
            .args(
                domain
                    .map(|d| ["--domain".to_owned(), format!("{d}:{port}")])
                    .into_iter()
                    .flatten(),
            )
            .arg(root.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            root,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(status) = server.child.try_wait()? {
                bail!("s3s-fs exited ({status})");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("s3s-fs did not listen on {}", server.endpoint);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    pub fn credentials(&self) -> S3Credentials {
        S3Credentials {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
        }
    }

    /// Where the server keeps the objects of [`BUCKET`], one file per key.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(BUCKET)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `PICTUREDAY_S3S_FS`, else the project's own install in `.tools`, else the PATH.
fn binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PICTUREDAY_S3S_FS") {
        return Ok(path.into());
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/s3s-fs");
    if local.exists() {
        return Ok(local);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("s3s-fs"))
        .find(|candidate| candidate.exists())
        .context("s3s-fs not found; run scripts/install-deps.sh")
}
