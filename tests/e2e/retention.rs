//! Originals are deleted once their retention period is over (here 0 days: as soon as the job
//! ends), counted object by object in the store; the photos themselves (renditions) stay.

use std::time::Duration;

use pictureday_platform::config::RetentionArgs;
use pictureday_tests::{AppLayout, Backend, TestApp, stored_files};
use serde_json::{Value, json};

on_each_backend!(
    originals_are_deleted_when_their_retention_is_over,
    a_district_keeps_originals_for_its_own_period
);

async fn originals_are_deleted_when_their_retention_is_over(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn_with(
        backend,
        AppLayout {
            retention: RetentionArgs {
                originals_retention_days: Some(0),
                retention_check_secs: Some(1),
                ..RetentionArgs::default()
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
    // Three photos are kept, each one object holding its three sizes.
    assert_eq!(renditions(&files), 3, "{files:?}");
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

/// With the installation keeping originals 30 days, one district that chose 0 days has its
/// originals deleted as soon as its job ends; the other district's stay.
async fn a_district_keeps_originals_for_its_own_period(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn_with(
        backend,
        AppLayout {
            retention: RetentionArgs {
                originals_retention_days: Some(30),
                retention_check_secs: Some(1),
                ..RetentionArgs::default()
            },
            ..AppLayout::default()
        },
    )
    .await?;
    let springfield = app.create_district("springfield", "Springfield").await?;
    let shelbyville = app.create_district("shelbyville", "Shelbyville").await?;
    let http = reqwest::Client::new();
    let put = |token: &str, district: &str, body: Value| {
        http.put(app.url(&format!("/v1/districts/{district}/retention")))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    let defaults = app
        .get_json(&springfield, "/v1/districts/springfield/retention")
        .await?;
    assert_eq!(
        defaults,
        json!({"district": "springfield", "originals_retention_days": null,
               "default_days": 30, "effective_days": 30,
               "inactive_photos_retention_days": null, "inactive_photos_default_days": 365,
               "inactive_photos_effective_days": 365})
    );
    let too_long = put(
        &springfield,
        "springfield",
        json!({"originals_retention_days": 4000}),
    )
    .await?;
    assert_eq!(too_long.status(), 400);
    let not_yours = put(
        &shelbyville,
        "springfield",
        json!({"originals_retention_days": 0}),
    )
    .await?;
    assert_eq!(not_yours.status(), 404);
    let set = put(
        &springfield,
        "springfield",
        json!({"originals_retention_days": 0}),
    )
    .await?;
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await?;
    assert_eq!(set["effective_days"], 0, "{set}");
    assert_eq!(
        app.get_json(&shelbyville, "/v1/districts/shelbyville/retention")
            .await?["effective_days"],
        30
    );

    let mut jobs = Vec::new();
    for (token, district) in [(&springfield, "springfield"), (&shelbyville, "shelbyville")] {
        app.upload_numbered_roster(token, district, 2).await?;
        let job = app
            .import_numbered_photos(token, district, 2, (240, 300))
            .await?;
        let done = app.wait_for_job(token, district, &job).await?;
        assert_eq!(done["counts"]["applied"], 2, "{done}");
        jobs.push(format!("{district}/uploads/{job}/"));
    }
    let kept = |files: &[String]| files.iter().filter(|f| f.starts_with(&jobs[1])).count();
    let shelbyville_originals = kept(&stored_files(&app.storage_root())?);
    // The archive as uploaded, at least.
    assert!(shelbyville_originals >= 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let files = loop {
        let files = stored_files(&app.storage_root())?;
        if !files.iter().any(|f| f.starts_with(&jobs[0])) {
            break files;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "springfield's originals are still stored: {files:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Two rounds of the purge later, shelbyville's originals are all still there.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let files_after = stored_files(&app.storage_root())?;
    assert_eq!(kept(&files), shelbyville_originals, "{files:?}");
    assert_eq!(kept(&files_after), shelbyville_originals, "{files_after:?}");
    app.stop().await
}
