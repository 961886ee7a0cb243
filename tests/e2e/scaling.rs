//! Image-processor instances share one durable consumer: each does part of the work and every
//! photo is processed and applied exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use pictureday_tests::{Backend, TestApp};
use serde_json::Value;

on_each_backend!(two_image_processors_share_the_work_exactly_once);

async fn two_image_processors_share_the_work_exactly_once(backend: Backend) -> anyhow::Result<()> {
    const PHOTOS: u32 = 40;
    let app = TestApp::spawn_with_image_processors(backend, 1).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", PHOTOS)
        .await?;

    // Every processed and applied event the services publish, as they publish it.
    let nats = async_nats::connect(&app.nats_url).await?;
    let mut processed = nats
        .subscribe("pictureday.photo.processed.springfield.>")
        .await?;
    let mut applied = nats
        .subscribe("pictureday.photo.applied.springfield.>")
        .await?;

    let job_id = app
        .import_numbered_photos(&token, "springfield", PHOTOS, (1200, 1500))
        .await?;
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
