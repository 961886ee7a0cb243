//! The whole embedded default (`pictureday serve` with its own nats-server) killed outright,
//! again and again, on one data directory, in the middle of two districts' imports: after the
//! last restart every file ends in exactly one outcome and nothing is applied twice.

use std::path::Path;
use std::time::Duration;

use pictureday_tests::chaos::kill_embedded;
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
