//! Every file ends in exactly one outcome, whatever goes wrong around it: an outage delays work
//! and never turns into rejections; an event nobody can read is set aside and counted, never
//! dropped; one bad event fails alone; a message the bus lost is published again.

use std::time::Duration;

use pictureday_contract::DistrictId;
use pictureday_contract::subjects::{DEAD_LETTER_STREAM, Kind, PIPELINE_STREAM};
use pictureday_platform::Connections;
use pictureday_platform::config::{CommonArgs, Settings};
use pictureday_tests::{AppLayout, Backend, TestApp};
use sea_orm::{ConnectionTrait, DbBackend};
use serde_json::Value;

const DISTRICT: &str = "springfield";
const IMAGE_PROCESSOR: &str = env!("CARGO_BIN_EXE_image-processor-under-test");

on_each_backend!(
    a_job_past_its_deadline_fails_with_the_reason,
    an_event_nobody_can_read_is_set_aside_and_counted,
    a_bad_event_fails_alone,
    a_message_the_bus_lost_still_ends_in_an_outcome,
);

mod roster_outage {
    /// The outage is of the roster service, not of a backend: one backend is enough, and the
    /// test waits out more than a minute.
    #[tokio::test]
    async fn on_sqlite_local() -> anyhow::Result<()> {
        super::a_roster_outage_longer_than_a_minute_delays_and_loses_nothing().await
    }
}

mod no_database {
    #[tokio::test]
    async fn matcher_and_image_processor() -> anyhow::Result<()> {
        super::the_matcher_and_image_processor_need_no_database().await
    }
}

/// A district with a roster of `photos` numbered students, and an import of as many photos;
/// returns the district's token and the job.
async fn numbered_job(app: &TestApp, photos: u32) -> anyhow::Result<(String, String)> {
    let token = app.create_district(DISTRICT, "Springfield").await?;
    app.upload_numbered_roster(&token, DISTRICT, photos).await?;
    let job_id = app
        .import_numbered_photos(&token, DISTRICT, photos, (320, 400))
        .await?;
    Ok((token, job_id))
}

fn count(job: &Value, name: &str) -> u64 {
    job["counts"][name].as_u64().unwrap_or(u64::MAX)
}

async fn a_roster_outage_longer_than_a_minute_delays_and_loses_nothing() -> anyhow::Result<()> {
    const PHOTOS: u32 = 12;
    let mut app = TestApp::spawn_with(
        Backend::Embedded,
        AppLayout {
            behind_gateway: true,
            ..AppLayout::default()
        },
    )
    .await?;
    let token = app.create_district(DISTRICT, "Springfield").await?;
    app.upload_numbered_roster(&token, DISTRICT, PHOTOS).await?;
    app.stop_service("roster").await?;
    let job_id = app
        .import_numbered_photos(&token, DISTRICT, PHOTOS, (320, 400))
        .await?;
    // Longer than the old retry window (six deliveries, about a minute) after which every file
    // was rejected.
    let outage = Duration::from_secs(75);
    tokio::time::sleep(outage).await;
    let path = format!("/v1/districts/{DISTRICT}/jobs/{job_id}");
    let during = app.get_json(&token, &path).await?;
    assert_eq!(during["state"], "processing", "{during}");
    assert_eq!(count(&during, "rejected"), 0, "{during}");
    assert_eq!(count(&during, "matched"), 0, "{during}");
    let waiting = during["waiting"].as_str().unwrap_or_default();
    assert!(
        waiting.starts_with("roster service unavailable since "),
        "{during}"
    );
    let back = std::time::Instant::now();
    app.start_service("roster").await?;
    let job = app.wait_for_job(&token, DISTRICT, &job_id).await?;
    let drained = back.elapsed();
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(count(&job, "applied"), u64::from(PHOTOS), "{job}");
    assert_eq!(count(&job, "rejected"), 0, "{job}");
    assert!(job.get("waiting").is_none(), "{job}");
    // The backoff is capped: work resumes within seconds of the roster's return.
    assert!(
        drained < Duration::from_secs(30),
        "took {drained:?} after the outage"
    );
    app.stop().await
}

