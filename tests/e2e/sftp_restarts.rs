//! SFTP drops against the whole embedded default as a process (`pictureday serve`): files sent
//! in a session that has not yet become a job survive a `kill -9` of the server (with its
//! nats-server) and become exactly one job after the restart; the host key, and so its
//! fingerprint, is the same after the restart; a connection cut in the middle of a file leaves
//! nothing of it, in the drop or on disk; and a 1 GB file passes through with the server's
//! memory flat.

use std::path::Path;
use std::time::Duration;

use pictureday_tests::chaos::{NatsReaper, kill_embedded};
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{OPERATOR_TOKEN, ServiceProcess, TestClient};
use serde_json::{Value, json};

use crate::sftp_client::{Client, Login, create_account};

const SERVER: &str = env!("CARGO_BIN_EXE_pictureday-under-test");
const DISTRICT: &str = "riverside";
const USER: &str = "riverside-sis";
const PASSWORD: &str = "riverside sis password";
const BIG_MB: u64 = 1024;

/// Starts `pictureday serve` on `data`, its SFTP server on a free port.
async fn serve(data: &Path, logs: &Path, quiet_secs: u32) -> anyhow::Result<ServiceProcess> {
    let env = vec![
        ("PICTUREDAY_DATA_DIR".to_owned(), data.display().to_string()),
        (
            "PICTUREDAY_OPERATOR_TOKEN".to_owned(),
            OPERATOR_TOKEN.to_owned(),
        ),
        ("PICTUREDAY_IMAGE_WORKERS".to_owned(), "2".to_owned()),
        (
            "PICTUREDAY_SFTP_LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        (
            "PICTUREDAY_SFTP_QUIET_SECS".to_owned(),
            quiet_secs.to_string(),
        ),
    ];
    ServiceProcess::start_with_args(SERVER, &["serve"], "pictureday", env, logs).await
}

/// A `/proc/<pid>/status` figure in kB (`VmRSS`, `VmHWM`).
fn memory_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .ok_or_else(|| anyhow::anyhow!("no {field} in /proc/{pid}/status"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or_default().parse()?)
}

/// The SFTP server's port and public key, as the API gives them.
async fn sftp_server(client: &TestClient, token: &str) -> anyhow::Result<(u16, String, String)> {
    let server = client.get_json(token, "/v1/sftp").await?;
    let port = u16::try_from(server["port"].as_u64().unwrap_or(0))?;
    anyhow::ensure!(port != 0, "no SFTP server: {server}");
    Ok((
        port,
        server["public_key"].as_str().unwrap_or_default().to_owned(),
        server["fingerprint"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ))
}

async fn jobs(client: &TestClient, token: &str) -> anyhow::Result<Vec<Value>> {
    let listed = client
        .get_json(token, &format!("/v1/districts/{DISTRICT}/jobs"))
        .await?;
    Ok(listed["items"]
        .as_array()
        .or(listed.as_array())
        .cloned()
        .unwrap_or_default())
}

/// Every file in `dir` and below of at least `bytes`.
fn files_at_least(dir: &Path, bytes: u64) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.metadata() {
            Ok(meta) if meta.is_dir() => found.extend(files_at_least(&path, bytes)),
            Ok(meta) if meta.len() >= bytes => found.push(path.display().to_string()),
            _ => {}
        }
    }
    found
}

