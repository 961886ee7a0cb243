//! The whole embedded default (`pictureday serve` with its own nats-server) killed outright,
//! again and again, on one data directory, in the middle of two districts' imports: after the
//! last restart every file ends in exactly one outcome and nothing is applied twice.

use std::path::Path;
use std::time::Duration;

use pictureday_tests::chaos::{NatsReaper, kill_embedded};
use pictureday_tests::{OPERATOR_TOKEN, ServiceProcess, TestClient};

const SERVER: &str = env!("CARGO_BIN_EXE_pictureday-under-test");
const DISTRICTS: [&str; 2] = ["north", "south"];
const PHOTOS: u32 = 120;
const KILLS: usize = 4;

/// Starts `pictureday serve` on `data`.
async fn serve(data: &Path, logs: &Path) -> anyhow::Result<ServiceProcess> {
    let env = vec![
        ("PICTUREDAY_DATA_DIR".to_owned(), data.display().to_string()),
        (
            "PICTUREDAY_OPERATOR_TOKEN".to_owned(),
            OPERATOR_TOKEN.to_owned(),
        ),
        ("PICTUREDAY_IMAGE_WORKERS".to_owned(), "2".to_owned()),
    ];
    ServiceProcess::start_with_args(SERVER, &["serve"], "pictureday", env, logs).await
}

#[tokio::test]
async fn repeated_kill_9_of_the_embedded_server_loses_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let _reaper = NatsReaper(&data);
    let mut server = serve(&data, dir.path()).await?;
    let mut client = TestClient::new(&server.base_url, OPERATOR_TOKEN);
    let mut jobs = Vec::new();
    for district in DISTRICTS {
        let token = client.create_district(district, district).await?;
        client
            .upload_numbered_roster(&token, district, PHOTOS)
            .await?;
        let job = client
            .import_numbered_photos(&token, district, PHOTOS, (320, 400))
            .await?;
        jobs.push((district, token, job));
    }
    for kill in 0..KILLS {
        // Each kill lands at another point of the work: the first almost at once.
        tokio::time::sleep(Duration::from_millis(300 + 400 * kill as u64)).await;
        kill_embedded(&mut server, &data)?;
        server = serve(&data, dir.path()).await?;
        client = TestClient::new(&server.base_url, OPERATOR_TOKEN);
    }
    for (district, token, job_id) in &jobs {
        let job = client
            .wait_for_job_within(token, district, job_id, Duration::from_secs(300))
            .await?;
        assert_eq!(job["state"], "finished", "{district}: {job}");
        for (name, expected) in [
            ("files", PHOTOS),
            ("matched", PHOTOS),
            ("processed", PHOTOS),
            ("applied", PHOTOS),
            ("unmatched", 0),
            ("rejected", 0),
        ] {
            assert_eq!(
                job["counts"][name].as_u64(),
                Some(u64::from(expected)),
                "{district} {name}: {job}"
            );
        }
        let log = client.log(token, district, job_id).await?;
        assert_eq!(log.len(), PHOTOS as usize, "{district}");
        assert!(
            log.iter().all(|row| row["outcome"] == "applied"),
            "{district}: a file applied twice shows as superseded or replaced: {log:?}"
        );
        // Every person has exactly the one photo this job gave them.
        let people = client
            .get_json(
                token,
                &format!("/v1/districts/{district}/people?limit=1000"),
            )
            .await?;
        let people = people["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(people.len(), PHOTOS as usize);
        for person in &people {
            let id = person["id"].as_str().unwrap_or_default();
            let versions = client
                .get_json(
                    token,
                    &format!("/v1/districts/{district}/people/{id}/photos"),
                )
                .await?;
            assert_eq!(
                versions.as_array().map(Vec::len),
                Some(1),
                "{district} {id}: {versions}"
            );
        }
    }
    server.terminate(Duration::from_secs(30)).await?;
    Ok(())
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path, megabytes: u32) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path)?;
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={megabytes}m,mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "mount of a tmpfs failed (the test needs root)"
        );
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// Fills what is left with a file; returns its path.
    fn fill(&self) -> anyhow::Result<std::path::PathBuf> {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler)?;
        let chunk = vec![0u8; 1 << 20];
        loop {
            if let Err(error) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
                anyhow::ensure!(
                    error.kind() == std::io::ErrorKind::StorageFull,
                    "filling the disk: {error}"
                );
                break;
            }
        }
        // Whatever fits in the last blocks too.
        for _ in 0..4096 {
            if file
                .write_all(&[0u8; 256])
                .and_then(|()| file.sync_all())
                .is_err()
            {
                break;
            }
        }
        Ok(filler)
    }
}

