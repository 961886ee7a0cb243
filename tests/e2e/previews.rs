//! Look before you apply, and say what to replace: a preview says what would happen to every
//! file and changes no one's photo; applying it does exactly that; replace policies skip people
//! with the reason; an applied or expired preview is refused.

use std::time::Duration;

use futures::StreamExt;
use pictureday_platform::config::RetentionArgs;
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{AppLayout, Backend, TestApp, file_part, stored_files, zip_of};
use reqwest::multipart::Form;
use serde_json::{Value, json};

on_each_backend!(
    a_preview_changes_nothing_and_applying_it_does_exactly_that,
    replace_policies_skip_people_with_the_reason,
    a_preview_expires_and_one_with_nothing_to_apply_finishes
);

const DISTRICT: &str = "springfield";

const ROSTER: &str = "role,sis_id,student_number,first_name,last_name\n\
student,S1001,1001,Ada,Lovelace\n\
student,S1002,1002,Grace,Hopper\n\
student,S1003,1003,Alan,Turing\n\
student,S1004,1004,Edsger,Dijkstra\n";

async fn set_up(layout: AppLayout, backend: Backend) -> anyhow::Result<(TestApp, String)> {
    let app = TestApp::spawn_with(backend, layout).await?;
    let token = app.create_district(DISTRICT, "Springfield USD").await?;
    let (status, loaded) = app.upload_roster(&token, DISTRICT, ROSTER).await?;
    anyhow::ensure!(status == 200, "roster: {status}: {loaded}");
    Ok((app, token))
}

/// A zip of photos named `<student number>.jpg`, each picture distinct.
fn photos(numbers: &[u32]) -> anyhow::Result<Vec<u8>> {
    let entries = numbers
        .iter()
        .map(|&n| Ok((format!("{n}.jpg"), jpeg(photo(400, 500, n))?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let entries: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.clone()))
        .collect();
    zip_of(&entries)
}

/// Posts an import with `query` (`mode=preview&replace=…`); returns the job id.
async fn import(
    app: &TestApp,
    token: &str,
    query: &str,
    numbers: &[u32],
) -> anyhow::Result<String> {
    let response = app
        .http
        .post(app.url(&format!("/v1/districts/{DISTRICT}/imports?{query}")))
        .bearer_auth(token)
        .multipart(Form::new().part("archive", file_part("photos.zip", photos(numbers)?)))
        .send()
        .await?;
    let status = response.status();
    let accepted: Value = response.json().await?;
    anyhow::ensure!(status == 202, "import ?{query}: {status}: {accepted}");
    accepted["job_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no job id: {accepted}"))
}

