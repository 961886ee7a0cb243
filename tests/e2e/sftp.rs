//! SFTP drop folders with the real OpenSSH `sftp` client in batch mode (`sftp -b`), the host
//! key checked against a `known_hosts` written from what the API says: a drop of photos becomes
//! one job with exact outcomes; the same name again replaces; a file sent under a temporary
//! name and renamed counts once, under its final name; wrong passwords and keys are refused; one
//! district's account neither sees nor writes another's folder, nor escapes with `../`; a roster
//! CSV in `data/` updates people (sent under a temporary name and renamed, too); a zip with its mapping is imported as an archive; the host key
//! is the one kept in storage; storage failing at `close` is an error the client sees.

use std::time::Duration;

use pictureday_platform::config::SftpArgs;
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{AppLayout, Backend, TestApp};
use serde_json::{Value, json};

use crate::sftp_client::{Client, Login, create_account};

on_each_backend!(sftp_drops_become_jobs_like_uploads);

const A: &str = "springfield";
const B: &str = "shelbyville";
const PASSWORD_A: &str = "springfield sis password";
const PASSWORD_B: &str = "shelbyville sis password";

const ROSTER: &str = "role,sis_id,student_number,first_name,last_name\n\
student,S1001,1001,Ada,Lovelace\n\
student,S1002,1002,Grace,Hopper\n\
student,S1003,1003,Alan,Turing\n";

/// The district's jobs, oldest first.
async fn jobs(app: &TestApp, token: &str, district: &str) -> anyhow::Result<Vec<String>> {
    let page = app
        .get_json(token, &format!("/v1/districts/{district}/jobs"))
        .await?;
    let mut ids: Vec<String> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["job_id"].as_str().map(str::to_owned))
        .collect();
    ids.reverse();
    Ok(ids)
}

/// The local storage's root under `dir`: where the SFTP host key is kept.
fn find_storage_root(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        if path.join("sftp").join("host_key").is_file() {
            return Ok(path);
        }
        if path.is_dir()
            && let Ok(found) = find_storage_root(&path)
        {
            return Ok(found);
        }
    }
    anyhow::bail!("no storage root under {}", dir.display())
}

