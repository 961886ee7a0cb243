//! Schools and the people who leave: photos turned off for a school or the whole district serve
//! the placeholder (saying why) and come back when turned on; a withdrawn student is not matched,
//! not missing, and shows the placeholder, and their photo is back when they return; past the
//! district's retention for them, their photos are purged and the purge recorded.

use std::time::Duration;

use pictureday_platform::config::RetentionArgs;
use pictureday_tests::{AppLayout, Backend, TestApp, images, zip_of};
use serde_json::{Value, json};

on_each_backend!(
    photos_are_turned_off_per_school_and_per_district,
    a_student_who_leaves_and_returns_keeps_their_photo,
    photos_of_people_inactive_past_retention_are_purged,
    a_photo_in_flight_for_someone_who_leaves_is_not_placed
);

const ROSTER: &str = "role,sis_id,student_number,first_name,last_name,school\n\
    student,S1,1001,Ada,North,North Elementary\n\
    student,S2,1002,Ben,South,South Middle\n\
    student,S3,1003,Cy,North,North Elementary\n";

/// A district with the three students above, Ada and Ben with photos; returns the token and
/// the person ids by SIS id.
async fn set_up(app: &TestApp) -> anyhow::Result<(String, Value)> {
    let token = app.create_district("springfield", "Springfield").await?;
    let (status, body) = app.upload_roster(&token, "springfield", ROSTER).await?;
    anyhow::ensure!(status == 200, "roster: {status}: {body}");
    let archive = zip_of(&[
        ("1001.jpg", images::jpeg(images::photo(240, 300, 1))?),
        ("1002.jpg", images::jpeg(images::photo(240, 300, 2))?),
    ])?;
    let job = app.import_archive(&token, "springfield", archive).await?;
    let done = app.wait_for_job(&token, "springfield", &job).await?;
    anyhow::ensure!(done["counts"]["applied"] == 2, "{done}");
    let mut ids = serde_json::Map::new();
    for sis in ["S1", "S2", "S3"] {
        let found = app
            .get_json(
                &token,
                &format!("/v1/districts/springfield/people?sis_id={sis}"),
            )
            .await?;
        ids.insert(sis.into(), found["items"][0]["id"].clone());
    }
    Ok((token, Value::Object(ids)))
}

/// The person's photo: `None` for the photo itself, else the placeholder's reason.
async fn placeholder(app: &TestApp, token: &str, person: &Value) -> anyhow::Result<Option<String>> {
    let person = person.as_str().unwrap_or_default();
    let response = app
        .get(
            token,
            &format!("/v1/districts/springfield/people/{person}/photo"),
        )
        .await?;
    anyhow::ensure!(response.status() == 200, "photo: {}", response.status());
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match (
        header("x-pictureday-placeholder"),
        header("x-pictureday-placeholder-reason"),
    ) {
        (None, None) => Ok(None),
        (Some(flag), Some(reason)) if flag == "true" => Ok(Some(reason)),
        other => anyhow::bail!("inconsistent placeholder headers: {other:?}"),
    }
}

