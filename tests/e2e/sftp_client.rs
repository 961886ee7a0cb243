//! The real OpenSSH `sftp` client in batch mode (`sftp -b`), as the SFTP tests drive it: the
//! host key checked against a `known_hosts` the test writes, by key or by password.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pictureday_tests::TestClient;
use serde_json::Value;

/// How a login is made.
pub enum Login<'a> {
    Key(&'a Path),
    Password(&'a str),
}

pub struct Client {
    pub dir: PathBuf,
    pub port: u16,
    pub known_hosts: PathBuf,
}

impl Client {
    /// Runs `sftp -b` with `commands` as `user`; the exit status success and what it printed.
    pub async fn run(
        &self,
        user: &str,
        login: Login<'_>,
        commands: &str,
    ) -> anyhow::Result<(bool, String)> {
        let batch = self.dir.join("batch");
        tokio::fs::write(&batch, commands).await?;
        let mut command = tokio::process::Command::new("sftp");
        command
            .current_dir(&self.dir)
            .arg("-o")
            .arg("StrictHostKeyChecking=yes")
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg("-o")
            .arg("GlobalKnownHostsFile=/dev/null")
            .arg("-o")
            .arg("ConnectTimeout=20")
            .arg("-P")
            .arg(self.port.to_string())
            .env_remove("SSH_AUTH_SOCK")
            .stdin(std::process::Stdio::null());
        match login {
            Login::Key(key) => {
                command
                    .arg("-o")
                    .arg("PasswordAuthentication=no")
                    .arg("-o")
                    .arg("IdentitiesOnly=yes")
                    .arg("-i")
                    .arg(key);
            }
            Login::Password(password) => {
                // `-b` implies BatchMode, which allows no password: the first value ssh sees
                // wins, so BatchMode=no comes first and the password comes from SSH_ASKPASS.
                let askpass = self.dir.join("askpass.sh");
                tokio::fs::write(
                    &askpass,
                    format!("#!/bin/sh\nprintf '%s\\n' '{password}'\n"),
                )
                .await?;
                use std::os::unix::fs::PermissionsExt as _;
                tokio::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700))
                    .await?;
                command
                    .arg("-o")
                    .arg("BatchMode=no")
                    .arg("-o")
                    .arg("PubkeyAuthentication=no")
                    .arg("-o")
                    .arg("PreferredAuthentications=password")
                    .arg("-o")
                    .arg("NumberOfPasswordPrompts=1")
                    .env("SSH_ASKPASS", &askpass)
                    .env("SSH_ASKPASS_REQUIRE", "force")
                    .env("DISPLAY", ":0");
            }
        }
        command
            .arg("-b")
            .arg(&batch)
            .arg(format!("{user}@127.0.0.1"));
        let output = tokio::time::timeout(Duration::from_secs(120), command.output()).await??;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((output.status.success(), text))
    }
}

pub async fn create_account(
    app: &TestClient,
    token: &str,
    district: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = app
        .http
        .post(app.url(&format!("/v1/districts/{district}/sftp-accounts")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status == 201, "create SFTP account: {status}: {body}");
    Ok(body)
}
