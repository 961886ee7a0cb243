//! The image-processor: the horizontally scaled stage. Replicas share one durable consumer, each
//! working on as many photos at once as it has cores; a photo's renditions are written to storage
//! before `photo.processed` is published, and the message is acked only after that.

mod source;

use std::cell::RefCell;

use pictureday_imaging::{Config, Limits, Processor, RenditionSpec};
use pictureday_shared::Context;
use pictureday_shared::bus::{self, Delivery, Disposition, Kind, Outgoing, consumers};
use pictureday_shared::events::{
    PhotoMatched, PhotoProcessed, PhotoRejected, RenditionRef, SCHEMA_VERSION,
};
use pictureday_shared::ids::photo_id;
use pictureday_shared::renditions::RENDITIONS;
use pictureday_shared::runtime::Component;
use pictureday_shared::storage::keys;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::source::SourceError;

pub fn component(ctx: &Context, shutdown: &CancellationToken) -> anyhow::Result<Component> {
    let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
    Ok(Component::new("image-processor")
        .worker("process", move || run(ctx.clone(), shutdown.clone())))
}

pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let workers = ctx.settings.image_workers;
    // Twice as many photos in flight as cores: while one photo waits on storage or JetStream,
    // another's pixels keep the core busy. The semaphore keeps decoding to one photo per core.
    let cores = Semaphore::new(workers);
    let cores = &cores;
    bus::consume_concurrently(
        &ctx.js,
        &ctx.settings.topology,
        consumers::IMAGE_PROCESSOR,
        workers * 2,
        shutdown,
        |delivery| handle(&ctx, cores, delivery),
    )
    .await
}

/// The imaging settings the service runs with: the shared rendition sizes.
pub fn imaging_config() -> Config {
    Config {
        limits: Limits::default(),
        renditions: RENDITIONS
            .iter()
            .map(|r| RenditionSpec {
                name: r.name.to_owned(),
                width: r.width,
                height: r.height,
            })
            .collect(),
        jpeg_quality: 85,
    }
}

thread_local! {
    /// One processor per blocking thread, so decoder, resizer and encoder state is reused.
    static PROCESSOR: RefCell<Option<Processor>> = const { RefCell::new(None) };
}

fn process_on_this_thread(
    bytes: &[u8],
) -> Result<pictureday_imaging::Processed, pictureday_imaging::ImageError> {
    PROCESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let processor = slot.get_or_insert_with(|| Processor::new(imaging_config()));
        processor.process(bytes)
    })
}

enum Failure {
    /// The file can never be processed: record it as rejected.
    Input(String),
    /// Storage or the bus failed: try again later.
    Transient(anyhow::Error),
}

async fn handle(ctx: &Context, cores: &Semaphore, delivery: Delivery) -> Disposition {
    let span = delivery.span("image_processor.process");
    handle_in_span(ctx, cores, delivery).instrument(span).await
}

async fn handle_in_span(ctx: &Context, cores: &Semaphore, delivery: Delivery) -> Disposition {
    let event: PhotoMatched = match delivery.decode() {
        Ok(e) => e,
        Err(error) => {
            tracing::error!(%error, subject = %delivery.message.subject, "undecodable matched event; dropped");
            return Disposition::Ack;
        }
    };
    let outcome = match process(ctx, cores, &event).await {
        Ok(processed) => Outgoing::new(
            Kind::Processed.subject(&event.file.district, &event.file.job_id),
            event.file.msg_id("processed"),
            &processed,
        ),
        Err(Failure::Input(reason)) => rejected(&event, reason),
        Err(Failure::Transient(error)) if delivery.is_last_attempt() => rejected(
            &event,
            format!(
                "could not be processed after {} attempts: {error:#}",
                bus::MAX_DELIVER
            ),
        ),
        Err(Failure::Transient(error)) => {
            tracing::warn!(error = format!("{error:#}"), file = %event.file.file_name, "processing failed; will retry");
            return Disposition::Retry(delivery.retry_delay());
        }
    };
    let published = match outcome {
        Ok(event) => ctx.publisher.publish(event).await,
        Err(error) => Err(error),
    };
    match published {
        Ok(()) => Disposition::Ack,
        Err(error) => {
            tracing::warn!(%error, "publishing processing result failed; will retry");
            Disposition::Retry(delivery.retry_delay())
        }
    }
}

fn rejected(event: &PhotoMatched, reason: String) -> Result<Outgoing, bus::BusError> {
    PhotoRejected::outgoing(
        consumers::IMAGE_PROCESSOR,
        &event.file,
        Some(event.person_id.clone()),
        reason,
    )
}

async fn process(
    ctx: &Context,
    cores: &Semaphore,
    event: &PhotoMatched,
) -> Result<PhotoProcessed, Failure> {
    let limit = Limits::default().max_input_bytes;
    let bytes = source::read(&ctx.storage, &event.source, limit)
        .await
        .map_err(|e| match e {
            SourceError::Input(reason) => Failure::Input(reason),
            SourceError::Storage(error) => Failure::Transient(error.into()),
        })?;
    let core = cores
        .acquire()
        .await
        .map_err(|e| Failure::Transient(e.into()))?;
    let processed = tokio::task::spawn_blocking(move || process_on_this_thread(&bytes))
        .await
        .map_err(|e| Failure::Transient(e.into()))?
        .map_err(|e| {
            if e.is_input_error() {
                Failure::Input(e.to_string())
            } else {
                Failure::Transient(e.into())
            }
        })?;
    drop(core);
    let file = &event.file;
    let photo_id = photo_id(&file.job_id, file.seq);
    let mut renditions = Vec::with_capacity(processed.renditions.len());
    let mut writes = Vec::with_capacity(processed.renditions.len());
    for rendition in processed.renditions {
        let key = keys::rendition(&file.district, &photo_id, &rendition.name);
        renditions.push(RenditionRef {
            name: rendition.name,
            width: rendition.width,
            height: rendition.height,
            bytes: rendition.jpeg.len() as u64,
            key: key.clone(),
        });
        writes.push(async move { ctx.storage.put_bytes(&key, rendition.jpeg.into()).await });
    }
    for written in futures::future::join_all(writes).await {
        written.map_err(|e| Failure::Transient(e.into()))?;
    }
    Ok(PhotoProcessed {
        v: SCHEMA_VERSION,
        file: file.clone(),
        person_id: event.person_id.clone(),
        photo_id,
        source_format: processed.format.name().to_owned(),
        renditions,
        processed_by: ctx.settings.instance.clone(),
    })
}
