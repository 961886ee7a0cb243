//! Image-processor instances share one durable consumer: each does part of the work and every
//! photo is processed and applied exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{Backend, TestApp, file_part, zip_of};
use reqwest::multipart::Form;
use serde_json::Value;

on_each_backend!(two_image_processors_share_the_work_exactly_once);

async fn two_image_processors_share_the_work_exactly_once(backend: Backend) -> anyhow::Result<()> {
    const PHOTOS: u32 = 40;
    let app = TestApp::spawn_with_image_processors(backend, 1).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    let mut roster = String::from("role,sis_id,student_number,first_name,last_name\n");
    for n in 0..PHOTOS {
        roster.push_str(&format!("student,S{n},{n},First{n},Last{n}\n"));
    }
    let (status, _) = app.upload_roster(&token, "springfield", &roster).await?;
    assert_eq!(status, 200);

    // Every processed and applied event the services publish, as they publish it.
    let nats = async_nats::connect(&app.nats_url).await?;
    let mut processed = nats
        .subscribe("pictureday.photo.processed.springfield.>")
        .await?;
    let mut applied = nats
        .subscribe("pictureday.photo.applied.springfield.>")
        .await?;

    let mut entries = Vec::new();
    for n in 0..PHOTOS {
        entries.push((format!("{n}.jpg"), jpeg(photo(1200, 1500, n))?));
    }
    let entries: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let (status, accepted) = app
        .import(
            &token,
            "springfield",
            Form::new().part("archive", file_part("batch.zip", zip_of(&entries)?)),
        )
        .await?;
    assert_eq!(status, 202, "{accepted}");
    let job_id = accepted["job_id"].as_str().unwrap_or_default().to_owned();
    let job = app.wait_for_job(&token, "springfield", &job_id).await?;
    assert_eq!(job["state"], "finished");
    assert_eq!(job["counts"]["applied"], PHOTOS);

    let mut by_instance: BTreeMap<String, u32> = BTreeMap::new();
    let mut processed_files = BTreeSet::new();
    for _ in 0..PHOTOS {
        let message = tokio::time::timeout(Duration::from_secs(5), processed.next()).await?;
        let event: Value =
            serde_json::from_slice(&message.ok_or_else(|| anyhow::anyhow!("ended"))?.payload)?;
        assert!(
            processed_files.insert(event["file"]["seq"].as_u64()),
            "processed twice: {event}"
        );
        *by_instance
            .entry(event["processed_by"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    let mut applied_files = BTreeSet::new();
    for _ in 0..PHOTOS {
        let message = tokio::time::timeout(Duration::from_secs(5), applied.next()).await?;
        let event: Value =
            serde_json::from_slice(&message.ok_or_else(|| anyhow::anyhow!("ended"))?.payload)?;
        assert!(
            applied_files.insert(event["file"]["seq"].as_u64()),
            "applied twice: {event}"
        );
        assert_eq!(event["outcome"], "applied");
    }
    // Nothing more arrives: no photo was done twice.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), processed.next())
            .await
            .is_err()
    );
    assert_eq!(processed_files.len() as u32, PHOTOS);
    assert_eq!(
        by_instance.keys().cloned().collect::<Vec<_>>(),
        ["extra-0", "main"]
    );
    assert!(by_instance.values().all(|&n| n > 0), "{by_instance:?}");

    let missing = app
        .get_json(
            &token,
            "/v1/districts/springfield/people?missing_photo=true",
        )
        .await?;
    assert_eq!(missing["items"], serde_json::json!([]));
    app.stop().await
}
