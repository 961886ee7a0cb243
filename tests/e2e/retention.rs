//! Originals are deleted once their retention period is over (here 0 days: as soon as the job
//! ends), counted object by object in the store; the photos themselves (renditions) stay.

use std::time::Duration;

use pictureday_platform::config::RetentionArgs;
use pictureday_tests::{AppLayout, Backend, TestApp, stored_files};

on_each_backend!(originals_are_deleted_when_their_retention_is_over);

async fn originals_are_deleted_when_their_retention_is_over(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn_with(
        backend,
        AppLayout {
            retention: RetentionArgs {
                originals_retention_days: Some(0),
                retention_check_secs: Some(1),
            },
            ..AppLayout::default()
        },
    )
    .await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 3).await?;
    let job = app
        .import_numbered_photos(&token, "springfield", 3, (240, 300))
        .await?;
    let done = app.wait_for_job(&token, "springfield", &job).await?;
    assert_eq!(done["counts"]["applied"], 3, "{done}");

    let uploads = format!("springfield/uploads/{job}/");
    let renditions = |files: &[String]| {
        files
            .iter()
            .filter(|f| f.starts_with("springfield/photos/"))
            .count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let files = loop {
        let files = stored_files(&app.storage_root())?;
        if !files.iter().any(|f| f.starts_with(&uploads)) {
            break files;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the originals are still stored: {files:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        files
            .iter()
            .filter(|f| f.starts_with("springfield/uploads/"))
            .count(),
        0,
        "{files:?}"
    );
    // Three photos, each in three sizes, are kept.
    assert_eq!(renditions(&files), 9, "{files:?}");
    let people = app
        .get_json(&token, "/v1/districts/springfield/people?sis_id=S1")
        .await?;
    let person = people["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let photo = app
        .get(
            &token,
            &format!("/v1/districts/springfield/people/{person}/photo"),
        )
        .await?;
    assert_eq!(photo.status(), 200);
    assert!(photo.headers().get("x-pictureday-placeholder").is_none());
    app.stop().await
}