async fn an_event_nobody_can_read_is_set_aside_and_counted(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let (token, job_id) = numbered_job(&app, 2).await?;
    app.wait_for_job(&token, DISTRICT, &job_id).await?;

    // A newer version's event for the matcher and garbage for the image-processor; reporting
    // reads every pipeline subject, so it sets both aside too.
    let district = DistrictId::parse(DISTRICT)?;
    let js = &app.bus.js;
    js.publish(
        Kind::Ingested.subject(&district, &job_id),
        r#"{"v":99,"file":{"district":"springfield","job_id":"x","seq":0,"file_name":"a.jpg"},"shape":"new"}"#.into(),
    )
    .await?
    .await?;
    js.publish(Kind::Matched.subject(&district, &job_id), "not json".into())
        .await?
        .await?;

    let path = format!("/v1/districts/{DISTRICT}/jobs/{job_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        let job = app.get_json(&token, &path).await?;
        if count(&job, "parked") == 4 || tokio::time::Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(count(&job, "parked"), 4, "{job}");
    // Nothing else about the job changed: it finished before, with both photos applied.
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(count(&job, "applied"), 2, "{job}");

    let letters = app
        .get_json(&token, &format!("{path}/dead-letters"))
        .await?;
    let mut seen: Vec<(String, String, bool)> = letters["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let reason = l["reason"].as_str().unwrap_or_default();
            (
                l["consumer"].as_str().unwrap_or_default().to_owned(),
                l["subject"].as_str().unwrap_or_default().to_owned(),
                reason.contains("schema version 99") || reason.contains("not valid JSON"),
            )
        })
        .collect();
    seen.sort();
    let ingested = Kind::Ingested.subject(&district, &job_id);
    let matched = Kind::Matched.subject(&district, &job_id);
    assert_eq!(
        seen,
        vec![
            ("image-processor".to_owned(), matched.clone(), true),
            ("matcher".to_owned(), ingested.clone(), true),
            ("reporting".to_owned(), ingested, true),
            ("reporting".to_owned(), matched, true),
        ],
        "{letters}"
    );
    // They are kept on the dead-letter stream, not just counted.
    let mut stream = js.get_stream(DEAD_LETTER_STREAM).await?;
    assert_eq!(stream.info().await?.state.messages, 4);
    app.stop().await
}

/// The database refuses one photo of a hundred (a trigger stands in for any row it cannot
/// take): that file is rejected with the reason, and the 99 that came in the same batches are
/// applied.
async fn a_bad_event_fails_alone(backend: Backend) -> anyhow::Result<()> {
    const PHOTOS: u32 = 100;
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district(DISTRICT, "Springfield").await?;
    app.upload_numbered_roster(&token, DISTRICT, PHOTOS).await?;
    let db = app.connections.database().await?;
    let refuse = match db.get_database_backend() {
        DbBackend::Postgres => vec![
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
             IF NEW.file_name = '50.jpg' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON photos FOR EACH ROW \
             EXECUTE FUNCTION refuse_poison()",
        ],
        _ => vec![
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON photos \
             WHEN NEW.file_name = '50.jpg' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        ],
    };
    for statement in refuse {
        db.execute_unprepared(statement).await?;
    }
    let job_id = app
        .import_numbered_photos(&token, DISTRICT, PHOTOS, (160, 200))
        .await?;
    let job = app.wait_for_job(&token, DISTRICT, &job_id).await?;
    assert_eq!(job["state"], "finished_with_errors", "{job}");
    assert_eq!(count(&job, "applied"), u64::from(PHOTOS) - 1, "{job}");
    assert_eq!(count(&job, "rejected"), 1, "{job}");
    let log = app.log(&token, DISTRICT, &job_id).await?;
    let rejected: Vec<&Value> = log.iter().filter(|r| r["outcome"] == "rejected").collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["file_name"], "50.jpg");
    let reason = rejected[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("could not be handled:") && reason.contains("refused by the test"),
        "{reason}"
    );
    app.stop().await
}

