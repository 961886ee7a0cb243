//! The image stage as separate operating-system processes, as it is deployed: several share one
//! durable consumer; one killed outright loses nothing; one stopped with SIGTERM finishes or
//! hands back its work and exits cleanly.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{Info, PullConsumer};
use futures::StreamExt;
use pictureday_contract::subjects::{PIPELINE_STREAM, consumers};
use pictureday_tests::{AppLayout, Backend, ServiceProcess, TestApp};
use serde_json::Value;

const IMAGE_PROCESSOR: &str = env!("CARGO_BIN_EXE_image-processor-under-test");
const DISTRICT: &str = "springfield";
/// Big enough that a batch takes a while, so a process can be stopped in the middle of it.
const PHOTO_SIZE: (u32, u32) = (1600, 2000);

on_each_backend!(
    three_processes_share_the_work_exactly_once,
    a_killed_process_loses_nothing,
    sigterm_finishes_or_hands_back_the_work,
);

/// A batch on its way: the main services in this process without an image-processor (so every
/// photo is processed by the processes the test starts), a district whose roster has a student
/// per photo, and the events the test watches.
struct Batch {
    app: TestApp,
    processes: Vec<ServiceProcess>,
    token: String,
    job_id: String,
    processed: async_nats::Subscriber,
    applied: async_nats::Subscriber,
}

impl Batch {
    async fn start(
        backend: Backend,
        ack_wait_secs: u64,
        processes: usize,
        photos: u32,
        size: (u32, u32),
    ) -> anyhow::Result<Self> {
        let app = TestApp::spawn_with(
            backend,
            AppLayout {
                without_image_processor: true,
                ack_wait_secs: Some(ack_wait_secs),
                ..AppLayout::default()
            },
        )
        .await?;
        let processes = start_processes(&app, 0..processes).await?;
        let token = app.create_district(DISTRICT, "Springfield").await?;
        app.upload_numbered_roster(&token, DISTRICT, photos).await?;
        let nats = pictureday_platform::nats_client::NatsAddress::parse(&app.nats_url)
            .connect("test")
            .await?;
        let processed = nats.subscribe("pictureday.photo.processed.>").await?;
        let applied = nats.subscribe("pictureday.photo.applied.>").await?;
        let job_id = app
            .import_numbered_photos(&token, DISTRICT, photos, size)
            .await?;
        Ok(Self {
            app,
            processes,
            token,
            job_id,
            processed,
            applied,
        })
    }

    async fn assert_applied_exactly_once(&mut self, photos: u32) -> anyhow::Result<()> {
        assert_applied_exactly_once(
            &self.app,
            &self.token,
            &self.job_id,
            &mut self.applied,
            photos,
        )
        .await
    }
}

/// Image-processor processes named `processor-<n>` for each `n` of `numbers`.
async fn start_processes(
    app: &TestApp,
    numbers: std::ops::Range<usize>,
) -> anyhow::Result<Vec<ServiceProcess>> {
    let mut processes = Vec::new();
    for n in numbers {
        processes.push(
            app.spawn_image_processor(IMAGE_PROCESSOR, &format!("processor-{n}"))
                .await?,
        );
    }
    Ok(processes)
}

async fn image_consumer(app: &TestApp) -> anyhow::Result<Info> {
    let stream = app.bus.js.get_stream(PIPELINE_STREAM).await?;
    Ok(stream.consumer_info(consumers::IMAGE_PROCESSOR).await?)
}

/// Per file sequence number, the instances that published its `photo.processed` (more than
/// one only after a redelivery).
type ProcessedBy = BTreeMap<u64, Vec<String>>;

/// Reads `photo.processed` events into `seen` until it holds `count` distinct files.
async fn read_processed(
    events: &mut async_nats::Subscriber,
    seen: &mut ProcessedBy,
    count: usize,
) -> anyhow::Result<()> {
    while seen.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(120), events.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("subscription ended"))?;
        let event: Value = serde_json::from_slice(&message.payload)?;
        let seq = event["file"]["seq"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("no seq: {event}"))?;
        let instance = event["processed_by"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        seen.entry(seq).or_default().push(instance);
    }
    Ok(())
}

/// Every file of the job was applied exactly once: the job's counts, its log, and the
/// `photo.applied` events say so.
async fn assert_applied_exactly_once(
    app: &TestApp,
    token: &str,
    job_id: &str,
    applied: &mut async_nats::Subscriber,
    photos: u32,
) -> anyhow::Result<()> {
    let job = app.wait_for_job(token, DISTRICT, job_id).await?;
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(job["counts"]["applied"], photos, "{job}");
    assert_eq!(job["counts"]["rejected"], 0, "{job}");
    let log = app.log(token, DISTRICT, job_id).await?;
    assert_eq!(log.len() as u32, photos);
    let files: BTreeSet<&str> = log.iter().filter_map(|r| r["file_name"].as_str()).collect();
    assert_eq!(
        files.len() as u32,
        photos,
        "a file appears twice in the log"
    );
    assert!(log.iter().all(|r| r["outcome"] == "applied"), "{log:?}");

    let mut applied_files = BTreeSet::new();
    for _ in 0..photos {
        let message = tokio::time::timeout(Duration::from_secs(10), applied.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("subscription ended"))?;
        let event: Value = serde_json::from_slice(&message.payload)?;
        assert_eq!(event["outcome"], "applied", "{event}");
        assert!(
            applied_files.insert(event["file"]["seq"].as_u64()),
            "applied twice: {event}"
        );
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(500), applied.next())
            .await
            .is_err(),
        "more photo.applied events than files"
    );
    let missing = app
        .get_json(
            token,
            &format!("/v1/districts/{DISTRICT}/people?missing_photo=true"),
        )
        .await?;
    assert_eq!(missing["items"], serde_json::json!([]));
    Ok(())
}

