//! The metrics an operator watches, recorded by the services as a batch goes through.

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::InMemoryMetricExporter;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::trace::InMemorySpanExporter;
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{Backend, TestApp, zip_of};

on_each_backend!(a_batch_is_counted_by_stage);

/// The data points of one metric in the last export, as (attributes, value); histograms give
/// their count of recordings.
fn points(exported: &[ResourceMetrics], name: &str) -> Vec<(Vec<KeyValue>, f64)> {
    let Some(last) = exported.last() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for scope in last.scope_metrics() {
        for metric in scope.metrics().filter(|m| m.name() == name) {
            match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => out.extend(
                    sum.data_points()
                        .map(|p| (p.attributes().cloned().collect(), p.value() as f64)),
                ),
                AggregatedMetrics::U64(MetricData::Gauge(gauge)) => out.extend(
                    gauge
                        .data_points()
                        .map(|p| (p.attributes().cloned().collect(), p.value() as f64)),
                ),
                AggregatedMetrics::F64(MetricData::Histogram(histogram)) => out.extend(
                    histogram
                        .data_points()
                        .map(|p| (p.attributes().cloned().collect(), p.count() as f64)),
                ),
                _ => {}
            }
        }
    }
    out
}

/// The value of the data point whose attributes include `key=value` (0 when there is none).
fn value_where(points: &[(Vec<KeyValue>, f64)], key: &str, value: &str) -> f64 {
    points
        .iter()
        .filter(|(attributes, _)| {
            attributes
                .iter()
                .any(|kv| kv.key.as_str() == key && kv.value.as_str() == value)
        })
        .map(|(_, v)| v)
        .sum()
}

async fn a_batch_is_counted_by_stage(backend: Backend) -> anyhow::Result<()> {
    let metrics = InMemoryMetricExporter::default();
    pictureday_platform::telemetry::init_with_exporters(
        "pictureday-tests",
        InMemorySpanExporter::default(),
        metrics.clone(),
    );
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 4).await?;
    // Three photos and a file that only looks like one: the image-processor rejects it.
    let archive = zip_of(&[
        ("0.jpg", jpeg(photo(400, 500, 0))?),
        ("1.jpg", jpeg(photo(400, 500, 1))?),
        ("2.jpg", jpeg(photo(400, 500, 2))?),
        ("3.jpg", b"%PDF-1.4 not a photo".to_vec()),
        ("nobody.jpg", jpeg(photo(400, 500, 9))?),
    ])?;
    let job_id = &app.import_archive(&token, "springfield", archive).await?;
    let job = app.wait_for_job(&token, "springfield", job_id).await?;
    assert_eq!(job["counts"]["applied"], 3, "{job}");
    assert_eq!(job["counts"]["rejected"], 1, "{job}");
    assert_eq!(job["counts"]["unmatched"], 1, "{job}");

    pictureday_platform::telemetry::flush_metrics();
    let exported = metrics.get_finished_metrics()?;
    let count = |name: &str| points(&exported, name).iter().map(|(_, v)| v).sum::<f64>();
    assert_eq!(count("pictureday.photos.processed"), 3.0);
    let rejected = points(&exported, "pictureday.photos.rejected");
    assert_eq!(value_where(&rejected, "stage", "image-processor"), 1.0);
    assert_eq!(count("pictureday.photos.rejected"), 1.0);
    let published = points(&exported, "pictureday.events.published");
    for (kind, expected) in [
        ("job.created", 1.0),
        ("photo.ingested", 5.0),
        ("photo.matched", 4.0),
        ("photo.unmatched", 1.0),
        ("photo.processed", 3.0),
        ("photo.rejected", 1.0),
        ("photo.applied", 3.0),
    ] {
        assert_eq!(value_where(&published, "kind", kind), expected, "{kind}");
    }
    // Every message each stage handled, once: nothing was redelivered.
    let handled = points(&exported, "pictureday.stage.duration");
    assert_eq!(value_where(&handled, "stage", "matcher"), 5.0);
    assert_eq!(value_where(&handled, "stage", "image-processor"), 4.0);
    assert_eq!(value_where(&handled, "stage", "roster"), 3.0);
    let waited = points(&exported, "pictureday.stage.wait");
    assert_eq!(value_where(&waited, "stage", "image-processor"), 4.0);
    assert_eq!(count("pictureday.redeliveries"), 0.0);
    // Every consumer's backlog is reported.
    let pending = points(&exported, "pictureday.consumer.pending");
    for consumer in ["matcher", "image-processor", "roster", "reporting"] {
        assert!(
            pending
                .iter()
                .any(|(attributes, _)| attributes.iter().any(|kv| kv.value.as_str() == consumer)),
            "no backlog for {consumer}: {pending:?}"
        );
    }
    app.stop().await
}
