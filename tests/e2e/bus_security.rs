//! The bus is not a way in: the embedded nats-server refuses clients without its token (kept in
//! a file only its owner reads), and every consumer checks what an event claims against what it
//! owns, so a forged event cannot put one district's photo on another district's child.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use futures::StreamExt;
use pictureday_contract::DistrictId;
use pictureday_contract::events::{
    FileRef, Identifier, MatchedBy, PACKED_RENDITIONS_VERSION, PhotoMatched, PhotoProcessed,
    PhotoUnmatched, RenditionRef, SCHEMA_VERSION, Source,
};
use pictureday_contract::ids::photo_id;
use pictureday_contract::subjects::Kind;
use pictureday_platform::nats_client::NatsAddress;
use pictureday_platform::nats_server::NatsServer;
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{Backend, TestApp, file_part};
use reqwest::multipart::Form;
use serde_json::Value;

on_each_backend!(forged_events_are_refused_by_what_each_service_owns);

#[tokio::test]
async fn the_embedded_nats_server_refuses_clients_without_its_token() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("nats");
    let server = NatsServer::start(&store).await?;
    for secret in ["nats.token", "nats-server.conf"] {
        let mode = std::fs::metadata(store.join(secret))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{secret}");
    }
    let token = std::fs::read_to_string(store.join("nats.token"))?;
    assert!(token.len() >= 32, "a long random token: {token:?}");

    let anonymous = tokio::time::timeout(
        Duration::from_secs(5),
        async_nats::connect(server.url_without_credentials()),
    )
    .await?;
    let refused = anonymous.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.to_lowercase().contains("authorization"),
        "refused for its credentials: {refused:?}"
    );
    let wrong = NatsAddress::parse(&NatsAddress::with_token(
        &server.url_without_credentials(),
        "guess",
    ))
    .connect("intruder")
    .await;
    assert!(wrong.is_err(), "a wrong token is refused");
    let client = NatsAddress::parse(server.url()).connect("test").await?;
    client.flush().await?;

    // A restart keeps the token: reconnecting clients still get in.
    let port = server.port();
    server.stop().await;
    let again = NatsServer::start_on(&store, port).await?;
    assert_eq!(
        std::fs::read_to_string(store.join("nats.token"))?,
        token,
        "the same token after a restart"
    );
    NatsAddress::parse(again.url())
        .connect("test")
        .await?
        .flush()
        .await?;
    again.stop().await;
    Ok(())
}

async fn person(app: &TestApp, token: &str, district: &str) -> anyhow::Result<String> {
    let people = app
        .get_json(token, &format!("/v1/districts/{district}/people"))
        .await?;
    people["items"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no person in {district}: {people}"))
}

/// Imports one photo, named by SIS id, as a `files` part; returns the finished job's id.
async fn import_one(
    app: &TestApp,
    token: &str,
    district: &str,
    sis: &str,
) -> anyhow::Result<String> {
    let (status, accepted) = app
        .import(
            token,
            district,
            Form::new().part(
                "files",
                file_part(&format!("{sis}.jpg"), jpeg(photo(300, 375, 1))?),
            ),
        )
        .await?;
    anyhow::ensure!(status == 202, "import: {status} {accepted}");
    let job = accepted["job_id"].as_str().unwrap_or_default().to_owned();
    let done = app.wait_for_job(token, district, &job).await?;
    anyhow::ensure!(done["state"] == "finished", "{done}");
    Ok(job)
}

async fn versions(
    app: &TestApp,
    token: &str,
    district: &str,
    person: &str,
) -> anyhow::Result<usize> {
    let versions: Value = app
        .get_json(
            token,
            &format!("/v1/districts/{district}/people/{person}/photos"),
        )
        .await?;
    Ok(versions
        .as_array()
        .or(versions["items"].as_array())
        .map_or(0, Vec::len))
}

async fn publish(
    js: &async_nats::jetstream::Context,
    subject: String,
    msg_id: &str,
    event: &impl serde::Serialize,
) -> anyhow::Result<()> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    js.publish_with_headers(subject, headers, serde_json::to_vec(event)?.into())
        .await?
        .await?;
    Ok(())
}