async fn three_processes_share_the_work_exactly_once(backend: Backend) -> anyhow::Result<()> {
    const PHOTOS: u32 = 45;
    let mut batch = Batch::start(backend, 60, 3, PHOTOS, (1200, 1500)).await?;
    let mut seen = ProcessedBy::new();
    read_processed(&mut batch.processed, &mut seen, PHOTOS as usize).await?;
    batch.assert_applied_exactly_once(PHOTOS).await?;

    // Nobody died, so nothing was done twice, and every process did a share.
    let mut shares: BTreeMap<&str, u32> = BTreeMap::new();
    for (seq, instances) in &seen {
        assert_eq!(instances.len(), 1, "file {seq} processed by {instances:?}");
        *shares.entry(instances[0].as_str()).or_default() += 1;
    }
    assert_eq!(
        shares.keys().copied().collect::<Vec<_>>(),
        ["processor-0", "processor-1", "processor-2"],
        "{shares:?}"
    );
    assert_eq!(shares.values().sum::<u32>(), PHOTOS);
    let consumer = image_consumer(&batch.app).await?;
    assert_eq!(consumer.delivered.consumer_sequence, u64::from(PHOTOS));
    assert_eq!(consumer.num_ack_pending, 0);
    assert_eq!(consumer.num_pending, 0);

    for process in &mut batch.processes {
        let status = process.terminate(Duration::from_secs(20)).await?;
        assert!(
            status.success(),
            "{}: {status}\n{}",
            process.instance,
            process.log()
        );
    }
    batch.app.stop().await
}

async fn a_killed_process_loses_nothing(backend: Backend) -> anyhow::Result<()> {
    const PHOTOS: u32 = 45;
    // A short ack wait, so the dead process's photos come back within the test's patience.
    // processor-0 starts alone, so the whole batch is waiting for it: when it has finished its
    // first photo it is surely holding more (two in flight for its one core).
    let mut batch = Batch::start(backend, 2, 1, PHOTOS, PHOTO_SIZE).await?;
    let mut seen = ProcessedBy::new();
    read_processed(&mut batch.processed, &mut seen, 1).await?;
    batch.processes[0].kill()?;
    let held = image_consumer(&batch.app).await?.num_ack_pending;
    assert!(held > 0, "nothing was in flight when the process died");

    let mut survivors = start_processes(&batch.app, 1..3).await?;
    read_processed(&mut batch.processed, &mut seen, PHOTOS as usize).await?;
    batch.assert_applied_exactly_once(PHOTOS).await?;

    // What the dead process held was delivered again, to the survivors, who did the rest.
    let consumer = image_consumer(&batch.app).await?;
    assert!(
        consumer.delivered.consumer_sequence >= u64::from(PHOTOS) + held as u64,
        "{} deliveries of {PHOTOS} photos, {held} held by the dead process",
        consumer.delivered.consumer_sequence
    );
    assert_eq!(consumer.num_ack_pending, 0);
    assert_eq!(consumer.num_pending, 0);
    let by_survivors: usize = seen
        .values()
        .filter(|instances| instances.iter().any(|i| i != "processor-0"))
        .count();
    assert!(by_survivors as u32 >= PHOTOS - 1, "{seen:?}");
    for process in &mut survivors {
        let status = process.terminate(Duration::from_secs(20)).await?;
        assert!(status.success(), "{}: {status}", process.instance);
    }
    batch.app.stop().await
}

async fn sigterm_finishes_or_hands_back_the_work(backend: Backend) -> anyhow::Result<()> {
    const PHOTOS: u32 = 30;
    // Production's ack wait: anything the stopped process kept would be stuck for a minute,
    // which the consumer's state below would show.
    let mut batch = Batch::start(backend, 60, 1, PHOTOS, PHOTO_SIZE).await?;
    let mut seen = ProcessedBy::new();
    read_processed(&mut batch.processed, &mut seen, 1).await?;
    let first = &mut batch.processes[0];
    let status = first.terminate(Duration::from_secs(30)).await?;
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        first.log()
    );
    // What it finished before exiting.
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(300), batch.processed.next()).await
    {
        let event: Value = serde_json::from_slice(&message.payload)?;
        seen.entry(event["file"]["seq"].as_u64().unwrap_or(u64::MAX))
            .or_default()
            .push(first.instance.clone());
    }
    let done_by_first = seen.len() as u32;
    assert!(done_by_first < PHOTOS, "the first process did everything");

    // Everything else can be taken by another instance at once: nothing waits for an ack
    // timeout. Taken here the way an instance takes work, then handed back.
    let stream = batch.app.bus.js.get_stream(PIPELINE_STREAM).await?;
    let consumer: PullConsumer = stream
        .get_consumer(consumers::IMAGE_PROCESSOR)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let available: Vec<_> = consumer
        .fetch()
        .max_messages(PHOTOS as usize)
        .messages()
        .await?
        .collect()
        .await;
    assert_eq!(available.len() as u32, PHOTOS - done_by_first);
    for message in available {
        message
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .ack_with(AckKind::Nak(None))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    let _second = start_processes(&batch.app, 1..2).await?;
    read_processed(&mut batch.processed, &mut seen, PHOTOS as usize).await?;
    batch.assert_applied_exactly_once(PHOTOS).await?;
    batch.app.stop().await
}
