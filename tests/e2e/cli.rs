//! The command line, run as the real binary against a real server: a folder is zipped while it
//! is sent, a zip and loose files with a mapping are uploaded, the job is followed to its end,
//! the summary and the saved log say what happened to every file, and the exit code says
//! whether everything was applied (0), the job finished with errors (2) or the command failed (1).
//! A zip goes in resumable pieces: an upload cut off part-way keeps what arrived, and the command
//! run again sends only the rest.

use std::path::Path;
use std::process::Output;

use pictureday_tests::{Backend, TestApp, images, zip_of};

const CLI: &str = env!("CARGO_BIN_EXE_pictureday-under-test");

on_each_backend!(
    imports_follow_the_job_and_exit_with_what_happened,
    an_interrupted_upload_goes_on_from_the_last_byte_stored
);

async fn cli(app: &TestApp, token: &str, args: &[&str]) -> anyhow::Result<Output> {
    Ok(tokio::process::Command::new(CLI)
        .args(args)
        .env("PICTUREDAY_URL", app.url(""))
        .env("PICTUREDAY_TOKEN", token)
        .env("PICTUREDAY_DISTRICT", "springfield")
        .env_remove("PICTUREDAY_DATA_DIR")
        .output()
        .await?)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_photo(path: &Path, seed: u32) -> anyhow::Result<()> {
    std::fs::write(path, images::jpeg(images::photo(240, 300, seed))?)?;
    Ok(())
}

async fn imports_follow_the_job_and_exit_with_what_happened(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 4).await?;
    let work = tempfile::tempdir()?;

    // A folder with a subfolder, a hidden file and one photo of no one: zipped on the fly.
    let folder = work.path().join("picture day");
    std::fs::create_dir_all(folder.join("grade5"))?;
    write_photo(&folder.join("0.jpg"), 0)?;
    write_photo(&folder.join("grade5").join("1.jpg"), 1)?;
    write_photo(&folder.join("999.jpg"), 9)?;
    std::fs::write(folder.join(".DS_Store"), b"junk")?;
    let logs = work.path().join("logs");
    let out = cli(
        &app,
        &token,
        &[
            "import",
            "--log-dir",
            &logs.display().to_string(),
            &folder.display().to_string(),
        ],
    )
    .await?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    // Not a terminal: plain lines, the last upload line at 100%.
    assert!(stderr.contains("Uploading 1 folder"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("upload [####################] 100%")),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with(
            "job    [####################] 100%  3 of 3 files  (2 applied, 1 unmatched, 0 rejected)"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r'),
        "no terminal redraws in a log: {stderr:?}"
    );
    assert!(
        stdout.contains("State     finished_with_errors"),
        "{stdout}"
    );
    let counts: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            ["Files", "Applied", "Unmatched", "Rejected"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .collect();
    assert_eq!(
        counts,
        [
            "Files              3",
            "Applied            2",
            "Unmatched          1",
            "Rejected           0"
        ],
        "{stdout}"
    );
    let job = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Job       "))
        .unwrap_or_default()
        .to_owned();
    let log_path = logs.join(format!("pictureday-{job}.csv"));
    assert!(
        stdout.contains(&format!("Log: {}", log_path.display())),
        "{stdout}"
    );
    let log = std::fs::read_to_string(&log_path)?;
    let mut rows: Vec<(String, String)> = log
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (
                cells.first().copied().unwrap_or("").to_owned(),
                cells.get(1).copied().unwrap_or("").to_owned(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("0.jpg".to_owned(), "applied".to_owned()),
            ("999.jpg".to_owned(), "unmatched".to_owned()),
            ("grade5/1.jpg".to_owned(), "applied".to_owned()),
        ],
        "{log}"
    );

    // A zip of photos everyone has: exit 0.
    let zip = work.path().join("retakes.zip");
    std::fs::write(
        &zip,
        zip_of(&[("2.jpg", images::jpeg(images::photo(240, 300, 2))?)])?,
    )?;
    let out = cli(
        &app,
        &token,
        &[
            "import",
            "--log-dir",
            &logs.display().to_string(),
            &zip.display().to_string(),
        ],
    )
    .await?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Loose files with a SmartPass mapping (email or id, file name; no header).
    let loose = work.path().join("loose");
    std::fs::create_dir_all(&loose)?;
    write_photo(&loose.join("a.jpg"), 3)?;
    std::fs::write(loose.join("mapping.csv"), "S3,a.jpg\n")?;
    let out = cli(
        &app,
        &token,
        &[
            "import",
            "--log-dir",
            &logs.display().to_string(),
            "--mapping",
            &loose.join("mapping.csv").display().to_string(),
            &loose.join("a.jpg").display().to_string(),
        ],
    )
    .await?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("Applied            1"));

    // Reading: jobs, one job, who is missing a photo.
    let out = cli(&app, &token, &["jobs"]).await?;
    assert_eq!(out.status.code(), Some(0));
    let listed = text(&out.stdout);
    assert_eq!(
        listed.lines().count(),
        4,
        "a header and three jobs: {listed}"
    );
    assert!(
        listed.lines().nth(3).is_some_and(|l| l.starts_with(&job)),
        "oldest last: {listed}"
    );
    let out = cli(&app, &token, &["job", &job]).await?;
    assert_eq!(out.status.code(), Some(2), "a job with errors reads as one");
    let out = cli(
        &app,
        &token,
        &[
            "job",
            "--follow",
            "--log-dir",
            &logs.display().to_string(),
            &job,
        ],
    )
    .await?;
    assert_eq!(out.status.code(), Some(2));
    let out = cli(&app, &token, &["missing", "--csv"]).await?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout).replace("\r\n", "\n"),
        "role,sis_id,student_number,email,first_name,last_name,school\n"
    );
    let out = cli(&app, &token, &["missing"]).await?;
    assert!(text(&out.stdout).starts_with("0 without a photo in district springfield"));
    // Without a district, a district token's own (the operator's needs one named).
    let out = tokio::process::Command::new(CLI)
        .args(["jobs", "--url", &app.url(""), "--token", &token])
        .env_remove("PICTUREDAY_DISTRICT")
        .output()
        .await?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 4);
    let out = tokio::process::Command::new(CLI)
        .args([
            "jobs",
            "--url",
            &app.url(""),
            "--token",
            &app.operator_token,
        ])
        .env_remove("PICTUREDAY_DISTRICT")
        .output()
        .await?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--district"),
        "{}",
        text(&out.stderr)
    );

    // Failures are exit code 1 with a message a person can act on.
    let out = cli(&app, "pd_not_a_token", &["jobs"]).await?;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("check --token"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(
        &app,
        &token,
        &[
            "import",
            &work.path().join("nothing-here").display().to_string(),
        ],
    )
    .await?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nothing-here"),
        "{}",
        text(&out.stderr)
    );
    app.stop().await
}

