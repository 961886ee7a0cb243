//! One person at a time: a photo added, replaced (raw body and form), refused for a person not
//! on the roster, rejected when it is no image, removed (the placeholder again), restored, and
//! purged for good — with the exact objects storage loses and the record that says so.

use std::collections::BTreeSet;

use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{AppLayout, Backend, TestApp, file_part, stored_files, zip_of};
use reqwest::multipart::Form;
use serde_json::{Value, json};

on_each_backend!(
    one_persons_photo_is_added_replaced_removed_restored_and_purged,
    a_purge_claims_nothing_until_the_originals_are_gone_and_takes_a_whole_archive
);

const DISTRICT: &str = "springfield";

const ROSTER: &str = "role,sis_id,student_number,first_name,last_name\n\
student,S1001,1001,Ada,Lovelace\n\
student,S1002,1002,Grace,Hopper\n";

fn people_path(rest: &str) -> String {
    format!("/v1/districts/{DISTRICT}/people/{rest}")
}

async fn person_id(app: &TestApp, token: &str, sis_id: &str) -> anyhow::Result<String> {
    let people = app
        .get_json(
            token,
            &format!("/v1/districts/{DISTRICT}/people?sis_id={sis_id}"),
        )
        .await?;
    people["items"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no person {sis_id}: {people}"))
}

/// A token of `role` for the district.
async fn token_of(app: &TestApp, role: &str) -> anyhow::Result<String> {
    let made: Value = app
        .http
        .post(app.url(&format!("/v1/districts/{DISTRICT}/tokens")))
        .bearer_auth(&app.operator_token)
        .json(&json!({ "role": role }))
        .send()
        .await?
        .json()
        .await?;
    made["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no token: {made}"))
}

/// `PUT …/people/{person}/photo` with a raw body; the status and the body.
async fn put_raw(
    app: &TestApp,
    token: &str,
    person: &str,
    query: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<(u16, Value)> {
    let response = app
        .http
        .put(app.url(&people_path(&format!("{person}/photo?{query}"))))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

/// The person's photo: (photo id header, placeholder header, bytes).
async fn current_photo(
    app: &TestApp,
    token: &str,
    person: &str,
) -> anyhow::Result<(Option<String>, bool, Vec<u8>)> {
    let response = app
        .get(token, &people_path(&format!("{person}/photo")))
        .await?;
    anyhow::ensure!(response.status() == 200, "photo: {}", response.status());
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let id = header("x-pictureday-photo-id");
    let placeholder = header("x-pictureday-placeholder").as_deref() == Some("true");
    assert_eq!(header("content-type").as_deref(), Some("image/jpeg"));
    Ok((id, placeholder, response.bytes().await?.to_vec()))
}

/// The versions as (id, current).
async fn versions(app: &TestApp, token: &str, person: &str) -> anyhow::Result<Vec<(String, bool)>> {
    let listed = app
        .get_json(token, &people_path(&format!("{person}/photos")))
        .await?;
    Ok(listed
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap_or_default().to_owned(),
                v["current"].as_bool().unwrap_or_default(),
            )
        })
        .collect())
}

