//! The image-processor: the horizontally scaled stage. Replicas share one durable consumer, each
//! working on as many photos at once as it has cores; a photo's renditions are written to storage
//! (one object per photo) before `photo.processed` is published, and the message is acked only
//! after that.

mod decoders;
pub mod packing;
mod source;

use std::sync::Arc;

use pictureday_contract::events::{
    self, DecodeError, Dependency, PACKED_RENDITIONS_VERSION, PhotoMatched, PhotoProcessed,
};
use pictureday_contract::ids::photo_id;
use pictureday_contract::keys;
use pictureday_contract::renditions::RENDITIONS;
use pictureday_contract::subjects::{Kind, consumers};
use pictureday_imaging::{Config, Limits, RenditionSpec};
use pictureday_platform::Connections;
use pictureday_platform::bus::{Bus, Outgoing};
use pictureday_platform::config::PhotoLimits;
use pictureday_platform::runtime::{Component, Dependency as Needs};
use pictureday_platform::stage::{self, Failure, Handled, Incoming, Stage};
use pictureday_platform::storage::{Storage, StorageError};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::decoders::Decoders;
use crate::source::SourceError;

/// Photos in flight per decoding thread, and at least [`MIN_IN_FLIGHT`] in all. A photo spends
/// most of its time in flight waiting on storage and JetStream, not decoding: with one decoding
/// thread and four photos in flight a distributed image-processor kept its core 30% busy, with
/// sixteen it did over twice the work.
const IN_FLIGHT_PER_WORKER: usize = 4;
const MIN_IN_FLIGHT: usize = 16;

/// Source bytes read and not yet decoded, at most, whatever the photos in flight: sixteen
/// vendor photos of 2 MB are 32 MB, but sixteen files at the 50 MB limit would be 800 MB. Counted
/// in KiB (a semaphore's permits); a file larger than the whole budget waits for all of it.
const SOURCE_KIB_IN_HAND: u32 = 128 * 1024;

/// The image-processor needs the bus and storage, and no database.
pub async fn component(
    connections: &Connections,
    shutdown: &CancellationToken,
) -> anyhow::Result<Component> {
    let bus = connections.bus().await?;
    let storage = connections.storage().await?;
    let workers = connections.settings().image_workers;
    let processor = Arc::new(ImageProcessor {
        bus: bus.clone(),
        storage: storage.clone(),
        decoders: Decoders::start(workers, imaging_config(&connections.settings().photos))?,
        source_budget: Semaphore::new(SOURCE_KIB_IN_HAND as usize),
        max_file_bytes: connections.settings().photos.max_file_bytes,
        instance: connections.settings().instance.clone(),
    });
    let shutdown = shutdown.clone();
    Ok(Component::new("image-processor")
        .worker("process", move || {
            let (processor, shutdown) = (processor.clone(), shutdown.clone());
            async move {
                // While photos wait on storage, on JetStream or for their next pull, the ones in
                // hand keep every decoding thread busy.
                let in_flight = (workers * IN_FLIGHT_PER_WORKER).max(MIN_IN_FLIGHT);
                stage::run_concurrent(&*processor, &processor.bus, in_flight, shutdown).await
            }
        })
        .depends_on(Needs::Nats(bus))
        .depends_on(Needs::Storage(storage)))
}

struct ImageProcessor {
    bus: Bus,
    storage: Storage,
    decoders: Decoders,
    /// Source bytes in hand (KiB): taken before a photo is read, given back once it is decoded.
    source_budget: Semaphore,
    /// The largest file read from storage (the imaging limit).
    max_file_bytes: u64,
    instance: String,
}

impl Stage for ImageProcessor {
    type Event = PhotoMatched;
    const CONSUMER: &'static str = consumers::IMAGE_PROCESSOR;
    const SPAN: &'static str = "image_processor.process";

    fn decode(&self, subject: &str, payload: &[u8]) -> Result<PhotoMatched, DecodeError> {
        events::decode(subject, payload)
    }