/// Bytes as the command line writes them (`577.7 kB`, `1.6 MB`).
fn size_text(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1e6 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

/// What the command line tells a file by: its first and last mebibyte, hashed.
fn fingerprint(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    const EDGE: usize = 1 << 20;
    let mut hash = sha2::Sha256::new();
    hash.update(&bytes[..EDGE.min(bytes.len())]);
    if bytes.len() > EDGE {
        hash.update(&bytes[bytes.len() - EDGE..]);
    }
    format!("sha256:{}", hex::encode(hash.finalize()))
}

async fn an_interrupted_upload_goes_on_from_the_last_byte_stored(
    backend: Backend,
) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    const PEOPLE: u32 = 16;
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", PEOPLE)
        .await?;
    let work = tempfile::tempdir()?;
    // Photos of noise compress to nothing: a zip of a few megabytes.
    let mut entries = Vec::new();
    for n in 0..PEOPLE {
        entries.push((
            format!("{n}.jpg"),
            images::jpeg(images::photo(900, 1125, n))?,
        ));
    }
    let named: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.clone()))
        .collect();
    let zip = zip_of(&named)?;
    let total = zip.len();
    assert!(
        total > 1_500_000,
        "a zip of {total} bytes is too small to cut"
    );
    let path = work.path().join("picture day.zip");
    std::fs::write(&path, &zip)?;

    // An upload begun as the command line begins one, its first piece cut off part-way.
    let begun = app
        .http
        .post(app.url("/v1/districts/springfield/uploads"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"file_name": "picture day.zip", "size": total, "fingerprint": fingerprint(&zip)}))
        .send()
        .await?;
    assert_eq!(begun.status(), 201);
    let begun: serde_json::Value = begun.json().await?;
    let id = begun["upload_id"].as_str().unwrap_or_default().to_owned();
    let upload_path = format!("/v1/districts/springfield/uploads/{id}");
    let sent = 1_000_000;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await?;
    socket
        .write_all(
            format!(
                "PATCH {upload_path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {total}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    socket.write_all(&zip[..sent]).await?;
    socket.flush().await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(socket);
    // What arrived is kept.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let upload = app.get_json(&token, &upload_path).await?;
        if upload["offset"] == sent {
            assert_eq!(upload["complete"], false);
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the bytes of the cut-off piece were not kept: {upload}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A piece that does not start where the upload stands is refused, saying where it does.
    let wrong = app
        .http
        .patch(app.url(&upload_path))
        .bearer_auth(&token)
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(zip[..10].to_vec())
        .send()
        .await?;
    assert_eq!(wrong.status(), 409);
    assert!(
        wrong
            .text()
            .await?
            .contains(&format!("{sent} bytes are stored"))
    );
    // Not yet whole: no import.
    let early = app
        .http
        .post(app.url(&format!("{upload_path}/import")))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(early.status(), 409);

    // The command run again finds the upload and sends only the rest, in 1 MiB pieces.
    let logs = work.path().join("logs");
    let out = tokio::process::Command::new(CLI)
        .args(["import", "--piece-mib", "1", "--log-dir"])
        .arg(&logs)
        .arg(&path)
        .env("PICTUREDAY_URL", app.url(""))
        .env("PICTUREDAY_TOKEN", &token)
        .env("PICTUREDAY_DISTRICT", "springfield")
        .output()
        .await?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Resuming picture day.zip: 1.0 MB of"),
        "{stderr}"
    );
    let rest = format!("of {}", size_text((total - sent) as u64));
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("upload [####################] 100%") && l.contains(&rest)),
        "only the {} bytes not stored were sent: {stderr}",
        total - sent
    );
    assert!(
        stdout.contains(&format!("{:<12}{PEOPLE:>8}", "Applied")),
        "{stdout}"
    );
    let job = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Job       "))
        .unwrap_or_default()
        .to_owned();
    let upload = app.get_json(&token, &upload_path).await?;
    assert_eq!(upload["job_id"], job.as_str(), "{upload}");
    assert_eq!(upload["offset"], total);
    // Asked again, the import answers with the same job; the upload is no longer listed.
    let again = app
        .http
        .post(app.url(&format!("{upload_path}/import")))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(again.status(), 202);
    let again: serde_json::Value = again.json().await?;
    assert_eq!(again["job_id"], job.as_str());
    let listed = app
        .get_json(&token, "/v1/districts/springfield/uploads")
        .await?;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    let jobs = app
        .get_json(&token, "/v1/districts/springfield/jobs")
        .await?;
    assert_eq!(
        jobs["items"].as_array().map(Vec::len),
        Some(1),
        "one job: {jobs}"
    );
    // Another district's token sees no such upload.
    let other = app.create_district("shelbyville", "Shelbyville").await?;
    let hidden = app
        .http
        .get(app.url(&upload_path))
        .bearer_auth(&other)
        .send()
        .await?;
    assert!(
        matches!(hidden.status().as_u16(), 403 | 404),
        "{}",
        hidden.status()
    );
    app.stop().await
}