#[tokio::test]
async fn an_sftp_drop_survives_kill_9_and_the_host_key_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let _reaper = NatsReaper(&data);
    // A quiet period longer than the test: the drop is still open when the server is killed.
    let mut server = serve(&data, dir.path(), 3600).await?;
    let mut client = TestClient::new(&server.base_url, OPERATOR_TOKEN);
    let token = client.create_district(DISTRICT, "Riverside").await?;
    client.upload_numbered_roster(&token, DISTRICT, 3).await?;
    let (port, public_key, fingerprint) = sftp_server(&client, &token).await?;
    create_account(
        &client,
        &token,
        DISTRICT,
        json!({"username": USER, "password": PASSWORD}),
    )
    .await?;
    let work = dir.path().join("sftp-client");
    tokio::fs::create_dir_all(&work).await?;
    let known_hosts = work.join("known_hosts");
    tokio::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {public_key}\n")).await?;
    let mut sftp = Client {
        dir: work.clone(),
        port,
        known_hosts: known_hosts.clone(),
    };
    // The numbered roster's students 0, 1 and 2, named by student number.
    let ids: Vec<String> = (0..3).map(|n| n.to_string()).collect();
    for (seed, id) in ids.iter().enumerate() {
        tokio::fs::write(
            work.join(format!("{id}.jpg")),
            jpeg(photo(480, 600, seed as u32 + 1))?,
        )
        .await?;
    }

    // Three photos, and a 1 GB file under a temporary name in data/ (held, never imported):
    // the server's peak memory is measured from just before it.
    let big = work.join("big.bin");
    std::fs::File::create(&big)?.set_len(BIG_MB * 1024 * 1024)?;
    std::fs::write(format!("/proc/{}/clear_refs", server.pid()), "5")?;
    let before_kb = memory_kb(server.pid(), "VmRSS")?;
    let puts: String = ids.iter().map(|id| format!("put {id}.jpg\n")).collect();
    let (ok, out) = sftp
        .run(
            USER,
            Login::Password(PASSWORD),
            &format!(
                "cd /incoming/idphotos\n{puts}put big.bin /incoming/data/big.csv.filepart\nls -1 /incoming/idphotos\n"
            ),
        )
        .await?;
    assert!(ok, "{out}");
    let peak_kb = memory_kb(server.pid(), "VmHWM")?;
    let grew_mb = peak_kb.saturating_sub(before_kb) / 1024;
    assert!(
        grew_mb < 128,
        "a {BIG_MB} MB file raised the server's peak memory by {grew_mb} MB ({before_kb} kB before, {peak_kb} kB peak)"
    );
    std::fs::remove_file(&big)?;

    // A connection cut in the middle of a file (sent slowly, then the client killed).
    let partial = work.join("partial.jpg");
    std::fs::write(&partial, vec![0x5a_u8; 16 << 20])?;
    let batch = work.join("slow-batch");
    std::fs::write(&batch, "put partial.jpg /incoming/idphotos/9999.jpg\n")?;
    let askpass = work.join("askpass.sh");
    let mut slow = tokio::process::Command::new("sftp")
        .current_dir(&work)
        .args(["-l", "2000", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=no",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
        ])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .env_remove("SSH_AUTH_SOCK")
        .arg("-P")
        .arg(port.to_string())
        .arg("-b")
        .arg(&batch)
        .arg(format!("{USER}@127.0.0.1"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    // At 2,000 kbit/s the 16 MB file takes over a minute: after 5 s it is part-way.
    tokio::time::sleep(Duration::from_secs(5)).await;
    slow.kill().await?;
    let (ok, out) = sftp
        .run(
            USER,
            Login::Password(PASSWORD),
            "ls -1 /incoming/idphotos\n",
        )
        .await?;
    assert!(ok, "{out}");
    let listing = out
        .rsplit("sftp> ls -1 /incoming/idphotos")
        .next()
        .unwrap_or_default();
    for id in &ids {
        assert!(listing.contains(&format!("{id}.jpg")), "{out}");
    }
    assert!(
        !listing.contains("9999.jpg"),
        "a file cut off is not held: {out}"
    );
    // Nothing of the cut-off file (or of the 1 GB one, stored) is left in the spool.
    let spool = data.join("spool");
    let left = files_at_least(&spool, 1 << 20);
    assert!(left.is_empty(), "spool files left behind: {left:?}");
    assert!(
        jobs(&client, &token).await?.is_empty(),
        "the drop is still open"
    );

    // kill -9 of the server and its nats-server; back with a quiet period of one second.
    kill_embedded(&mut server, &data)?;
    server = serve(&data, dir.path(), 1).await?;
    client = TestClient::new(&server.base_url, OPERATOR_TOKEN);
    let (port, public_key_after, fingerprint_after) = sftp_server(&client, &token).await?;
    assert_eq!(fingerprint_after, fingerprint, "the host key is kept");
    assert_eq!(public_key_after, public_key);
    // OpenSSH, checking the key it saw before against the new port, connects.
    tokio::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {public_key}\n")).await?;
    sftp.port = port;
    let (ok, out) = sftp
        .run(
            USER,
            Login::Password(PASSWORD),
            "ls -1 /incoming/idphotos\n",
        )
        .await?;
    assert!(ok, "the same host key after a restart: {out}");

    // The drop became exactly one job, with its three photos applied.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let job_id = loop {
        let listed = jobs(&client, &token).await?;
        if let Some(job) = listed.first() {
            assert_eq!(listed.len(), 1, "one drop, one job: {listed:?}");
            break job["job_id"].as_str().unwrap_or_default().to_owned();
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the drop never became a job"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let job = client
        .wait_for_job_within(&token, DISTRICT, &job_id, Duration::from_secs(120))
        .await?;
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(job["counts"]["files"], 3, "{job}");
    assert_eq!(job["counts"]["applied"], 3, "{job}");
    let warnings = job["warnings"].to_string();
    assert!(
        warnings.contains("big.csv.filepart"),
        "the file left under a temporary name is named: {job}"
    );
    let log = client.log(&token, DISTRICT, &job_id).await?;
    let mut names: Vec<String> = log
        .iter()
        .map(|row| {
            format!(
                "{} {}",
                row["file_name"].as_str().unwrap_or_default(),
                row["outcome"].as_str().unwrap_or_default()
            )
        })
        .collect();
    names.sort();
    let mut expected: Vec<String> = ids.iter().map(|id| format!("{id}.jpg applied")).collect();
    expected.sort();
    assert_eq!(names, expected);
    // The file left out is removed from storage too.
    let big_left = files_at_least(&data, 512 << 20);
    assert!(big_left.is_empty(), "left behind: {big_left:?}");
    // The drop is gone: a later look finds no second job.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(jobs(&client, &token).await?.len(), 1);
    server.terminate(Duration::from_secs(30)).await?;
    Ok(())
}