/// Waits until an applied preview's report has every final outcome (the job leaves
/// `previewed`, which `wait_for_job` takes for final).
async fn wait_until_applied(app: &TestApp, token: &str, job: &str) -> anyhow::Result<Value> {
    let path = format!("/v1/districts/{DISTRICT}/jobs/{job}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = app.get_json(token, &path).await?;
        if status["state"] != "previewed" {
            return app.wait_for_job(token, DISTRICT, job).await;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "job {job} stayed previewed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST …/jobs/{job}/apply`: the status and the body.
async fn apply(app: &TestApp, token: &str, job: &str) -> anyhow::Result<(u16, Value)> {
    let response = app
        .http
        .post(app.url(&format!("/v1/districts/{DISTRICT}/jobs/{job}/apply")))
        .bearer_auth(token)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

/// The log as (file name, outcome, reason).
async fn log(
    app: &TestApp,
    token: &str,
    job: &str,
) -> anyhow::Result<Vec<(String, String, String)>> {
    Ok(app
        .log(token, DISTRICT, job)
        .await?
        .iter()
        .map(|row| {
            let text = |key: &str| row[key].as_str().unwrap_or_default().to_owned();
            (text("file_name"), text("outcome"), text("reason"))
        })
        .collect())
}

fn row(file: &str, outcome: &str, reason: &str) -> (String, String, String) {
    (file.to_owned(), outcome.to_owned(), reason.to_owned())
}

/// The counts that say where every file ended.
fn outcomes(job: &Value) -> [u64; 7] {
    [
        "files",
        "matched",
        "unmatched",
        "processed",
        "applied",
        "skipped",
        "previewed",
    ]
    .map(|k| job["counts"][k].as_u64().unwrap_or(u64::MAX))
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

/// The person's photo versions, newest upload first.
async fn versions(app: &TestApp, token: &str, person: &Value) -> anyhow::Result<Vec<Value>> {
    let id = person["id"].as_str().unwrap_or_default();
    let versions = app
        .get_json(
            token,
            &format!("/v1/districts/{DISTRICT}/people/{id}/photos"),
        )
        .await?;
    Ok(versions.as_array().cloned().unwrap_or_default())
}

/// The date a person's current photo was stored, as notes name it.
async fn current_photo_date(app: &TestApp, token: &str, person: &Value) -> anyhow::Result<String> {
    let current = versions(app, token, person)
        .await?
        .into_iter()
        .find(|v| v["current"] == true)
        .ok_or_else(|| anyhow::anyhow!("no current photo: {person}"))?;
    Ok(current["created_at"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(10)
        .collect())
}

async fn a_preview_changes_nothing_and_applying_it_does_exactly_that(
    backend: Backend,
) -> anyhow::Result<()> {
    // Behind the gateway: applying is roster's, under a path the gateway otherwise sends to
    // reporting.
    let layout = AppLayout {
        behind_gateway: true,
        ..AppLayout::default()
    };
    let (app, token) = set_up(layout, backend).await?;
    let first = import(&app, &token, "", &[1001]).await?;
    app.wait_for_job(&token, DISTRICT, &first).await?;
    let ada_before = person(&app, &token, "S1001").await?;
    let ada_photo = ada_before["photo_id"].clone();
    let ada_date = current_photo_date(&app, &token, &ada_before).await?;

    let nats = pictureday_platform::nats_client::NatsAddress::parse(&app.nats_url)
        .connect("test")
        .await?;
    let mut statuses = nats
        .subscribe(format!("pictureday.job.status.{DISTRICT}.>"))
        .await?;

    // The preview: Ada has a photo, Grace none, and 9999 is no one.
    let preview = import(&app, &token, "mode=preview", &[1001, 1002, 9999]).await?;
    let job = app.wait_for_job(&token, DISTRICT, &preview).await?;
    assert_eq!(job["state"], "previewed", "{job}");
    assert_eq!(
        job["options"],
        json!({ "mode": "preview", "replace": "always" })
    );
    assert_eq!(outcomes(&job), [3, 2, 1, 2, 0, 0, 2]);
    let previewed_log = log(&app, &token, &preview).await?;
    assert_eq!(
        previewed_log[..2],
        [
            row(
                "1001.jpg",
                "previewed",
                &format!("would replace the current photo from 1001.jpg (job {first}, {ada_date})")
            ),
            row(
                "1002.jpg",
                "previewed",
                "would become Grace Hopper's photo (none yet)"
            ),
        ]
    );
    let (unmatched_name, unmatched_outcome, unmatched_reason) = previewed_log[2].clone();
    assert_eq!(
        (unmatched_name.as_str(), unmatched_outcome.as_str()),
        ("9999.jpg", "unmatched")
    );
    assert!(unmatched_reason.contains("9999"), "{unmatched_reason}");

    // No one's photo changed; the previewed photo is stored, not current.
    let ada = person(&app, &token, "S1001").await?;
    assert_eq!(ada["photo_id"], ada_photo);
    let grace = person(&app, &token, "S1002").await?;
    assert_eq!(grace["has_photo"], false, "{grace}");
    let ada_versions = versions(&app, &token, &ada).await?;
    assert_eq!(ada_versions.len(), 2);
    assert_eq!(
        (&ada_versions[0]["outcome"], &ada_versions[0]["current"]),
        (&json!("previewed"), &json!(false))
    );
    assert_eq!(ada_versions[0]["previous_photo_id"], ada_photo);

    // Dashboards see the preview and its options.
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = statuses.next().await {
            let status: Value = serde_json::from_slice(&message.payload)?;
            if status["job_id"] == preview.as_str() && status["state"] == "previewed" {
                assert_eq!(status["options"]["mode"], "preview");
                assert_eq!(status["counts"]["previewed"], 2);
                return Ok::<_, anyhow::Error>(());
            }
        }
        anyhow::bail!("status subscription ended")
    })
    .await??;

    // Only the district's own preview can be applied.
    let other = app.create_district("shelbyville", "Shelbyville").await?;
    let (status, body) = apply(&app, &other, &preview).await?;
    assert_eq!(status, 404, "{body}");
    let (status, body) = apply(&app, &token, "0196ffff-0000-7000-8000-000000000000").await?;
    assert_eq!(status, 404, "{body}");
    let (status, body) = apply(&app, &token, &first).await?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    assert_eq!(
        body["error"]["message"],
        "the job is not a preview (it was imported with mode=apply)"
    );

    // Applying places exactly what was previewed.
    let (status, applied) = apply(&app, &token, &preview).await?;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["photos"], 2);
    assert_eq!(applied["replace"], "always");
    assert_eq!(
        applied["counts"],
        json!({ "applied": 1, "replaced": 1, "superseded": 0, "skipped": 0 })
    );
    let job = wait_until_applied(&app, &token, &preview).await?;
    assert_eq!(job["state"], "finished_with_errors", "{job}");
    assert_eq!(outcomes(&job), [3, 2, 1, 2, 2, 0, 0]);
    let final_log = app.log(&token, DISTRICT, &preview).await?;
    assert_eq!(
        log(&app, &token, &preview).await?,
        [
            row(
                "1001.jpg",
                "replaced",
                "replaced the person's previous photo, which is kept as an older version"
            ),
            row("1002.jpg", "applied", ""),
            row("9999.jpg", "unmatched", &unmatched_reason),
        ]
    );
    let ada = person(&app, &token, "S1001").await?;
    assert_eq!(ada["photo_id"], final_log[0]["photo_id"]);
    let grace = person(&app, &token, "S1002").await?;
    assert_eq!(grace["photo_id"], final_log[1]["photo_id"]);
    let ada_versions = versions(&app, &token, &ada).await?;
    assert_eq!(
        (&ada_versions[0]["outcome"], &ada_versions[0]["current"]),
        (&json!("replaced"), &json!(true))
    );
    assert_eq!(ada_versions[0]["previous_photo_id"], ada_photo);

    // Once is enough.
    let (status, body) = apply(&app, &token, &preview).await?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"]["message"],
        "the preview has already been applied"
    );
    app.stop().await
}

async fn replace_policies_skip_people_with_the_reason(backend: Backend) -> anyhow::Result<()> {
    let (app, token) = set_up(AppLayout::default(), backend).await?;
    let first = import(&app, &token, "", &[1001, 1003]).await?;
    app.wait_for_job(&token, DISTRICT, &first).await?;
    let ada = person(&app, &token, "S1001").await?;
    let ada_date = current_photo_date(&app, &token, &ada).await?;
    let alan = person(&app, &token, "S1003").await?;

    // missing_only: Ada keeps hers; Grace gets one.
    let missing = import(&app, &token, "replace=missing_only", &[1001, 1002]).await?;
    let job = app.wait_for_job(&token, DISTRICT, &missing).await?;
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(
        job["options"],
        json!({ "mode": "apply", "replace": "missing_only" })
    );
    assert_eq!(outcomes(&job), [2, 2, 0, 2, 1, 1, 0]);
    let ada_kept = format!(
        "Ada Lovelace already has a photo (from 1001.jpg, {ada_date}); replace=missing_only keeps it"
    );
    assert_eq!(
        log(&app, &token, &missing).await?,
        [
            row("1001.jpg", "skipped", &ada_kept),
            row("1002.jpg", "applied", ""),
        ]
    );
    assert_eq!(
        person(&app, &token, "S1001").await?["photo_id"],
        ada["photo_id"]
    );
    assert_eq!(person(&app, &token, "S1002").await?["has_photo"], true);
    // The skipped photo is kept as a version, never current.
    let ada_versions = versions(&app, &token, &ada).await?;
    assert_eq!(ada_versions.len(), 2);
    assert_eq!(
        (&ada_versions[0]["outcome"], &ada_versions[0]["current"]),
        (&json!("skipped"), &json!(false))
    );
    assert_eq!(ada_versions[0]["previous_photo_id"], ada["photo_id"]);

    // existing_only: Alan's retake replaces his photo; Edsger has none, so his is skipped.
    let retakes = import(&app, &token, "replace=existing_only", &[1003, 1004]).await?;
    let job = app.wait_for_job(&token, DISTRICT, &retakes).await?;
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(outcomes(&job), [2, 2, 0, 2, 1, 1, 0]);
    let retake_log = app.log(&token, DISTRICT, &retakes).await?;
    assert_eq!(
        log(&app, &token, &retakes).await?,
        [
            row(
                "1003.jpg",
                "replaced",
                "replaced the person's previous photo, which is kept as an older version"
            ),
            row(
                "1004.jpg",
                "skipped",
                "Edsger Dijkstra has no photo yet; replace=existing_only only replaces existing photos"
            ),
        ]
    );
    let alan_now = person(&app, &token, "S1003").await?;
    assert_eq!(alan_now["photo_id"], retake_log[0]["photo_id"]);
    assert_ne!(alan_now["photo_id"], alan["photo_id"]);
    assert_eq!(person(&app, &token, "S1004").await?["has_photo"], false);

    // A preview with a policy says who would be skipped; two applies at once: one wins.
    let preview = import(
        &app,
        &token,
        "mode=preview&replace=missing_only",
        &[1001, 1004],
    )
    .await?;
    let job = app.wait_for_job(&token, DISTRICT, &preview).await?;
    assert_eq!(job["state"], "previewed", "{job}");
    assert_eq!(
        job["options"],
        json!({ "mode": "preview", "replace": "missing_only" })
    );
    assert_eq!(
        log(&app, &token, &preview).await?,
        [
            row(
                "1001.jpg",
                "previewed",
                &format!("would be skipped: {ada_kept}")
            ),
            row(
                "1004.jpg",
                "previewed",
                "would become Edsger Dijkstra's photo (none yet)"
            ),
        ]
    );
    let (one, two) = tokio::join!(apply(&app, &token, &preview), apply(&app, &token, &preview));
    let mut answers = [one?, two?];
    answers.sort_by_key(|(status, _)| *status);
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert_eq!(
        answers[0].1["counts"],
        json!({ "applied": 1, "replaced": 0, "superseded": 0, "skipped": 1 })
    );
    assert_eq!(answers[1].0, 409, "{}", answers[1].1);
    let job = wait_until_applied(&app, &token, &preview).await?;
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(outcomes(&job), [2, 2, 0, 2, 1, 1, 0]);
    let preview_log = app.log(&token, DISTRICT, &preview).await?;
    assert_eq!(
        log(&app, &token, &preview).await?,
        [
            row("1001.jpg", "skipped", &ada_kept),
            row("1004.jpg", "applied", ""),
        ]
    );
    assert_eq!(
        person(&app, &token, "S1001").await?["photo_id"],
        ada["photo_id"]
    );
    assert_eq!(
        person(&app, &token, "S1004").await?["photo_id"],
        preview_log[1]["photo_id"]
    );

    // The jobs list shows each job's options.
    let jobs = app
        .get_json(&token, &format!("/v1/districts/{DISTRICT}/jobs"))
        .await?;
    let options: Vec<Value> = jobs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| j["options"].clone())
        .collect();
    assert_eq!(
        options,
        [
            json!({ "mode": "preview", "replace": "missing_only" }),
            json!({ "mode": "apply", "replace": "existing_only" }),
            json!({ "mode": "apply", "replace": "missing_only" }),
            json!({ "mode": "apply", "replace": "always" }),
        ]
    );
    app.stop().await
}

async fn a_preview_expires_and_one_with_nothing_to_apply_finishes(
    backend: Backend,
) -> anyhow::Result<()> {
    let layout = AppLayout {
        preview_ttl_secs: Some(2),
        retention: RetentionArgs {
            originals_retention_days: None,
            retention_check_secs: Some(1),
            ..RetentionArgs::default()
        },
        ..AppLayout::default()
    };
    let (app, token) = set_up(layout, backend).await?;
    let photos_stored = |app: &TestApp| -> anyhow::Result<usize> {
        Ok(stored_files(&app.storage_root())?
            .iter()
            .filter(|f| f.starts_with(&format!("{DISTRICT}/photos/")))
            .count())
    };

    let preview = import(&app, &token, "mode=preview", &[1001]).await?;
    let job = app.wait_for_job(&token, DISTRICT, &preview).await?;
    assert_eq!(job["state"], "previewed", "{job}");
    // The previewed photo's renditions (one object), kept until the preview expires.
    assert_eq!(photos_stored(&app)?, 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, body) = apply(&app, &token, &preview).await?;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "gone");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("the preview expired at ")
            && message.ends_with("; upload the photos again for a new preview"),
        "{message}"
    );
    assert_eq!(person(&app, &token, "S1001").await?["has_photo"], false);
    assert_eq!(
        app.get_json(&token, &format!("/v1/districts/{DISTRICT}/jobs/{preview}"))
            .await?["state"],
        "previewed"
    );
    // Expired, its photos are deleted: nothing of a preview no one applied is kept.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while photos_stored(&app)? != 0 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "an expired preview's renditions are still stored"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = apply(&app, &token, &preview).await?;
    assert_eq!(status, 410, "{body}");

    // A preview in which nothing matched has nothing to apply: it is finished, not previewed.
    let nothing = import(&app, &token, "mode=preview", &[9998, 9999]).await?;
    let job = app.wait_for_job(&token, DISTRICT, &nothing).await?;
    assert_eq!(job["state"], "finished_with_errors", "{job}");
    assert_eq!(outcomes(&job), [2, 0, 2, 0, 0, 0, 0]);
    let (status, body) = apply(&app, &token, &nothing).await?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"]["message"],
        "the preview has nothing to apply: no file of it was matched and processed"
    );
    app.stop().await
}
