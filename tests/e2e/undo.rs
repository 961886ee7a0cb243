//! Undoing a job: everyone whose photo came from it gets back the photo they had before (or
//! none), a person whose photo changed since is left alone and listed with the reason, the undo
//! is recorded and announced, and a job is undone once.

use pictureday_contract::DistrictId;
use pictureday_contract::events::JobUndone;
use pictureday_contract::subjects::{STATUS_STREAM, job_undone_subject};
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{AppLayout, Backend, TestApp, zip_of};
use serde_json::{Value, json};

on_each_backend!(undoing_a_job_puts_back_earlier_photos_and_leaves_changed_ones);

const DISTRICT: &str = "springfield";

const ROSTER: &str = "role,sis_id,student_number,first_name,last_name\n\
student,S1001,1001,Ada,Lovelace\n\
student,S1002,1002,Grace,Hopper\n\
student,S1003,1003,Alan,Turing\n";

/// Imports `<n>.jpg` for each number (each picture distinct by `seed`); waits for the job and
/// returns its id.
async fn import(app: &TestApp, token: &str, numbers: &[u32], seed: u32) -> anyhow::Result<String> {
    let entries = numbers
        .iter()
        .map(|&n| Ok((format!("{n}.jpg"), jpeg(photo(400, 500, n + seed))?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let entries: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.clone()))
        .collect();
    let job = app
        .import_archive(token, DISTRICT, zip_of(&entries)?)
        .await?;
    let done = app.wait_for_job(token, DISTRICT, &job).await?;
    anyhow::ensure!(done["state"] == "finished", "job {job}: {done}");
    Ok(job)
}

async fn person(app: &TestApp, token: &str, sis_id: &str) -> anyhow::Result<Value> {
    let people = app
        .get_json(
            token,
            &format!("/v1/districts/{DISTRICT}/people?sis_id={sis_id}"),
        )
        .await?;
    Ok(people["items"][0].clone())
}

async fn undo(app: &TestApp, token: &str, job: &str) -> anyhow::Result<(u16, Value)> {
    let response = app
        .http
        .post(app.url(&format!("/v1/districts/{DISTRICT}/jobs/{job}/undo")))
        .bearer_auth(token)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

async fn undoing_a_job_puts_back_earlier_photos_and_leaves_changed_ones(
    backend: Backend,
) -> anyhow::Result<()> {
    // On PostgreSQL and S3 the services run apart behind the gateway, as deployed: the new
    // photo goes to ingest, the rest to roster, and they talk over NATS.
    let app = TestApp::spawn_with(
        backend,
        AppLayout {
            behind_gateway: backend == Backend::PostgresS3,
            ..AppLayout::default()
        },
    )
    .await?;
    let token = app.create_district(DISTRICT, "Springfield USD").await?;
    let (status, loaded) = app.upload_roster(&token, DISTRICT, ROSTER).await?;
    anyhow::ensure!(status == 200, "roster: {status}: {loaded}");

    // Alan has a photo before job 1; job 1 gives Ada and Grace their first and replaces Alan's;
    // job 2, later, replaces Grace's.
    let job0 = import(&app, &token, &[1003], 0).await?;
    let alan_before = person(&app, &token, "S1003").await?["photo_id"].clone();
    let job1 = import(&app, &token, &[1001, 1002, 1003], 10).await?;
    let ada = person(&app, &token, "S1001").await?;
    let grace_job1 = person(&app, &token, "S1002").await?["photo_id"].clone();
    let alan_job1 = person(&app, &token, "S1003").await?["photo_id"].clone();
    let job2 = import(&app, &token, &[1002], 20).await?;
    let grace = person(&app, &token, "S1002").await?;
    assert_ne!(grace["photo_id"], grace_job1);
    assert_ne!(job0, job1);

    // A viewer may not undo; a job the district does not have is not found.
    let viewer: Value = app
        .http
        .post(app.url(&format!("/v1/districts/{DISTRICT}/tokens")))
        .bearer_auth(&app.operator_token)
        .json(&json!({ "role": "viewer" }))
        .send()
        .await?
        .json()
        .await?;
    let viewer = viewer["token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(undo(&app, &viewer, &job1).await?.0, 403);
    let unknown = "01900000-0000-7000-8000-000000000000";
    assert_eq!(undo(&app, &token, unknown).await?.0, 404);

    let (status, undone) = undo(&app, &token, &job1).await?;
    assert_eq!(status, 200, "{undone}");
    assert_eq!(undone["job_id"], job1.as_str());
    assert_eq!(
        undone["counts"],
        json!({ "restored": 1, "cleared": 1, "left_alone": 1 })
    );
    assert_eq!(
        undone["restored"],
        json!([{ "person_id": person(&app, &token, "S1003").await?["id"],
                 "photo_id": alan_job1, "restored_photo_id": alan_before }])
    );
    assert_eq!(
        undone["cleared"],
        json!([{ "person_id": ada["id"], "photo_id": ada["photo_id"] }])
    );
    assert_eq!(
        undone["left_alone"],
        json!([{ "person_id": grace["id"], "photo_id": grace_job1,
                 "current_photo_id": grace["photo_id"],
                 "reason": format!("their photo was replaced since by job {job2} (1002.jpg)") }])
    );
    assert!(
        undone["undone_by"]
            .as_str()
            .is_some_and(|by| by.starts_with("tok_")),
        "{undone}"
    );

    // What the people have now: Ada none, Alan his earlier photo, Grace job 2's.
    let ada_now = person(&app, &token, "S1001").await?;
    assert_eq!(
        (ada_now["has_photo"].clone(), ada_now["photo_id"].clone()),
        (json!(false), Value::Null)
    );
    assert_eq!(
        person(&app, &token, "S1003").await?["photo_id"],
        alan_before
    );
    assert_eq!(
        person(&app, &token, "S1002").await?["photo_id"],
        grace["photo_id"]
    );
    // Ada's photo from job 1 stays in her history, not current.
    let ada_id = ada["id"].as_str().unwrap_or_default();
    let history = app
        .get_json(
            &token,
            &format!("/v1/districts/{DISTRICT}/people/{ada_id}/photos"),
        )
        .await?;
    assert_eq!(
        history,
        json!([{ "id": ada["photo_id"], "current": false, "job_id": job1,
                 "file_name": "1001.jpg", "outcome": "applied", "previous_photo_id": null,
                 "created_at": history[0]["created_at"] }])
    );

    // Once only: the second undo is refused with the first one's record, which is also read.
    let (status, again) = undo(&app, &token, &job1).await?;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "conflict");
    assert_eq!(again["undo"], undone);
    let record = app
        .get_json(
            &viewer,
            &format!("/v1/districts/{DISTRICT}/jobs/{job1}/undo"),
        )
        .await?;
    assert_eq!(record, undone);
    let never = app
        .get(
            &token,
            &format!("/v1/districts/{DISTRICT}/jobs/{job2}/undo"),
        )
        .await?;
    assert_eq!(never.status(), 404);

    // Announced on the status stream.
    let stream = app.bus.js.get_stream(STATUS_STREAM).await?;
    let subject = job_undone_subject(&DistrictId::parse(DISTRICT)?, &job1);
    let message = stream.get_last_raw_message_by_subject(&subject).await?;
    let event: JobUndone = serde_json::from_slice(&message.payload)?;
    assert_eq!(
        (
            event.restored,
            event.cleared,
            event.left_alone,
            event.job_id.as_str()
        ),
        (1, 1, 1, job1.as_str())
    );

    // And shown on the job itself, once reporting has it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let shown = loop {
        let job = app
            .get_json(&viewer, &format!("/v1/districts/{DISTRICT}/jobs/{job1}"))
            .await?;
        if !job["undo"].is_null() {
            break job["undo"].clone();
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the job does not show its undo: {job}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        (&shown["restored"], &shown["cleared"], &shown["left_alone"]),
        (&json!(1), &json!(1), &json!(1)),
        "{shown}"
    );
    assert_eq!(shown["undone_by"], undone["undone_by"], "{shown} {undone}");
    let other = app
        .get_json(&viewer, &format!("/v1/districts/{DISTRICT}/jobs/{job2}"))
        .await?;
    assert!(other.get("undo").is_none(), "{other}");

    app.stop().await
}