async fn put(app: &TestApp, token: &str, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    let response = reqwest::Client::new()
        .put(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn photos_are_turned_off_per_school_and_per_district(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let (token, ids) = set_up(&app).await?;

    let schools = app
        .get_json(&token, "/v1/districts/springfield/schools")
        .await?;
    let names: Vec<(&str, u64, u64, bool)> = schools
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or_default(),
                        s["people"].as_u64().unwrap_or(99),
                        s["missing_photos"].as_u64().unwrap_or(99),
                        s["photos_enabled"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        names,
        [
            ("North Elementary", 2, 1, true),
            ("South Middle", 1, 0, true)
        ],
        "{schools}"
    );
    let north = schools[0]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(schools[0]["source"], "csv");

    assert_eq!(placeholder(&app, &token, &ids["S1"]).await?, None);
    assert_eq!(
        placeholder(&app, &token, &ids["S3"]).await?.as_deref(),
        Some("no-photo")
    );

    // The missing-photos report by school and role.
    let south = schools[1]["id"].as_str().unwrap_or_default().to_owned();
    for (query, rows) in [
        (
            format!("school={north}"),
            vec!["student,S3,1003,,Cy,North,North Elementary"],
        ),
        (format!("school={south}"), vec![]),
        ("role=staff".to_owned(), vec![]),
        (
            "role=student".to_owned(),
            vec!["student,S3,1003,,Cy,North,North Elementary"],
        ),
    ] {
        let report = app
            .get(
                &token,
                &format!("/v1/districts/springfield/reports/missing-photos.csv?{query}"),
            )
            .await?
            .text()
            .await?;
        let lines: Vec<&str> = report.lines().skip(1).collect();
        assert_eq!(lines, rows, "{query}: {report}");
    }

    // A viewer may look, not switch.
    let viewer = reqwest::Client::new()
        .post(app.url("/v1/districts/springfield/tokens"))
        .bearer_auth(&token)
        .json(&json!({"role": "viewer"}))
        .send()
        .await?
        .json::<Value>()
        .await?["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let school_path = format!("/v1/districts/springfield/schools/{north}");
    let (status, _) = put(
        &app,
        &viewer,
        &school_path,
        json!({"photos_enabled": false}),
    )
    .await?;
    assert_eq!(status, 403);
    let (status, body) = put(&app, &token, &school_path, json!({"photos_enabled": "no"})).await?;
    assert_eq!(status, 422, "{body}");
    let (status, _) = put(
        &app,
        &token,
        "/v1/districts/springfield/schools/no-such-school",
        json!({"photos_enabled": false}),
    )
    .await?;
    assert_eq!(status, 404);

    let (status, off) = put(&app, &token, &school_path, json!({"photos_enabled": false})).await?;
    assert_eq!(status, 200, "{off}");
    assert_eq!(off["photos_enabled"], false);
    assert!(off["photos_changed_at"].is_string(), "{off}");
    assert_eq!(
        placeholder(&app, &token, &ids["S1"]).await?.as_deref(),
        Some("school-photos-off")
    );
    // Ben is at the other school.
    assert_eq!(placeholder(&app, &token, &ids["S2"]).await?, None);
    // The history is withheld too; nothing was deleted.
    let ada = ids["S1"].as_str().unwrap_or_default();
    let versions = app
        .get_json(
            &viewer,
            &format!("/v1/districts/springfield/people/{ada}/photos"),
        )
        .await?;
    assert_eq!(versions.as_array().map(Vec::len), Some(1), "{versions}");
    let version = versions[0]["id"].as_str().unwrap_or_default();
    let old = app
        .get(
            &viewer,
            &format!("/v1/districts/springfield/people/{ada}/photos/{version}"),
        )
        .await?;
    assert_eq!(
        old.headers()
            .get("x-pictureday-placeholder-reason")
            .map(|v| v.as_bytes()),
        Some(&b"school-photos-off"[..])
    );

    let (status, on) = put(&app, &token, &school_path, json!({"photos_enabled": true})).await?;
    assert_eq!(status, 200, "{on}");
    assert_eq!(placeholder(&app, &token, &ids["S1"]).await?, None);

    // The whole district.
    let settings = "/v1/districts/springfield/photo-settings";
    assert_eq!(
        app.get_json(&viewer, settings).await?["photos_enabled"],
        true
    );
    let (status, _) = put(&app, &viewer, settings, json!({"photos_enabled": false})).await?;
    assert_eq!(status, 403);
    let (status, off) = put(&app, &token, settings, json!({"photos_enabled": false})).await?;
    assert_eq!(status, 200, "{off}");
    for sis in ["S1", "S2"] {
        assert_eq!(
            placeholder(&app, &token, &ids[sis]).await?.as_deref(),
            Some("district-photos-off")
        );
    }
    let (status, _) = put(&app, &token, settings, json!({"photos_enabled": true})).await?;
    assert_eq!(status, 200);
    assert_eq!(placeholder(&app, &token, &ids["S2"]).await?, None);

    // Another district's token sees none of it.
    let other = app.create_district("shelbyville", "Shelbyville").await?;
    let response = app.get(&other, &school_path).await?;
    assert_eq!(response.status(), 404);
    app.stop().await
}

async fn a_student_who_leaves_and_returns_keeps_their_photo(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let (token, ids) = set_up(&app).await?;
    let ada = ids["S1"].as_str().unwrap_or_default().to_owned();
    let before = app
        .get_json(&token, &format!("/v1/districts/springfield/people/{ada}"))
        .await?;
    assert_eq!(before["status"], "active");
    let photo = before["photo_id"].clone();
    assert!(photo.is_string(), "{before}");

    // Ada and Cy (who has no photo) withdraw.
    let withdrawn = "role,sis_id,student_number,first_name,last_name,school,status\n\
        student,S1,1001,Ada,North,North Elementary,inactive\n\
        student,S2,1002,Ben,South,South Middle,active\n\
        student,S3,1003,Cy,North,North Elementary,Inactive\n";
    let (status, body) = app.upload_roster(&token, "springfield", withdrawn).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            &body["deactivated"],
            &body["reactivated"],
            &body["unchanged"]
        ),
        (&json!(2), &json!(0), &json!(1)),
        "{body}"
    );
    let left = app
        .get_json(&token, &format!("/v1/districts/springfield/people/{ada}"))
        .await?;
    assert_eq!(left["status"], "inactive", "{left}");
    assert!(left["inactive_since"].is_string(), "{left}");
    assert_eq!(left["photo_id"], photo, "the photo is kept");
    assert_eq!(
        placeholder(&app, &token, &ids["S1"]).await?.as_deref(),
        Some("person-inactive")
    );
    // Not missing: Cy left; no one active lacks a photo.
    let missing = app
        .get_json(
            &token,
            "/v1/districts/springfield/people?missing_photo=true",
        )
        .await?;
    assert_eq!(missing["items"], json!([]), "{missing}");
    let report = app
        .get(
            &token,
            "/v1/districts/springfield/reports/missing-photos.csv",
        )
        .await?
        .text()
        .await?;
    assert_eq!(report.lines().count(), 1, "only the header: {report}");
    let inactive = app
        .get_json(&token, "/v1/districts/springfield/people?status=inactive")
        .await?;
    assert_eq!(
        inactive["items"].as_array().map(Vec::len),
        Some(2),
        "{inactive}"
    );
    let north = app
        .get_json(&token, "/v1/districts/springfield/schools")
        .await?;
    assert_eq!(north[0]["people"], 0, "{north}");

    // A new photo of Ada is not matched, and says why.
    let archive = zip_of(&[("1001.jpg", images::jpeg(images::photo(240, 300, 7))?)])?;
    let job = app.import_archive(&token, "springfield", archive).await?;
    let done = app.wait_for_job(&token, "springfield", &job).await?;
    assert_eq!(done["counts"]["unmatched"], 1, "{done}");
    let log = app.log(&token, "springfield", &job).await?;
    let reason = log[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("Ada North")
            && reason.contains("inactive since")
            && reason.contains("no longer active"),
        "{reason}"
    );

    // She comes back: her photo is shown again, the same one.
    let (status, body) = app.upload_roster(&token, "springfield", ROSTER).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reactivated"], 2, "{body}");
    let back = app
        .get_json(&token, &format!("/v1/districts/springfield/people/{ada}"))
        .await?;
    assert_eq!(back["status"], "active", "{back}");
    assert_eq!(back["inactive_since"], Value::Null);
    assert_eq!(back["photo_id"], photo);
    assert_eq!(back["id"], ids["S1"], "the same person");
    assert_eq!(placeholder(&app, &token, &ids["S1"]).await?, None);
    app.stop().await
}

async fn photos_of_people_inactive_past_retention_are_purged(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn_with(
        backend,
        AppLayout {
            retention: RetentionArgs {
                retention_check_secs: Some(1),
                ..RetentionArgs::default()
            },
            ..AppLayout::default()
        },
    )
    .await?;
    let (token, ids) = set_up(&app).await?;
    let (status, set) = put(
        &app,
        &token,
        "/v1/districts/springfield/retention",
        json!({"inactive_photos_retention_days": 0}),
    )
    .await?;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["inactive_photos_effective_days"], 0, "{set}");
    assert_eq!(set["inactive_photos_default_days"], 365, "{set}");
    // Ben's district-mate Ada leaves; Ben stays.
    let withdrawn = "role,sis_id,student_number,first_name,last_name,school,status\n\
        student,S1,1001,Ada,North,North Elementary,inactive\n";
    let (status, body) = app.upload_roster(&token, "springfield", withdrawn).await?;
    assert_eq!(status, 200, "{body}");
    let ada = ids["S1"].as_str().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let purges = loop {
        let purges = app
            .get_json(&token, "/v1/districts/springfield/purges")
            .await?;
        if purges["items"][0]["purged_at"].is_string() {
            break purges;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no purge: {purges}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let items = purges["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{purges}");
    assert_eq!(items[0]["person_id"], ids["S1"]);
    assert_eq!(items[0]["photos_deleted"], 1);
    assert_eq!(items[0]["renditions_deleted"], 3);
    assert!(
        items[0]["purged_by"]
            .as_str()
            .is_some_and(|by| by.starts_with("retention (inactive since ")),
        "{purges}"
    );
    let versions = app
        .get_json(
            &token,
            &format!("/v1/districts/springfield/people/{ada}/photos"),
        )
        .await?;
    assert_eq!(versions, json!([]));
    // Ben keeps his.
    assert_eq!(placeholder(&app, &token, &ids["S2"]).await?, None);
    app.stop().await
}

const IMAGE_PROCESSOR: &str = env!("CARGO_BIN_EXE_image-processor-under-test");

/// A person who leaves while their photo is being processed does not get it, as a file naming
/// them after they left is not matched: the file is rejected, saying why and what to do.
async fn a_photo_in_flight_for_someone_who_leaves_is_not_placed(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn_with(
        backend,
        AppLayout {
            without_image_processor: true,
            ..AppLayout::default()
        },
    )
    .await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 3).await?;
    let job_id = app
        .import_numbered_photos(&token, "springfield", 3, (320, 400))
        .await?;
    let path = format!("/v1/districts/springfield/jobs/{job_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.get_json(&token, &path).await?["counts"]["matched"] != 3 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the files were not matched"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Matched, not yet processed: student 1 leaves.
    let (status, body) = app
        .upload_roster(
            &token,
            "springfield",
            "role,sis_id,student_number,first_name,last_name,status\n\
             student,S0,0,First0,Last0,active\n\
             student,S1,1,First1,Last1,inactive\n\
             student,S2,2,First2,Last2,active\n",
        )
        .await?;
    anyhow::ensure!(status == 200, "roster: {status}: {body}");
    let mut processor = app
        .spawn_image_processor(IMAGE_PROCESSOR, "image-processor-1")
        .await?;
    let job = app.wait_for_job(&token, "springfield", &job_id).await?;
    processor.terminate(Duration::from_secs(10)).await?;
    assert_eq!(job["state"], "finished_with_errors", "{job}");
    assert_eq!(job["counts"]["applied"], 2, "{job}");
    assert_eq!(job["counts"]["rejected"], 1, "{job}");
    let log = app.log(&token, "springfield", &job_id).await?;
    let row = log
        .iter()
        .find(|r| r["file_name"] == "1.jpg")
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["outcome"], "rejected", "{row}");
    let reason = row["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("First1 Last1 (inactive since ")
            && reason.contains("left the roster while the photo was processed"),
        "{reason}"
    );
    let people = app
        .get_json(
            &token,
            "/v1/districts/springfield/people?sis_id=S1&status=inactive",
        )
        .await?;
    let person = people["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let versions = app
        .get_json(
            &token,
            &format!("/v1/districts/springfield/people/{person}/photos"),
        )
        .await?;
    let count = versions
        .as_array()
        .or(versions["items"].as_array())
        .map_or(usize::MAX, Vec::len);
    assert_eq!(count, 0, "no photo on someone who left: {versions}");
    app.stop().await
}