/// One `photo.matched` message is deleted from the stream before any image-processor takes it,
/// as a bus that lost an acknowledged write would: the reconciler finds the file stalled with
/// nothing in flight and has it published again.
async fn a_message_the_bus_lost_still_ends_in_an_outcome(backend: Backend) -> anyhow::Result<()> {
    const PHOTOS: u32 = 6;
    let app = TestApp::spawn_with(
        backend,
        AppLayout {
            without_image_processor: true,
            stall_after_secs: Some(2),
            ..AppLayout::default()
        },
    )
    .await?;
    let (token, job_id) = numbered_job(&app, PHOTOS).await?;
    let path = format!("/v1/districts/{DISTRICT}/jobs/{job_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count(&app.get_json(&token, &path).await?, "matched") < u64::from(PHOTOS) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "files were not matched"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Delete the first photo.matched message of the job.
    let mut stream = app.bus.js.get_stream(PIPELINE_STREAM).await?;
    let info = stream.info().await?;
    let matched = Kind::Matched.subject(&DistrictId::parse(DISTRICT)?, &job_id);
    let mut deleted = None;
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        if let Ok(message) = stream.get_raw_message(sequence).await
            && message.subject.as_str() == matched
        {
            stream.delete_message(sequence).await?;
            deleted = Some(sequence);
            break;
        }
    }
    anyhow::ensure!(deleted.is_some(), "no photo.matched message to delete");

    let mut processor = app
        .spawn_image_processor(IMAGE_PROCESSOR, "image-processor-1")
        .await?;
    let job = app.wait_for_job(&token, DISTRICT, &job_id).await?;
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(count(&job, "applied"), u64::from(PHOTOS), "{job}");
    assert_eq!(count(&job, "rejected"), 0, "{job}");
    assert!(count(&job, "replayed") >= 1, "{job}");
    let log = app.log(&token, DISTRICT, &job_id).await?;
    assert_eq!(log.len(), PHOTOS as usize);
    assert!(log.iter().all(|r| r["outcome"] == "applied"), "{log:?}");
    processor.terminate(Duration::from_secs(10)).await?;
    app.stop().await
}

/// The matcher and the image-processor start and are ready with no database setting at all:
/// a database outage cannot take them out of rotation.
async fn the_matcher_and_image_processor_need_no_database() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(
        Backend::Embedded,
        AppLayout {
            without_image_processor: true,
            ..AppLayout::default()
        },
    )
    .await?;
    let args = CommonArgs {
        config: None,
        database_url: None,
        nats_url: Some(app.nats_url.clone()),
        storage: None,
        s3_force_path_style: None,
        operator_token: None,
        spool_dir: None,
        image_workers: Some(1),
        instance: Some("matcher-alone".into()),
        ack_wait_secs: None,
        nats_replicas: None,
        job_deadline_secs: None,
        stall_after_secs: None,
        preview_ttl_secs: None,
        photos: Default::default(),
        retention: Default::default(),
        webhooks: Default::default(),
        api: Default::default(),
        sftp: Default::default(),
    };
    let connections = std::sync::Arc::new(Connections::new(Settings::from_args(&args)?));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let matcher = pictureday_matcher::component(&connections, &shutdown).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/readyz", listener.local_addr()?);
    let served = {
        let (connections, shutdown) = (connections.clone(), shutdown.clone());
        tokio::spawn(async move {
            pictureday_platform::runtime::serve(&connections, listener, vec![matcher], shutdown)
                .await
        })
    };
    let mut ready = false;
    for _ in 0..50 {
        if let Ok(r) = reqwest::get(&url).await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the matcher without a database never became ready");
    // The image-processor process gets NATS and storage only (see spawn_image_processor).
    let mut processor = app
        .spawn_image_processor(IMAGE_PROCESSOR, "image-processor-alone")
        .await?;
    // And it works: a batch goes through the separate image-processor.
    let (token, job_id) = numbered_job(&app, 2).await?;
    let job = app.wait_for_job(&token, DISTRICT, &job_id).await?;
    assert_eq!(count(&job, "applied"), 2, "{job}");
    processor.terminate(Duration::from_secs(10)).await?;
    shutdown.cancel();
    served.await??;
    app.stop().await
}

/// With no image-processor running, a job cannot finish: past its deadline it is failed, and
/// every file without an outcome is rejected with the reason.
async fn a_job_past_its_deadline_fails_with_the_reason(backend: Backend) -> anyhow::Result<()> {
    const PHOTOS: u32 = 3;
    let app = TestApp::spawn_with(
        backend,
        AppLayout {
            without_image_processor: true,
            job_deadline_secs: Some(4),
            stall_after_secs: Some(1),
            ..AppLayout::default()
        },
    )
    .await?;
    let (token, job_id) = numbered_job(&app, PHOTOS).await?;
    let job = app.wait_for_job(&token, DISTRICT, &job_id).await?;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(
        job["failure"].as_str(),
        Some("the job did not finish within 4 seconds"),
        "{job}"
    );
    assert_eq!(count(&job, "rejected"), u64::from(PHOTOS), "{job}");
    assert_eq!(count(&job, "applied"), 0, "{job}");
    let log = app.log(&token, DISTRICT, &job_id).await?;
    assert_eq!(log.len(), PHOTOS as usize);
    for row in &log {
        assert_eq!(row["outcome"], "rejected", "{row}");
        assert_eq!(
            row["reason"].as_str(),
            Some("no outcome: the job did not finish within 4 seconds; upload it again"),
            "{row}"
        );
    }
    app.stop().await
}
