//! Logs and traces.
//!
//! Logs: readable lines by default, JSON lines with `PICTUREDAY_LOG_FORMAT=json` (production); the
//! level comes from `RUST_LOG` (default `info`).
//!
//! Traces and metrics: OpenTelemetry, exported over OTLP/HTTP when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) is set and `OTEL_TRACES_EXPORTER` /
//! `OTEL_METRICS_EXPORTER` is not `none`; `OTEL_SERVICE_NAME` names the service and
//! `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds) sets how often metrics are sent. The metrics
//! themselves are listed in [`crate::metrics`]. The W3C trace context travels in NATS message headers
//! (`traceparent`, `tracestate`), so one trace follows a photo from the upload request through
//! every service.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::OnceLock;

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
static METER_PROVIDER: OnceLock<SdkMeterProvider> = OnceLock::new();

/// Whether OTLP export of one signal (`TRACES`, `METRICS`) is configured and not turned off.
fn otlp_configured(signal: &str) -> bool {
    let exporter_off = std::env::var(format!("OTEL_{signal}_EXPORTER")).is_ok_and(|v| v == "none");
    let endpoint = [
        "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
        format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"),
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty()));
    endpoint && !exporter_off
}

/// Sets up logging and tracing for a process whose default service name is `service`. A second
/// call (tests start several services in one process) changes nothing.
pub fn init(service: &str) {
    let mut builder = SdkTracerProvider::builder().with_resource(resource(service));
    if otlp_configured("TRACES") {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(error) => eprintln!("OpenTelemetry: cannot export traces over OTLP: {error}"),
        }
    }
    let mut meters = SdkMeterProvider::builder().with_resource(resource(service));
    if otlp_configured("METRICS") {
        match opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => meters = meters.with_reader(PeriodicReader::builder(exporter).build()),
            Err(error) => eprintln!("OpenTelemetry: cannot export metrics over OTLP: {error}"),
        }
    }
    install(builder.build(), meters.build());
}

/// Like [`init`], sending every span to `spans` as it ends and metrics to `metrics` when
/// [`flush_metrics`] is called (tests read them back this way).
pub fn init_with_exporters<S, M>(service: &str, spans: S, metrics: M)
where
    S: SpanExporter + 'static,
    M: PushMetricExporter,
{
    install(
        SdkTracerProvider::builder()
            .with_resource(resource(service))
            .with_simple_exporter(spans)
            .build(),
        SdkMeterProvider::builder()
            .with_resource(resource(service))
            .with_reader(PeriodicReader::builder(metrics).build())
            .build(),
    );
}

/// Sends the metrics gathered so far to the exporter.
pub fn flush_metrics() {
    if let Some(Err(error)) = METER_PROVIDER.get().map(SdkMeterProvider::force_flush) {
        eprintln!("OpenTelemetry: flushing metrics: {error}");
    }
}

fn resource(service: &str) -> Resource {
    let builder = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_ok() {
        builder.build()
    } else {
        builder.with_service_name(service.to_owned()).build()
    }
}

fn install(provider: SdkTracerProvider, meters: SdkMeterProvider) {
    if PROVIDER.set(provider.clone()).is_err() {
        return;
    }
    if METER_PROVIDER.set(meters.clone()).is_ok() {
        opentelemetry::global::set_meter_provider(meters);
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,async_nats=warn"));
    let json = std::env::var("PICTUREDAY_LOG_FORMAT").is_ok_and(|v| v == "json");
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(json.then(|| tracing_subscriber::fmt::layer().json()))
        .with((!json).then(|| {
            // Colours only for a person at a terminal, not in log files.
            tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal())
        }))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("pictureday")))
        .try_init();
    opentelemetry::global::set_tracer_provider(provider);
}

/// Sends spans and metrics not yet exported; call before the process exits.
pub fn shutdown() {
    if let Some(Err(error)) = PROVIDER.get().map(SdkTracerProvider::force_flush) {
        eprintln!("OpenTelemetry: flushing spans: {error}");
    }
    flush_metrics();
}

/// The current span's trace context as W3C headers, for an event about to be published.
pub fn current_trace_headers() -> Vec<(String, String)> {
    let mut carrier: HashMap<String, String> = HashMap::new();
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.into_iter().collect()
}

struct NatsHeaders<'a>(&'a HeaderMap);

impl Extractor for NatsHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        ["traceparent", "tracestate"]
            .into_iter()
            .filter(|k| self.0.get(*k).is_some())
            .collect()
    }
}

/// A span for handling one message, a child of the trace the message's headers carry.
pub fn message_span(
    stage: &'static str,
    headers: Option<&HeaderMap>,
    subject: &str,
) -> tracing::Span {
    let span = tracing::info_span!("message", otel.name = stage, subject = subject);
    if let Some(headers) = headers {
        let parent = TraceContextPropagator::new().extract(&NatsHeaders(headers));
        if let Err(error) = span.set_parent(parent) {
            tracing::debug!(%error, "could not attach the message's trace context");
        }
    }
    span
}

/// Continues a trace an HTTP client started (a `traceparent` request header), if any.
pub fn follow_http(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    let carrier: HashMap<String, String> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|k| Some((k.to_owned(), headers.get(k)?.to_str().ok()?.to_owned())))
        .collect();
    if carrier.is_empty() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    if let Err(error) = span.set_parent(parent) {
        tracing::debug!(%error, "could not attach the request's trace context");
    }
}