async fn one_persons_photo_is_added_replaced_removed_restored_and_purged(
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
    let ada = person_id(&app, &token, "S1001").await?;
    let grace = person_id(&app, &token, "S1002").await?;
    let first_image = jpeg(photo(400, 500, 1))?;

    // A viewer may look, not upload; a person not on the roster has no photo to set.
    let viewer = token_of(&app, "viewer").await?;
    let (status, refused) =
        put_raw(&app, &viewer, &ada, "", "image/jpeg", first_image.clone()).await?;
    assert_eq!(status, 403, "{refused}");
    let (status, refused) = put_raw(
        &app,
        &token,
        "no-such-person",
        "",
        "image/jpeg",
        first_image.clone(),
    )
    .await?;
    assert_eq!(status, 404, "{refused}");
    assert_eq!(refused["error"]["code"], "not_found");

    // Added: the answer waits for the outcome, and the photo is Ada's at once.
    let (status, added) = put_raw(
        &app,
        &token,
        &ada,
        "wait=true",
        "image/jpeg",
        first_image.clone(),
    )
    .await?;
    assert_eq!(status, 200, "{added}");
    assert_eq!(
        (
            added["state"].clone(),
            added["outcome"].clone(),
            added["reason"].clone()
        ),
        (json!("finished"), json!("applied"), Value::Null),
        "{added}"
    );
    assert_eq!(added["person_id"], ada.as_str());
    let first = added["photo_id"].as_str().unwrap_or_default().to_owned();
    let first_job = added["job_id"].as_str().unwrap_or_default().to_owned();
    let (served_id, placeholder, served) = current_photo(&app, &token, &ada).await?;
    assert_eq!(
        (served_id.as_deref(), placeholder),
        (Some(first.as_str()), false)
    );
    let version = app
        .get(&token, &people_path(&format!("{ada}/photos/{first}")))
        .await?
        .bytes()
        .await?;
    assert_eq!(served, version.to_vec());
    assert!(served.starts_with(&[0xFF, 0xD8]), "not a JPEG");
    // It is a job of one file, with its log row saying who chose the person.
    let job = app.wait_for_job(&token, DISTRICT, &first_job).await?;
    assert_eq!(job["counts"]["files"], 1, "{job}");
    let log = app.log(&token, DISTRICT, &first_job).await?;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (
            log[0]["file_name"].clone(),
            log[0]["outcome"].clone(),
            log[0]["matched_by"].clone(),
            log[0]["person_id"].clone()
        ),
        (
            json!("photo.jpg"),
            json!("applied"),
            json!("chosen for this person"),
            json!(ada)
        ),
        "{log:?}"
    );

    // Replaced, through a form this time: two versions, the new one current.
    let response = app
        .http
        .put(app.url(&people_path(&format!("{ada}/photo?wait=true"))))
        .bearer_auth(&token)
        .multipart(Form::new().part("files", file_part("retake.jpg", jpeg(photo(480, 600, 2))?)))
        .send()
        .await?;
    let status = response.status().as_u16();
    let replaced: Value = response.json().await?;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["outcome"], "replaced", "{replaced}");
    let second = replaced["photo_id"].as_str().unwrap_or_default().to_owned();
    let second_job = replaced["job_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        versions(&app, &token, &ada).await?,
        vec![(second.clone(), true), (first.clone(), false)]
    );
    assert_eq!(
        current_photo(&app, &token, &ada).await?.0.as_deref(),
        Some(second.as_str())
    );

    // Without waiting: 202 with the job, like any import.
    let (status, accepted) = put_raw(
        &app,
        &token,
        &grace,
        "file_name=grace.jpg",
        "image/jpeg",
        jpeg(photo(400, 500, 3))?,
    )
    .await?;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        (accepted["files"].clone(), accepted["person_id"].clone()),
        (json!(1), json!(grace))
    );
    let grace_job = accepted["job_id"].as_str().unwrap_or_default().to_owned();
    let done = app.wait_for_job(&token, DISTRICT, &grace_job).await?;
    assert_eq!(done["state"], "finished", "{done}");

    // No image: the job's one file is rejected with the reason, and Ada keeps her photo.
    let (status, rejected) = put_raw(
        &app,
        &token,
        &ada,
        "wait=true&file_name=form.pdf",
        "application/pdf",
        b"%PDF-1.7\n%\xe2\xe3 not a photo".to_vec(),
    )
    .await?;
    assert_eq!(status, 200, "{rejected}");
    let pdf_job = rejected["job_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        (
            rejected["state"].clone(),
            rejected["outcome"].clone(),
            rejected["reason"].clone(),
            rejected["photo_id"].clone()
        ),
        (
            json!("finished_with_errors"),
            json!("rejected"),
            json!("not an image: starts with %PDF-1.7"),
            Value::Null
        ),
        "{rejected}"
    );
    assert_eq!(
        current_photo(&app, &token, &ada).await?.0.as_deref(),
        Some(second.as_str())
    );

    // Removed: the placeholder, and both versions kept.
    let removed = app
        .http
        .delete(app.url(&people_path(&format!("{ada}/photo"))))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(removed.status(), 204);
    let (id, placeholder, _) = current_photo(&app, &token, &ada).await?;
    assert_eq!((id, placeholder), (None, true));
    let person = app.get_json(&token, &people_path(&ada)).await?;
    assert_eq!(
        (person["has_photo"].clone(), person["photo_id"].clone()),
        (json!(false), Value::Null)
    );
    assert_eq!(
        versions(&app, &token, &ada).await?,
        vec![(second.clone(), false), (first.clone(), false)]
    );

    // Restored: the first photo is hers again; another person's photo is not hers to restore.
    let restore = |photo: &str| {
        app.http
            .post(app.url(&people_path(&format!("{ada}/photos/{photo}/restore"))))
            .bearer_auth(&token)
            .send()
    };
    let restored = restore(&first).await?;
    assert_eq!(restored.status(), 200);
    let restored: Value = restored.json().await?;
    assert_eq!(
        (restored["id"].clone(), restored["photo_id"].clone()),
        (json!(ada), json!(first))
    );
    assert_eq!(
        current_photo(&app, &token, &ada).await?.0.as_deref(),
        Some(first.as_str())
    );
    let grace_photo = app.get_json(&token, &people_path(&grace)).await?["photo_id"].clone();
    let foreign = restore(grace_photo.as_str().unwrap_or_default()).await?;
    assert_eq!(foreign.status(), 404);

    // Purged: an importer may not; an admin deletes everything of Ada's from storage — the
    // three renditions of each photo (one object per photo) and the three files uploaded for
    // her, the PDF too — and nothing else.
    let importer = token_of(&app, "importer").await?;
    let purge = |token: &str| {
        app.http
            .delete(app.url(&people_path(&format!("{ada}/photo?purge=true"))))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(purge(&importer).await?.status(), 403);
    let before: BTreeSet<String> = stored_files(&app.storage_root())?.into_iter().collect();
    let expected: BTreeSet<String> = [&first, &second]
        .iter()
        .map(|photo| format!("{DISTRICT}/photos/{photo}.jpgs"))
        .chain(
            [&first_job, &second_job, &pdf_job]
                .map(|job| format!("{DISTRICT}/uploads/{job}/files/0")),
        )
        .collect();
    assert!(
        expected.is_subset(&before),
        "{expected:?} not all in {before:?}"
    );
    let purged = purge(&token).await?;
    assert_eq!(purged.status(), 200);
    let purged: Value = purged.json().await?;
    let after: BTreeSet<String> = stored_files(&app.storage_root())?.into_iter().collect();
    let gone: BTreeSet<String> = before.difference(&after).cloned().collect();
    assert_eq!(gone, expected);
    assert_eq!(before.len() - after.len(), 5);
    assert_eq!(
        [
            "photos_deleted",
            "objects_deleted",
            "renditions_deleted",
            "originals_deleted",
            "archives_deleted"
        ]
        .map(|k| purged[k].as_u64()),
        [Some(2), Some(9), Some(6), Some(3), Some(0)],
        "{purged}"
    );
    assert_eq!(purged["person_id"], ada.as_str());
    assert_eq!(purged["district"], DISTRICT);
    assert!(
        purged["purged_by"]
            .as_str()
            .is_some_and(|by| by.starts_with("tok_")),
        "{purged}"
    );
    assert!(purged["purged_at"].is_string(), "{purged}");
    assert!(versions(&app, &token, &ada).await?.is_empty());
    let (id, placeholder, _) = current_photo(&app, &token, &ada).await?;
    assert_eq!((id, placeholder), (None, true));
    // Grace's photo is untouched, and purging again finds nothing more.
    assert_eq!(
        app.get_json(&token, &people_path(&grace)).await?["photo_id"],
        grace_photo
    );
    let again: Value = purge(&token).await?.json().await?;
    assert_eq!(again["objects_deleted"], 0, "{again}");
    assert_eq!(stored_files(&app.storage_root())?.len(), after.len());

    app.stop().await
}

