//! One trace follows a photo from the upload request through every service, carried in NATS
//! message headers.

use std::collections::BTreeSet;

use opentelemetry::trace::TraceId;
use opentelemetry_sdk::trace::InMemorySpanExporter;
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{Backend, TestApp, file_part, zip_of};
use reqwest::multipart::Form;
use serde_json::Value;

on_each_backend!(one_trace_spans_all_five_services);

async fn one_trace_spans_all_five_services(backend: Backend) -> anyhow::Result<()> {
    // Installed before the app starts, so every service's spans land here.
    let exporter = InMemorySpanExporter::default();
    pictureday_platform::telemetry::init_with_exporters(
        "pictureday-tests",
        exporter.clone(),
        opentelemetry_sdk::metrics::InMemoryMetricExporter::default(),
    );
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    let (status, _) = app
        .upload_roster(
            &token,
            "springfield",
            "role,sis_id,student_number,first_name,last_name\nstudent,S1,1,A,B\n",
        )
        .await?;
    assert_eq!(status, 200);

    // The client started the trace: the upload continues it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let archive = zip_of(&[("1.jpg", jpeg(photo(400, 500, 1))?)])?;
    let accepted: Value = app
        .http
        .post(app.url("/v1/districts/springfield/imports"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .multipart(Form::new().part("archive", file_part("a.zip", archive)))
        .send()
        .await?
        .json()
        .await?;
    let job_id = accepted["job_id"].as_str().unwrap_or_default().to_owned();
    let job = app.wait_for_job(&token, "springfield", &job_id).await?;
    assert_eq!(job["state"], "finished");

    let expected = TraceId::from_hex(trace_id)?;
    let spans = exporter.get_finished_spans()?;
    let stages: BTreeSet<String> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == expected)
        .map(|s| s.name.to_string())
        .collect();
    for stage in [
        "ingest.upload",
        "ingest.publish",
        "matcher.match",
        "image_processor.process",
        "roster.apply",
        "reporting.project",
    ] {
        assert!(
            stages.contains(stage),
            "{stage} is not in the trace: {stages:?}"
        );
    }
    // The image-processor's span is a child of the matcher's: the context crossed NATS.
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name && s.span_context.trace_id() == expected)
    };
    let matcher = find("matcher.match").ok_or_else(|| anyhow::anyhow!("no matcher span"))?;
    let processor =
        find("image_processor.process").ok_or_else(|| anyhow::anyhow!("no processor span"))?;
    assert_eq!(processor.parent_span_id, matcher.span_context.span_id());
    app.stop().await
}