/// Waits for the person with SIS id `sis_id` to be on district A's roster.
async fn wait_for_person(app: &TestApp, token: &str, sis_id: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let people = app
            .get_json(token, &format!("/v1/districts/{A}/people?sis_id={sis_id}"))
            .await?;
        if people["items"].as_array().is_some_and(|p| p.len() == 1) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{sis_id} never arrived: {people}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for the district's job number `n` (0-based, oldest first) to appear and finish.
async fn nth_job(app: &TestApp, token: &str, district: &str, n: usize) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ids = jobs(app, token, district).await?;
        if let Some(id) = ids.get(n) {
            anyhow::ensure!(ids.len() == n + 1, "more jobs than expected: {ids:?}");
            return app.wait_for_job(token, district, id).await;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no job {n} in {district}: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn outcomes(log: &[Value]) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = log
        .iter()
        .map(|r| {
            (
                r["file_name"].as_str().unwrap_or("").to_owned(),
                r["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// The app with its SFTP server listening on a free port, drops quiet after 1 s.
async fn app_with_sftp(backend: Backend, behind_gateway: bool) -> anyhow::Result<TestApp> {
    TestApp::spawn_with(
        backend,
        AppLayout {
            behind_gateway,
            sftp: SftpArgs {
                sftp_listen: Some("127.0.0.1:0".into()),
                sftp_quiet_secs: Some(1),
                sftp_host_key_file: None,
            },
            ..AppLayout::default()
        },
    )
    .await
}

/// A client of the SFTP server the API names, working in `<app dir>/sftp-client`, whose
/// `known_hosts` holds the public key the API gives; and the fingerprint the API gives.
async fn client_for(app: &TestApp, token: &str) -> anyhow::Result<(Client, String)> {
    let server = app.get_json(token, "/v1/sftp").await?;
    assert_eq!(server["enabled"], true, "{server}");
    let port = u16::try_from(server["port"].as_u64().unwrap_or(0))?;
    let public_key = server["public_key"].as_str().unwrap_or_default().to_owned();
    let fingerprint = server["fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let dir = app.dir.path().join("sftp-client");
    tokio::fs::create_dir_all(&dir).await?;
    let known_hosts = dir.join("known_hosts");
    tokio::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {public_key}\n")).await?;
    let client = Client {
        dir,
        port,
        known_hosts,
    };
    Ok((client, fingerprint))
}

async fn sftp_drops_become_jobs_like_uploads(backend: Backend) -> anyhow::Result<()> {
    let app = app_with_sftp(backend, false).await?;
    let token_a = app.create_district(A, "Springfield").await?;
    let token_b = app.create_district(B, "Shelbyville").await?;
    let (status, body) = app.upload_roster(&token_a, A, ROSTER).await?;
    anyhow::ensure!(status == 200, "roster: {status}: {body}");

    // Where to connect, and the host key to expect: known_hosts is written from the API.
    let (client, fingerprint) = client_for(&app, &token_a).await?;
    let (dir, known_hosts) = (client.dir.clone(), client.known_hosts.clone());
    // The fingerprint the API gives is the one OpenSSH computes from the key.
    let printed = tokio::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&known_hosts)
        .output()
        .await?;
    let printed = String::from_utf8_lossy(&printed.stdout).into_owned();
    assert!(printed.contains(&fingerprint), "{printed} / {fingerprint}");
    // The key is kept: loading it again (as a restart or another replica does) gives the same.
    let storage = app.connections.storage().await?;
    let again = pictureday_ingest::sftp::host_key::load(None, &storage).await?;
    assert_eq!(again.fingerprint, fingerprint);

    // Accounts: A by key and password, B by password.
    let key = dir.join("id_a");
    let made = tokio::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "sis@springfield",
            "-f",
        ])
        .arg(&key)
        .status()
        .await?;
    anyhow::ensure!(made.success(), "ssh-keygen failed");
    let public = tokio::fs::read_to_string(key.with_extension("pub")).await?;
    let account = create_account(
        &app,
        &token_a,
        A,
        json!({"username": "springfield-sis", "password": PASSWORD_A, "public_keys": [public.trim()]}),
    )
    .await?;
    assert_eq!(account["has_password"], true);
    assert!(
        !account.to_string().contains(PASSWORD_A),
        "the password is never shown"
    );
    create_account(
        &app,
        &token_b,
        B,
        json!({"username": "shelbyville-sis", "password": PASSWORD_B}),
    )
    .await?;
    // User names are unique across districts.
    let taken = app
        .http
        .post(app.url(&format!("/v1/districts/{B}/sftp-accounts")))
        .bearer_auth(&token_b)
        .json(&json!({"username": "springfield-sis", "password": PASSWORD_B}))
        .send()
        .await?;
    assert_eq!(taken.status(), 409);

    for (name, seed) in [
        ("1001.jpg", 1),
        ("1002.jpg", 2),
        ("9999.jpg", 3),
        ("1001b.jpg", 4),
    ] {
        tokio::fs::write(dir.join(name), jpeg(photo(480, 600, seed))?).await?;
    }
    tokio::fs::write(dir.join("broken.jpg"), b"not a photo at all").await?;

    // 1. A drop of photos, by key: one job, every outcome exact.
    let (ok, out) = client
        .run(
            "springfield-sis",
            Login::Key(&key),
            "cd /incoming/idphotos\nput 1001.jpg\nput 1002.jpg\nput 9999.jpg\nput broken.jpg 1003.jpg\nls -1\n",
        )
        .await?;
    assert!(ok, "{out}");
    for name in ["1001.jpg", "1002.jpg", "9999.jpg", "1003.jpg"] {
        assert!(out.contains(name), "listing shows {name}: {out}");
    }
    let job = nth_job(&app, &token_a, A, 0).await?;
    assert_eq!(job["counts"]["files"], 4, "{job}");
    assert_eq!(job["counts"]["applied"], 2, "{job}");
    assert_eq!(job["counts"]["unmatched"], 1, "{job}");
    assert_eq!(job["counts"]["rejected"], 1, "{job}");
    let job_id = job["job_id"].as_str().unwrap_or_default().to_owned();
    let log = app.log(&token_a, A, &job_id).await?;
    assert_eq!(
        outcomes(&log),
        vec![
            ("1001.jpg".into(), "applied".into()),
            ("1002.jpg".into(), "applied".into()),
            ("1003.jpg".into(), "rejected".into()),
            ("9999.jpg".into(), "unmatched".into()),
        ]
    );

    // 2. By password, at the other spelling of the folder: the same name replaces 1001's
    // photo, and a file sent under a temporary name and renamed counts once, as its final name.
    let (ok, out) = client
        .run(
            "springfield-sis",
            Login::Password(PASSWORD_A),
            "put 1001b.jpg /idphotos/1001.jpg\nput 1002.jpg /idphotos/1003.jpg.filepart\nrename /idphotos/1003.jpg.filepart /idphotos/1003.jpg\nls -1 /idphotos\n",
        )
        .await?;
    assert!(ok, "{out}");
    let listing = out
        .rsplit("sftp> ls -1 /idphotos")
        .next()
        .unwrap_or_default();
    assert!(
        listing.contains("/idphotos/1003.jpg") && !listing.contains(".filepart"),
        "the file is listed under its final name alone: {out}"
    );
    let job = nth_job(&app, &token_a, A, 1).await?;
    let job_id = job["job_id"].as_str().unwrap_or_default().to_owned();
    let log = app.log(&token_a, A, &job_id).await?;
    assert_eq!(
        outcomes(&log),
        vec![
            ("1001.jpg".into(), "replaced".into()),
            ("1003.jpg".into(), "applied".into()),
        ],
        "{job}"
    );
    let people = app
        .get_json(&token_a, &format!("/v1/districts/{A}/people?sis_id=S1001"))
        .await?;
    let person = people["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let versions = app
        .get_json(
            &token_a,
            &format!("/v1/districts/{A}/people/{person}/photos"),
        )
        .await?;
    let count = versions
        .as_array()
        .or(versions["items"].as_array())
        .map_or(0, Vec::len);
    assert_eq!(count, 2, "the old version is kept: {versions}");

    // 3. Wrong password, wrong key, disabled: refused.
    let (ok, out) = client
        .run(
            "springfield-sis",
            Login::Password("not the password"),
            "ls\n",
        )
        .await?;
    assert!(!ok, "a wrong password is refused: {out}");
    let other = dir.join("id_other");
    tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .await?;
    let (ok, out) = client
        .run("springfield-sis", Login::Key(&other), "ls\n")
        .await?;
    assert!(!ok, "a key not on the account is refused: {out}");

    // 4. District B's account sees only its own (empty) folder and cannot leave it.
    let (ok, out) = client
        .run(
            "shelbyville-sis",
            Login::Password(PASSWORD_B),
            "ls -1 /incoming/idphotos\ncd ../../..\npwd\n-get /etc/passwd\n-put 1002.jpg ../../springfield/incoming/idphotos/1002.jpg\n-ls /etc\n-cd /springfield\n",
        )
        .await?;
    assert!(ok, "{out}");
    assert!(out.contains("Remote working directory: /\n"), "{out}");
    assert!(!out.contains("1001.jpg") && !out.contains("root:"), "{out}");
    assert!(!dir.join("passwd").exists());
    // Nothing B did became a job anywhere.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(jobs(&app, &token_b, B).await?.is_empty());
    assert_eq!(jobs(&app, &token_a, A).await?.len(), 2);

    // 5. A roster CSV in data/ is imported as POST …/roster imports it.
    tokio::fs::write(
        dir.join("roster.csv"),
        format!("{ROSTER}student,S1004,1004,Barbara,Liskov\n"),
    )
    .await?;
    let (ok, out) = client
        .run(
            "springfield-sis",
            Login::Key(&key),
            "put roster.csv /incoming/data/roster.csv\n",
        )
        .await?;
    assert!(ok, "{out}");
    wait_for_person(&app, &token_a, "S1004").await?;
    // Sent under a temporary name and renamed, it is imported once renamed.
    tokio::fs::write(
        dir.join("roster.csv"),
        format!("{ROSTER}student,S1004,1004,Barbara,Liskov\nstudent,S1005,1005,Edsger,Dijkstra\n"),
    )
    .await?;
    let (ok, out) = client
        .run(
            "springfield-sis",
            Login::Key(&key),
            "put roster.csv /data/roster.csv.filepart\nrename /data/roster.csv.filepart /data/roster.csv\n",
        )
        .await?;
    assert!(ok, "{out}");
    wait_for_person(&app, &token_a, "S1005").await?;

    // 6. A zip dropped in idphotos/ is imported as an archive, its mapping inside it included.
    let zip = pictureday_tests::zip_of(&[
        ("photos/IMG_0001.JPG", jpeg(photo(480, 600, 7))?),
        ("mapping.csv", b"S1004,IMG_0001.JPG\n".to_vec()),
    ])?;
    tokio::fs::write(dir.join("batch.zip"), zip).await?;
    let (ok, out) = client
        .run(
            "springfield-sis",
            Login::Key(&key),
            "put batch.zip /incoming/idphotos/batch.zip\n",
        )
        .await?;
    assert!(ok, "{out}");
    let job = nth_job(&app, &token_a, A, 2).await?;
    let job_id = job["job_id"].as_str().unwrap_or_default().to_owned();
    let log = app.log(&token_a, A, &job_id).await?;
    assert_eq!(
        outcomes(&log),
        vec![("photos/IMG_0001.JPG".into(), "applied".into())],
        "{job}"
    );

    // 6b. Two zips, each with its own mapping, cannot be one import: still one job, every file
    // rejected saying why.
    for (name, entry, mapping, seed) in [
        ("a.zip", "a/IMG_1.JPG", "S1001,IMG_1.JPG\n", 8),
        ("b.zip", "b/IMG_2.JPG", "S1002,IMG_2.JPG\n", 9),
    ] {
        let zip = pictureday_tests::zip_of(&[
            (entry, jpeg(photo(480, 600, seed))?),
            ("mapping.csv", mapping.as_bytes().to_vec()),
        ])?;
        tokio::fs::write(dir.join(name), zip).await?;
    }
    let (ok, out) = client
        .run(
            "springfield-sis",
            Login::Key(&key),
            "put a.zip /incoming/idphotos/a.zip\nput b.zip /incoming/idphotos/b.zip\n",
        )
        .await?;
    assert!(ok, "{out}");
    let job = nth_job(&app, &token_a, A, 3).await?;
    let job_id = job["job_id"].as_str().unwrap_or_default().to_owned();
    let log = app.log(&token_a, A, &job_id).await?;
    assert_eq!(
        outcomes(&log),
        vec![
            ("a/IMG_1.JPG".into(), "rejected".into()),
            ("b/IMG_2.JPG".into(), "rejected".into()),
        ],
        "{job}"
    );
    assert!(
        log.iter().all(|r| r["reason"]
            .as_str()
            .is_some_and(|m| m.contains("2 mappings"))),
        "{log:?}"
    );

    // 7. Storage failing when a file is closed is an error the client sees for that file, and
    // nothing of it is held or becomes a job. (Local storage: a file where the district's
    // uploads folder must be makes every write under it fail.)
    if backend == Backend::Embedded {
        let root = find_storage_root(app.dir.path())?;
        let uploads = root.join(A).join("uploads");
        let moved = root.join(A).join("uploads-moved");
        std::fs::rename(&uploads, &moved)?;
        std::fs::write(&uploads, b"in the way")?;
        let (ok, out) = client
            .run(
                "springfield-sis",
                Login::Key(&key),
                "-put 1002.jpg /incoming/idphotos/1002.jpg\nls -1 /incoming/idphotos\n",
            )
            .await?;
        std::fs::remove_file(&uploads)?;
        std::fs::rename(&moved, &uploads)?;
        assert!(ok, "{out}");
        // OpenSSH shows the status, not the server's message ("not stored, upload it again").
        assert!(out.contains("close remote: Failure"), "{out}");
        let listing = out
            .rsplit("sftp> ls -1 /incoming/idphotos")
            .next()
            .unwrap_or_default();
        assert!(!listing.contains("1002.jpg"), "nothing is held: {out}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(jobs(&app, &token_a, A).await?.len(), 4, "no job of it");
    }

    // 8. A disabled account is refused.
    let disabled = app
        .http
        .patch(app.url(&format!("/v1/districts/{A}/sftp-accounts/springfield-sis")))
        .bearer_auth(&token_a)
        .json(&json!({"disabled": true}))
        .send()
        .await?;
    assert_eq!(disabled.status(), 200);
    let (ok, out) = client
        .run("springfield-sis", Login::Key(&key), "ls\n")
        .await?;
    assert!(!ok, "a disabled account is refused: {out}");

    app.stop().await
}

/// Roster is down when a roster CSV is closed in `data/`: the client's transfer still succeeds,
/// the file is kept, and once roster is back it is imported exactly once.
#[tokio::test]
async fn a_roster_csv_sent_while_roster_is_down_is_imported_when_it_is_back() -> anyhow::Result<()>
{
    let mut app = app_with_sftp(Backend::Embedded, true).await?;
    let token = app.create_district(A, "Springfield").await?;
    let (status, body) = app.upload_roster(&token, A, ROSTER).await?;
    anyhow::ensure!(status == 200, "roster: {status}: {body}");
    let (client, _) = client_for(&app, &token).await?;
    let dir = client.dir.clone();
    create_account(
        &app,
        &token,
        A,
        json!({"username": "springfield-sis", "password": PASSWORD_A}),
    )
    .await?;
    tokio::fs::write(
        dir.join("roster.csv"),
        format!("{ROSTER}student,S1004,1004,Barbara,Liskov\n"),
    )
    .await?;

    app.stop_service("roster").await?;
    let (ok, out) = client
        .run(
            "springfield-sis",
            Login::Password(PASSWORD_A),
            "put roster.csv /incoming/data/roster.csv\n",
        )
        .await?;
    assert!(ok, "the transfer succeeds while roster is down: {out}");
    app.start_service("roster").await?;

    wait_for_person(&app, &token, "S1004").await?;
    // Imported once: the HTTP import first, then the one from SFTP, nothing twice.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let imports = app
        .get_json(&token, &format!("/v1/districts/{A}/roster/imports"))
        .await?;
    let items = imports["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "{imports}");
    assert!(items.iter().all(|i| i["state"] == "completed"), "{imports}");
    let people = app
        .get_json(&token, &format!("/v1/districts/{A}/people"))
        .await?;
    assert_eq!(
        people["items"].as_array().map(Vec::len),
        Some(4),
        "{people}"
    );
    app.stop().await
}