/// Keeps the disk full (whatever the server frees, the filler takes) until `stop` is set.
fn keep_full(
    filler: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::Write;
        let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(&filler) else {
            return;
        };
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            while file
                .write_all(&[0u8; 512])
                .and_then(|()| file.sync_all())
                .is_ok()
            {}
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// The embedded default on a disk that fills up while a job is processing: it refuses new work
/// with a clear `503`, says it is not ready, and once there is room again finishes the job it
/// had accepted with every photo applied.
#[tokio::test]
async fn a_full_disk_refuses_new_work_and_loses_nothing_accepted() -> anyhow::Result<()> {
    const ACCEPTED: u32 = 30;
    let dir = tempfile::tempdir()?;
    let disk = SmallDisk::mount(&dir.path().join("disk"), 48)?;
    let data = disk.path.join("data");
    let _reaper = NatsReaper(&data);
    let server = serve(&data, dir.path()).await?;
    let client = TestClient::new(&server.base_url, OPERATOR_TOKEN);
    let token = client.create_district("north", "North").await?;
    client
        .upload_numbered_roster(&token, "north", ACCEPTED + 5)
        .await?;
    let job_id = client
        .import_numbered_photos(&token, "north", ACCEPTED, (640, 800))
        .await?;
    let filler = disk.fill()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let keeper = keep_full(filler.clone(), stop.clone());

    // Not ready, saying why; a new upload is refused with a 503 that says to try later.
    let ready = client.http.get(client.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 503);
    let why = ready.text().await?;
    assert!(why.contains("unavailable"), "{why}");
    let (status, body) = client
        .import(
            &token,
            "north",
            reqwest::multipart::Form::new().part(
                "archive",
                pictureday_tests::file_part(
                    "more.zip",
                    pictureday_tests::zip_of(&[(
                        "31.jpg",
                        pictureday_tests::images::jpeg(pictureday_tests::images::photo(
                            640, 800, 31,
                        ))?,
                    )])?,
                ),
            ),
        )
        .await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    tokio::time::sleep(Duration::from_secs(5)).await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = keeper.join();
    std::fs::remove_file(&filler)?;
    let job = client
        .wait_for_job_within(&token, "north", &job_id, Duration::from_secs(180))
        .await?;
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(
        job["counts"]["applied"].as_u64(),
        Some(u64::from(ACCEPTED)),
        "{job}"
    );
    assert_eq!(job["counts"]["rejected"].as_u64(), Some(0), "{job}");
    // And it takes new work again.
    // As a client honouring `503` + `Retry-After` would: a database connection that the full disk
    // left in a broken transaction may answer "busy" until it is reopened (within 30 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let again = loop {
        match client
            .import_numbered_photos(&token, "north", 2, (320, 400))
            .await
        {
            Ok(job) => break job,
            Err(error)
                if error.to_string().contains("503") && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(error) => return Err(error),
        }
    };
    let job = client.wait_for_job(&token, "north", &again).await?;
    assert_eq!(job["counts"]["applied"].as_u64(), Some(2), "{job}");
    let ready = client.http.get(client.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 200);
    let mut server = server;
    server.terminate(Duration::from_secs(30)).await?;
    Ok(())
}