/// Waits for the rejection of file `seq` of `job` and returns its reason.
async fn rejection(
    rejected: &mut async_nats::Subscriber,
    job: &str,
    seq: u32,
) -> anyhow::Result<String> {
    let wait = async {
        while let Some(message) = rejected.next().await {
            let event: Value = serde_json::from_slice(&message.payload)?;
            if event["file"]["job_id"] == job && event["file"]["seq"] == seq {
                return Ok(event["reason"].as_str().unwrap_or_default().to_owned());
            }
        }
        anyhow::bail!("the subscription ended")
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await?
}

async fn forged_events_are_refused_by_what_each_service_owns(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let north_token = app.create_district("north", "North").await?;
    let south_token = app.create_district("south", "South").await?;
    for (token, district, sis) in [(&north_token, "north", "N1"), (&south_token, "south", "S1")] {
        let roster = format!("role,sis_id,first_name,last_name\nstudent,{sis},Kid,{district}\n");
        let (status, body) = app.upload_roster(token, district, &roster).await?;
        anyhow::ensure!(status == 200, "{body}");
    }
    let north_child = person(&app, &north_token, "north").await?;
    let north_job = import_one(&app, &north_token, "north", "N1").await?;
    let south_job = import_one(&app, &south_token, "south", "S1").await?;
    assert_eq!(
        versions(&app, &north_token, "north", &north_child).await?,
        1
    );

    let nats = NatsAddress::parse(&app.nats_url).connect("test").await?;
    let js = async_nats::jetstream::new(nats.clone());
    let mut rejected = nats.subscribe("pictureday.photo.rejected.north.>").await?;
    let north = DistrictId::parse("north")?;
    let south = DistrictId::parse("south")?;
    let forged_file = |replay: u32| FileRef {
        district: north.clone(),
        job_id: north_job.as_str().into(),
        seq: 0,
        file_name: "N1.jpg".into(),
        replay,
    };

    // South's upload, claimed as north's file: the image-processor refuses it.
    let south_upload = pictureday_contract::keys::upload_file(&south, &south_job, 0);
    let matched = PhotoMatched {
        v: SCHEMA_VERSION,
        file: forged_file(7),
        source: Source::Object {
            key: south_upload,
            size: 1000,
        },
        person_id: north_child.as_str().into(),
        matched_by: MatchedBy::exact(Identifier::SisId),
        key: "N1".into(),
        options: Default::default(),
    };
    publish(
        &js,
        Kind::Matched.subject(&north, &north_job),
        "forged:matched",
        &matched,
    )
    .await?;
    assert_eq!(
        rejection(&mut rejected, &north_job, 0).await?,
        "its source is not part of its own upload; the event was refused"
    );

    // South's renditions, claimed as a processed north photo: roster refuses them.
    let south_photo = photo_id(&south_job.as_str().into(), 0);
    let processed = PhotoProcessed {
        v: PACKED_RENDITIONS_VERSION,
        file: forged_file(8),
        person_id: north_child.as_str().into(),
        photo_id: photo_id(&north_job.as_str().into(), 0),
        source_format: "JPEG".into(),
        renditions: vec![RenditionRef {
            name: "large".into(),
            width: 480,
            height: 600,
            key: pictureday_contract::keys::renditions(&south, &south_photo),
            bytes: 1000,
            offset: Some(0),
        }],
        processed_by: "intruder".into(),
        options: Default::default(),
    };
    publish(
        &js,
        Kind::Processed.subject(&north, &north_job),
        "forged:processed",
        &processed,
    )
    .await?;
    assert_eq!(
        rejection(&mut rejected, &north_job, 0).await?,
        "its renditions are not stored under its photo; the event was refused"
    );
    // And south's photo id: refused before anything is looked up.
    let stolen = PhotoProcessed {
        file: forged_file(9),
        photo_id: south_photo.clone(),
        renditions: Vec::new(),
        ..processed
    };
    publish(
        &js,
        Kind::Processed.subject(&north, &north_job),
        "forged:stolen",
        &stolen,
    )
    .await?;
    assert_eq!(
        rejection(&mut rejected, &north_job, 0).await?,
        "its photo id is not its file's; the event was refused"
    );
    assert_eq!(
        versions(&app, &north_token, "north", &north_child).await?,
        1,
        "north's child has only the photo north uploaded"
    );

    // A file number the job does not have changes nothing in its report.
    let unmatched = PhotoUnmatched {
        v: SCHEMA_VERSION,
        file: FileRef {
            seq: 5,
            ..forged_file(0)
        },
        reason: "forged".into(),
    };
    publish(
        &js,
        Kind::Unmatched.subject(&north, &north_job),
        "forged:unmatched",
        &unmatched,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let job = app
        .get_json(
            &north_token,
            &format!("/v1/districts/north/jobs/{north_job}"),
        )
        .await?;
    assert_eq!(job["counts"]["files"], 1, "{job}");
    assert_eq!(job["counts"]["unmatched"], 0, "{job}");
    assert_eq!(app.log(&north_token, "north", &north_job).await?.len(), 1);
    app.stop().await
}