/// A photo that came in an archive: purging its person deletes the whole archive (a file cannot
/// be cut out of it), and while ingest is down the purge says it is not finished, counts only
/// what it deleted, and is finished by the next call.
async fn a_purge_claims_nothing_until_the_originals_are_gone_and_takes_a_whole_archive(
    backend: Backend,
) -> anyhow::Result<()> {
    let mut app = TestApp::spawn_with(
        backend,
        AppLayout {
            behind_gateway: true,
            ..AppLayout::default()
        },
    )
    .await?;
    let token = app.create_district(DISTRICT, "Springfield USD").await?;
    let (status, loaded) = app.upload_roster(&token, DISTRICT, ROSTER).await?;
    anyhow::ensure!(status == 200, "roster: {status}: {loaded}");
    let archive = zip_of(&[
        ("1001.jpg", jpeg(photo(400, 500, 1))?),
        ("1002.jpg", jpeg(photo(400, 500, 2))?),
    ])?;
    let job = app.import_archive(&token, DISTRICT, archive).await?;
    let done = app.wait_for_job(&token, DISTRICT, &job).await?;
    assert_eq!(done["counts"]["applied"], 2, "{done}");
    let ada = person_id(&app, &token, "S1001").await?;
    let grace = person_id(&app, &token, "S1002").await?;
    let ada_photo = current_photo(&app, &token, &ada)
        .await?
        .0
        .unwrap_or_default();
    let grace_photo = current_photo(&app, &token, &grace)
        .await?
        .0
        .unwrap_or_default();
    let archive_key = format!("{DISTRICT}/uploads/{job}/archive-0.zip");
    // A photo's three renditions are one object.
    let renditions_of = |photo: &str| -> BTreeSet<String> {
        BTreeSet::from([format!("{DISTRICT}/photos/{photo}.jpgs")])
    };
    let before: BTreeSet<String> = stored_files(&app.storage_root())?.into_iter().collect();
    assert!(before.contains(&archive_key), "{before:?}");

    let purge = |app: &TestApp| {
        app.http
            .delete(app.url(&people_path(&format!("{ada}/photo?purge=true"))))
            .bearer_auth(&token)
            .send()
    };
    // Ingest is down: the photo is no longer Ada's and its renditions are gone, but the purge
    // is not claimed done, and the archive is still there.
    app.stop_service("ingest").await?;
    let refused = purge(&app).await?;
    assert_eq!(refused.status(), 503);
    let refused: Value = refused.json().await?;
    assert_eq!(refused["error"]["code"], "unavailable", "{refused}");
    let (id, placeholder, _) = current_photo(&app, &token, &ada).await?;
    assert_eq!((id, placeholder), (None, true));
    assert!(versions(&app, &token, &ada).await?.is_empty());
    let midway: BTreeSet<String> = stored_files(&app.storage_root())?.into_iter().collect();
    let gone: BTreeSet<String> = before.difference(&midway).cloned().collect();
    assert_eq!(gone, renditions_of(&ada_photo));

    // Ingest is back: the same purge is finished, counting everything it deleted.
    app.start_service("ingest").await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let finished: Value = loop {
        let response = purge(&app).await?;
        if response.status() == 200 {
            break response.json().await?;
        }
        anyhow::ensure!(
            response.status() == 503 && tokio::time::Instant::now() < deadline,
            "purge: {}: {}",
            response.status(),
            response.text().await?
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        [
            "photos_deleted",
            "objects_deleted",
            "renditions_deleted",
            "originals_deleted",
            "archives_deleted"
        ]
        .map(|k| finished[k].as_u64()),
        [Some(1), Some(4), Some(3), Some(1), Some(1)],
        "{finished}"
    );
    let after: BTreeSet<String> = stored_files(&app.storage_root())?.into_iter().collect();
    let gone: BTreeSet<String> = before.difference(&after).cloned().collect();
    let mut expected = renditions_of(&ada_photo);
    expected.insert(archive_key);
    assert_eq!(gone, expected);
    // Grace keeps her photo: only its original went with the archive.
    assert!(renditions_of(&grace_photo).is_subset(&after));
    assert_eq!(
        current_photo(&app, &token, &grace).await?.0.as_deref(),
        Some(grace_photo.as_str())
    );

    app.stop().await
}