    fn rejection(&self, event: &PhotoMatched, reason: String) -> Option<Outgoing> {
        Outgoing::rejection_of(
            consumers::IMAGE_PROCESSOR,
            &event.file,
            Some(event.person_id.clone()),
            reason,
        )
    }

    async fn probe(&self, _dependency: Dependency) -> bool {
        self.storage.probe().await.is_ok()
    }

    async fn handle(&self, batch: &[Incoming<PhotoMatched>]) -> Vec<Handled> {
        let mut results = Vec::with_capacity(batch.len());
        for incoming in batch {
            let result = self
                .process(&incoming.event)
                .instrument(incoming.span.clone())
                .await;
            // Made in the photo's span, so the event carries its trace on to roster.
            results.push(result.and_then(|processed| {
                incoming.span.in_scope(|| {
                    let file = &incoming.event.file;
                    Outgoing::new(
                        Kind::Processed.subject(&file.district, &file.job_id),
                        file.msg_id("processed"),
                        &processed,
                    )
                    .map(|event| vec![event])
                    .map_err(|e| {
                        Failure::Permanent(format!("its result could not be recorded: {e}"))
                    })
                })
            }));
        }
        results
    }
}

/// A storage failure: an outage keeps the photo; a missing or invalid object never appears.
/// The reason people read names no storage key: the details go to the log.
pub(crate) fn source_failure(error: SourceError) -> Failure {
    match error {
        SourceError::Input(reason) => Failure::Permanent(reason),
        SourceError::Storage(error) => storage_failure(error),
    }
}

fn storage_failure(error: StorageError) -> Failure {
    if error.is_outage() {
        Failure::Unavailable(Dependency::Storage, error.into())
    } else {
        tracing::warn!(%error, "an uploaded file is not in storage");
        Failure::Permanent(
            "the uploaded file could not be read back from storage; upload it again".into(),
        )
    }
}

/// The imaging settings the service runs with: the shared rendition sizes, and the file size
/// and portrait shape its settings allow.
pub fn imaging_config(photos: &PhotoLimits) -> Config {
    Config {
        limits: Limits {
            max_input_bytes: photos.max_file_bytes,
            min_width: photos.min_width,
            min_height: photos.min_height,
            min_aspect: photos.min_aspect,
            max_aspect: photos.max_aspect,
            ..Limits::default()
        },
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

impl ImageProcessor {
    async fn process(&self, event: &PhotoMatched) -> Result<PhotoProcessed, Failure> {
        // An event is a claim, not proof: its source must be one of its own upload's objects,
        // or a forged event could make another district's photo this person's.
        let file = &event.file;
        if !keys::belongs_to_upload(event.source.key(), &file.district, &file.job_id) {
            tracing::warn!(district = %file.district, job = %file.job_id, "photo.matched names a source outside its upload; refused");
            return Err(Failure::Permanent(
                "its source is not part of its own upload; the event was refused".into(),
            ));
        }
        let kib = u32::try_from(event.source.size().div_ceil(1024))
            .unwrap_or(u32::MAX)
            .min(SOURCE_KIB_IN_HAND);
        let processed = {
            // `None` only if the semaphore were closed, which it never is.
            let _in_hand = self.source_budget.acquire_many(kib).await.ok();
            let fetched = source::read(&self.storage, &event.source, self.max_file_bytes)
                .await
                .map_err(source_failure)?;
            // Unpacked and decoded on a decoding thread: one hand-off per photo.
            self.decoders.process(fetched).await?
        };
        let file = &event.file;
        let photo_id = photo_id(&file.job_id, file.seq);
        let key = keys::renditions(&file.district, &photo_id);
        let (packed, renditions) = packing::pack(processed.renditions, &key);
        self.storage
            .put_bytes(&key, packed.into())
            .await
            .map_err(storage_failure)?;
        Ok(PhotoProcessed {
            v: PACKED_RENDITIONS_VERSION,
            file: file.clone(),
            person_id: event.person_id.clone(),
            photo_id,
            source_format: processed.format.name().to_owned(),
            renditions,
            processed_by: self.instance.clone(),
            options: event.options,
        })
    }
}
