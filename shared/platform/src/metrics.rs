//! The metrics every service records, with OpenTelemetry (exported by [`crate::telemetry`]).
//!
//! | name | kind | attributes | meaning |
//! |---|---|---|---|
//! | `pictureday.photos.processed` | counter | | photos the image-processor turned into renditions |
//! | `pictureday.photos.rejected` | counter | `stage` | files recorded as rejected, by the stage that rejected them |
//! | `pictureday.events.published` | counter | `kind` | events stored by JetStream (duplicates not counted) |
//! | `pictureday.stage.duration` | histogram (s) | `stage` | time a stage spent handling a message |
//! | `pictureday.stage.wait` | histogram (s) | `stage` | time from an event's publication to its delivery to the stage |
//! | `pictureday.redeliveries` | counter | `stage` | deliveries after the first (a worker died, timed out or asked for a retry) |
//! | `pictureday.handed_back` | counter | `stage` | messages returned unstarted at shutdown |
//! | `pictureday.dead_letters` | counter | `stage` | messages a stage could not read or handle, set aside on the dead-letter stream |
//! | `pictureday.replayed` | counter | | files whose events were published again after they stalled with no outcome |
//! | `pictureday.consumer.pending` | gauge | `consumer` | messages not yet delivered to the consumer (its lag) |
//! | `pictureday.consumer.ack_pending` | gauge | `consumer` | messages delivered and not yet acked |
//!
//! `stage` is the durable consumer's name (`matcher`, `image-processor`, `roster`, `reporting`),
//! or `ingest` for files refused before matching.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, ObservableGauge};

pub struct Metrics {
    pub photos_processed: Counter<u64>,
    pub photos_rejected: Counter<u64>,
    pub events_published: Counter<u64>,
    pub stage_duration: Histogram<f64>,
    pub stage_wait: Histogram<f64>,
    pub redeliveries: Counter<u64>,
    pub handed_back: Counter<u64>,
    pub dead_letters: Counter<u64>,
    pub replayed: Counter<u64>,
    _consumer_pending: ObservableGauge<u64>,
    _consumer_ack_pending: ObservableGauge<u64>,
}

/// What the last poll of each durable consumer this process works for said: (pending, ack pending).
static CONSUMER_STATE: Mutex<BTreeMap<&'static str, (u64, u64)>> = Mutex::new(BTreeMap::new());

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Bucket bounds in seconds, from a fast JetStream round trip to a batch stuck behind a backlog.
const SECONDS_BOUNDS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The instruments, made on first use from the global meter provider (so after
/// [`crate::telemetry::init`]).
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(|| {
        let meter = opentelemetry::global::meter("pictureday");
        let gauge = |name: &'static str, description: &'static str, pick: fn((u64, u64)) -> u64| {
            meter
                .u64_observable_gauge(name)
                .with_description(description)
                .with_callback(move |observer| {
                    let state = CONSUMER_STATE.lock().map(|s| s.clone()).unwrap_or_default();
                    for (consumer, counts) in state {
                        observer.observe(pick(counts), &[KeyValue::new("consumer", consumer)]);
                    }
                })
                .build()
        };
        Metrics {
            photos_processed: meter
                .u64_counter("pictureday.photos.processed")
                .with_description("Photos turned into renditions")
                .build(),
            photos_rejected: meter
                .u64_counter("pictureday.photos.rejected")
                .with_description("Files recorded as rejected")
                .build(),
            events_published: meter
                .u64_counter("pictureday.events.published")
                .with_description("Events stored by JetStream")
                .build(),
            stage_duration: meter
                .f64_histogram("pictureday.stage.duration")
                .with_unit("s")
                .with_description("Time a stage spent handling a message")
                .with_boundaries(SECONDS_BOUNDS.to_vec())
                .build(),
            stage_wait: meter
                .f64_histogram("pictureday.stage.wait")
                .with_unit("s")
                .with_description("Time from an event's publication to its delivery")
                .with_boundaries(SECONDS_BOUNDS.to_vec())
                .build(),
            redeliveries: meter
                .u64_counter("pictureday.redeliveries")
                .with_description("Deliveries of a message after its first")
                .build(),
            handed_back: meter
                .u64_counter("pictureday.handed_back")
                .with_description("Messages returned unstarted at shutdown")
                .build(),
            dead_letters: meter
                .u64_counter("pictureday.dead_letters")
                .with_description("Messages a stage could not read or handle, set aside")
                .build(),
            replayed: meter
                .u64_counter("pictureday.replayed")
                .with_description("Files whose events were published again after they stalled")
                .build(),
            _consumer_pending: gauge(
                "pictureday.consumer.pending",
                "Messages not yet delivered to the consumer",
                |(pending, _)| pending,
            ),
            _consumer_ack_pending: gauge(
                "pictureday.consumer.ack_pending",
                "Messages delivered and not yet acked",
                |(_, ack_pending)| ack_pending,
            ),
        }
    })
}

pub fn stage(stage: &'static str) -> [KeyValue; 1] {
    [KeyValue::new("stage", stage)]
}

/// Records a message's handling by `stage`.
pub fn record_handled(stage_name: &'static str, handling: Duration) {
    metrics()
        .stage_duration
        .record(handling.as_secs_f64(), &stage(stage_name));
}

/// Records a delivery: how long the message waited, and whether it is a redelivery.
pub fn record_delivery(stage_name: &'static str, waited: Option<Duration>, attempt: i64) {
    let m = metrics();
    if let Some(waited) = waited {
        m.stage_wait
            .record(waited.as_secs_f64(), &stage(stage_name));
    }
    if attempt > 1 {
        m.redeliveries.add(1, &stage(stage_name));
    }
}

/// Remembers a consumer's backlog for the gauges.
pub fn record_consumer_state(consumer: &'static str, pending: u64, ack_pending: u64) {
    // Touch the instruments so the gauges are registered even before any message arrives.
    let _ = metrics();
    if let Ok(mut state) = CONSUMER_STATE.lock() {
        state.insert(consumer, (pending, ack_pending));
    }
}
