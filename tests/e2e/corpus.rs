//! The hostile-input corpus (`pictureday_tests::corpus`) through the public API, every case
//! against one server: each case's exact outcome, then the server still healthy and every job
//! final. `scripts/hostile-corpus.sh DIR` writes the same cases to files.

use std::time::Instant;

use pictureday_tests::corpus::{self, Case, DISTRICT, Expected, ROSTER_DISTRICT, ROSTER_SIZE, Row};
use pictureday_tests::{Backend, TestApp, file_part};
use reqwest::multipart::Form;
use serde_json::Value;

on_each_backend!(every_hostile_input_gets_its_exact_outcome);

fn form(case: &Case) -> Option<Form> {
    let with_files = |form: Form, files: &[(String, Vec<u8>)]| {
        files.iter().fold(form, |form, (name, bytes)| {
            form.part("files", file_part(name, bytes.clone()))
        })
    };
    Some(match &case.submit {
        corpus::Submit::Files(files) => with_files(Form::new(), files),
        corpus::Submit::Archive { file_name, bytes } => {
            Form::new().part("archive", file_part(file_name, bytes.clone()))
        }
        corpus::Submit::MappingAndFiles { mapping, files } => with_files(
            Form::new().part("mapping", file_part("mapping.csv", mapping.clone())),
            files,
        ),
        corpus::Submit::MappingAndArchive { mapping, archive } => Form::new()
            .part("mapping", file_part("mapping.csv", mapping.clone()))
            .part("archive", file_part("photos.zip", archive.clone())),
        corpus::Submit::Roster(_) => return None,
    })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|w| w.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn job_count(app: &TestApp, token: &str) -> anyhow::Result<usize> {
    let jobs = app
        .get_json(token, &format!("/v1/districts/{DISTRICT}/jobs?limit=1000"))
        .await?;
    Ok(jobs["items"].as_array().map_or(0, Vec::len))
}

/// Sends the case and describes what happened in the shape of its expectation. Lines the
/// expectation wants in a CSV are kept only if present; `notes` collects anything else amiss.
async fn outcome(
    app: &TestApp,
    token: &str,
    roster_token: &str,
    case: &Case,
    notes: &mut Vec<String>,
    applied: &mut Vec<String>,
) -> anyhow::Result<Expected> {
    if let corpus::Submit::Roster(bytes) = &case.submit {
        let response = app
            .http
            .post(app.url(&format!("/v1/districts/{ROSTER_DISTRICT}/roster")))
            .bearer_auth(roster_token)
            .header("content-type", "text/csv")
            .body(bytes.clone())
            .send()
            .await?;
        let status = response.status().as_u16();
        let mut body: Value = response.json().await?;
        // The roster import's id differs every run.
        if let Some(fields) = body.as_object_mut() {
            fields.remove("import");
        }
        let report = app
            .get(
                roster_token,
                &format!("/v1/districts/{ROSTER_DISTRICT}/reports/missing-photos.csv"),
            )
            .await?
            .text()
            .await?;
        let wanted = case.expected.report_lines();
        let present: Vec<String> = wanted
            .into_iter()
            .filter(|l| report.lines().any(|r| r == l))
            .collect();
        notes.push(format!("missing-photos.csv now:\n{report}"));
        return Ok(Expected::Roster {
            status,
            body,
            report_lines: present,
        });
    }
    let jobs_before = job_count(app, token).await?;
    let form = form(case).unwrap_or_default();
    let (status, accepted) = app.import(token, DISTRICT, form).await?;
    if status != 202 {
        let jobs_after = job_count(app, token).await?;
        if jobs_after != jobs_before {
            notes.push(format!(
                "refused, yet {} job(s) were recorded",
                jobs_after - jobs_before
            ));
        }
        return Ok(Expected::Refused {
            status,
            code: match accepted["error"]["code"].as_str() {
                Some("unprocessable") => "unprocessable",
                Some("bad_request") => "bad_request",
                Some("payload_too_large") => "payload_too_large",
                Some("internal") => "internal",
                _ => "other",
            },
            message: accepted["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    let job_id = accepted["job_id"].as_str().unwrap_or_default().to_owned();
    let job = app.wait_for_job(token, DISTRICT, &job_id).await?;
    let log = app.log(token, DISTRICT, &job_id).await?;
    applied.extend(
        log.iter()
            .filter(|r| r["outcome"] == "applied" || r["outcome"] == "replaced")
            .filter_map(|r| r["person_id"].as_str().map(str::to_owned)),
    );
    let rows: Vec<Row> = log
        .iter()
        .map(|r| {
            corpus::row(
                r["file_name"].as_str().unwrap_or(""),
                r["outcome"].as_str().unwrap_or(""),
                r["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    if accepted["files"].as_u64() != Some(rows.len() as u64) {
        notes.push(format!(
            "accepted {} files but the log has {} rows",
            accepted["files"],
            rows.len()
        ));
    }
    let csv = app
        .get(
            token,
            &format!("/v1/districts/{DISTRICT}/jobs/{job_id}/log?format=csv"),
        )
        .await?
        .text()
        .await?;
    let wanted = case.expected.csv_lines();
    let present: Vec<String> = wanted
        .into_iter()
        .filter(|l| csv.lines().any(|r| r == l))
        .collect();
    notes.push(format!("CSV log:\n{csv}"));
    Ok(Expected::Job {
        state: match job["state"].as_str() {
            Some("finished") => "finished",
            Some("finished_with_errors") => "finished_with_errors",
            Some("failed") => "failed",
            Some("previewed") => "previewed",
            _ => "other",
        },
        warnings: strings(&job["warnings"]),
        rows,
        csv_lines: present,
    })
}

/// The outcome as the corpus writes it, to compare with (and paste into) the expectation.
fn shown(expected: &Expected) -> String {
    match expected {
        Expected::Job {
            state,
            warnings,
            rows,
            csv_lines,
        } => {
            let mut out = format!("Job {state:?}\n  warnings: {warnings:?}\n  rows:\n");
            for r in rows.iter().take(50) {
                out.push_str(&format!(
                    "    ({:?}, {:?}, {:?}),\n",
                    r.file, r.outcome, r.reason
                ));
            }
            out.push_str(&format!("  csv_lines: {csv_lines:?}"));
            out
        }
        other => format!("{other:?}"),
    }
}

async fn every_hostile_input_gets_its_exact_outcome(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district(DISTRICT, "Corpus").await?;
    app.upload_numbered_roster(&token, DISTRICT, ROSTER_SIZE)
        .await?;
    let roster_token = app
        .create_district(ROSTER_DISTRICT, "Corpus rosters")
        .await?;

    let mut failures = Vec::new();
    let mut applied = Vec::new();
    let only = std::env::var("CORPUS_CASE").ok();
    for case in corpus::cases() {
        if only.as_deref().is_some_and(|o| o != case.name) {
            continue;
        }
        let started = Instant::now();
        let mut notes = Vec::new();
        let got = outcome(&app, &token, &roster_token, &case, &mut notes, &mut applied).await?;
        eprintln!("corpus case {}: {:.1?}", case.name, started.elapsed());
        let note_problems: Vec<&String> = notes
            .iter()
            .filter(|n| !n.starts_with("CSV log:") && !n.starts_with("missing-photos.csv"))
            .collect();
        let differs = !case.expected.admits(&got) || !note_problems.is_empty();
        if differs {
            failures.push(format!(
                "case {} ({}):\n expected: {}\n got:      {}\n notes: {}",
                case.name,
                case.about,
                shown(&case.expected),
                shown(&got),
                notes.join("\n")
            ));
        }
    }

    // The server is still healthy and every job is final.
    let health = app.http.get(app.url("/healthz")).send().await?;
    assert_eq!(health.status(), 200, "/healthz after the corpus");
    let ready = app.http.get(app.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 200, "/readyz after the corpus");
    let jobs = app
        .get_json(&token, &format!("/v1/districts/{DISTRICT}/jobs?limit=1000"))
        .await?;
    for job in jobs["items"].as_array().cloned().unwrap_or_default() {
        assert!(
            matches!(
                job["state"].as_str(),
                Some("finished" | "finished_with_errors")
            ),
            "a job is not final: {job}"
        );
    }

    // Exactly the people an applied file names have a photo: no hostile file reached anyone
    // else. And no rendition carries anything of what was uploaded but pixels.
    applied.sort();
    applied.dedup();
    let mut with_photo = Vec::new();
    let people = app
        .get_json(
            &token,
            &format!("/v1/districts/{DISTRICT}/people?missing_photo=false&limit=1000"),
        )
        .await?;
    for person in people["items"].as_array().cloned().unwrap_or_default() {
        let id = person["id"].as_str().unwrap_or_default().to_owned();
        let photo = app
            .get(
                &token,
                &format!("/v1/districts/{DISTRICT}/people/{id}/photo?size=large"),
            )
            .await?
            .bytes()
            .await?;
        for payload in [
            &b"<script"[..],
            b"<html",
            b"PK\x03\x04",
            b"Exif",
            b"ICC_PROFILE",
        ] {
            assert!(
                !photo.windows(payload.len()).any(|w| w == payload),
                "{id}'s rendition carries {:?}",
                String::from_utf8_lossy(payload)
            );
        }
        with_photo.push(id);
    }
    with_photo.sort();
    if only.is_none() {
        assert_eq!(
            with_photo, applied,
            "people with a photo vs. people applied to"
        );
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    app.stop().await
}
