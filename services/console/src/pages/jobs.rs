//! Jobs (Illuminate's Scheduled Jobs): every import with its state, counts, start and end; one
//! job with its log, filtered by outcome and searched by file or reason, and the log as CSV.

use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{district_of, failed, not_found};
use crate::html::{escape, page, query_value};
use crate::{Console, SignedIn};

/// Jobs on the jobs page.
const LISTED: usize = 100;

/// Rows of a log shown on the page; the CSV has every row.
const SHOWN: usize = 1000;

const OUTCOMES: [&str; 8] = [
    "applied",
    "replaced",
    "superseded",
    "skipped",
    "previewed",
    "unmatched",
    "rejected",
    "pending",
];

/// What to do about a file, by its outcome and the reason the log gives.
fn advice(outcome: &str, reason: &str) -> &'static str {
    let has = |needle: &str| reason.contains(needle);
    match outcome {
        "unmatched" if has("not listed in the mapping CSV") => {
            "Add a row for this file to the mapping CSV (email or id, then the file name) and upload both again."
        }
        "unmatched"
            if has("make it unique in the roster") || has("holds the ids of two people") =>
        {
            "Two people fit: open the person it is for and replace their photo with this file, or list it in a mapping CSV."
        }
        "unmatched" if has("no longer active") => {
            "The person has left: reactivate them on the roster first, then upload the file again."
        }
        "unmatched" if has("no person") => {
            "No one on the roster has this id: add the person to the roster (or correct the file name) and upload it again."
        }
        "unmatched" => {
            "Check the name or id against the roster, fix the roster or add a mapping CSV, and upload the file again."
        }
        "rejected" if has("not an image") => {
            "This file is not a photo: export it again as JPEG or PNG and upload it."
        }
        "rejected" if has("a portrait needs at least") => {
            "The photo is too small: upload the photographer's full-size file."
        }
        "rejected" if has("wide for") => "Crop the photo to a portrait (4:5) and upload it again.",
        "rejected" if has("unsafe path") || has("damaged") => {
            "The zip is damaged or unsafe: make the zip again and upload it."
        }
        "rejected" => "Replace the file with a readable portrait photo and upload it again.",
        "skipped" => "Kept by the replace policy; upload with replace=always to use it.",
        _ => "",
    }
}

/// States a job does not leave by itself.
const FINAL: [&str; 4] = ["finished", "finished_with_errors", "previewed", "failed"];

/// The columns of a jobs table, by the key a row's cell is found by (`data-k`).
const COUNTED: [&str; 4] = ["files", "applied", "unmatched", "rejected"];

/// Files with an outcome so far.
fn done(job: &Value) -> u64 {
    let n = |k: &str| job["counts"][k].as_u64().unwrap_or(0);
    n("applied") + n("skipped") + n("previewed") + n("unmatched") + n("rejected")
}

/// One job's row. The page's script fills a copy of the same row (the `<template>` of
/// [`table`]) for a job that starts while the page is open.
fn row(d: &str, job: &Value) -> String {
    let id = escape(job["job_id"].as_str().unwrap_or_default());
    let state = escape(job["state"].as_str().unwrap_or_default());
    let short = id.get(..8).unwrap_or(&id).to_owned();
    let files = job["counts"]["files"].as_u64().unwrap_or(0);
    let done = done(job);
    let mut out = format!(
        "<tr data-job=\"{id}\"><th scope=\"row\"><a href=\"/console/d/{d}/jobs/{id}\" data-k=\"link\">{short}</a></th>\
         <td class=\"state-{state}\" data-k=\"state\">{state}</td>"
    );
    for key in COUNTED {
        let _ = write!(
            out,
            "<td class=\"num\" data-k=\"{key}\">{}</td>",
            job["counts"][key].as_u64().unwrap_or(0)
        );
    }
    let _ = write!(
        out,
        "<td><progress data-k=\"progress\" max=\"{}\" value=\"{done}\" aria-label=\"Job {short}: {done} of {files} files have an outcome\">{done} of {files}</progress></td>\
         <td data-k=\"started_at\">{}</td><td data-k=\"finished_at\">{}</td></tr>",
        files.max(1),
        escape(job["started_at"].as_str().unwrap_or("–")),
        escape(job["finished_at"].as_str().unwrap_or("–")),
    );
    out
}

/// The jobs table; with `live`, the page's script keeps it current from the district's event
/// stream (pushed, never polled): rows change as their jobs move, and a job that starts while
/// the page is open gets a row of its own at the top (at most `limit` rows are kept).
pub fn table(district: &str, jobs: &[Value], live: Option<usize>) -> String {
    let d = escape(district);
    let mut out = String::new();
    if let Some(limit) = live {
        let _ = write!(
            out,
            "<div id=\"jobs-live\" data-events=\"/console/d/{d}/events\" data-list=\"/console/d/{d}/jobs.json?limit={limit}\" \
             data-limit=\"{limit}\" hidden></div>\
             <template id=\"job-row\">{}</template>\
             <p id=\"jobs-announce\" class=\"visually-hidden\" role=\"status\" aria-live=\"polite\"></p>",
            row(&d, &serde_json::json!({"job_id": "", "state": "queued"}))
        );
    }
    let _ = write!(
        out,
        "<p id=\"no-jobs\"{}>No imports yet.</p>\
         <table id=\"jobs\"{}><thead><tr><th scope=\"col\">Job</th><th scope=\"col\">State</th>\
         <th scope=\"col\" class=\"num\">Files</th><th scope=\"col\" class=\"num\">Applied</th>\
         <th scope=\"col\" class=\"num\">Unmatched</th><th scope=\"col\" class=\"num\">Rejected</th>\
         <th scope=\"col\">Progress</th><th scope=\"col\">Started</th><th scope=\"col\">Ended</th></tr></thead><tbody>",
        if jobs.is_empty() { "" } else { " hidden" },
        if jobs.is_empty() { " hidden" } else { "" },
    );
    for job in jobs {
        out.push_str(&row(&d, job));
    }
    out.push_str("</tbody></table>");
    out
}

pub async fn list(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path(raw): Path<String>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let jobs = match console
        .api
        .get_json(
            &session.token,
            &format!("/v1/districts/{district}/jobs?limit={LISTED}"),
        )
        .await
    {
        Ok(j) => j,
        Err(failure) => return failed(&session, &district, failure),
    };
    let body = table(
        &district,
        jobs["items"].as_array().map_or(&[][..], |v| v),
        Some(LISTED),
    );
    Html(page("Jobs", Some(&session), Some(&district), &body)).into_response()
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<usize>,
}

/// The latest jobs as JSON, for the jobs table's script to catch up once each time its event
/// stream opens (what happened between the page and the stream).
pub async fn list_json(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path(raw): Path<String>,
    Query(limit): Query<Limit>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return crate::json_error(reqwest::StatusCode::NOT_FOUND, "no such district");
    };
    let limit = limit.limit.unwrap_or(LISTED).clamp(1, LISTED);
    let path = format!("/v1/districts/{district}/jobs?limit={limit}");
    match console.api.get_json(&session.token, &path).await {
        Ok(jobs) => axum::Json(jobs).into_response(),
        Err(failure) => super::failed_json(failure),
    }
}

#[derive(Deserialize)]
pub struct LogFilter {
    outcome: Option<String>,
    q: Option<String>,
}

pub async fn job(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path((raw, job_id)): Path<(String, String)>,
    Query(filter): Query<LogFilter>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let base = format!("/v1/districts/{district}/jobs/{}", query_value(&job_id));
    let job = match console.api.get_json(&session.token, &base).await {
        Ok(j) => j,
        Err(failure) => return failed(&session, &district, failure),
    };
    let log = match console
        .api
        .get_json(&session.token, &format!("{base}/log"))
        .await
    {
        Ok(l) => l,
        Err(failure) => return failed(&session, &district, failure),
    };
    let outcome = filter.outcome.filter(|o| OUTCOMES.contains(&o.as_str()));
    let q = filter.q.unwrap_or_default();
    let needle = q.to_lowercase();
    let rows: Vec<&Value> = log["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| outcome.as_deref().is_none_or(|o| row["outcome"] == o))
        .filter(|row| {
            needle.is_empty()
                || ["file_name", "reason"].iter().any(|k| {
                    row[*k]
                        .as_str()
                        .is_some_and(|v| v.to_lowercase().contains(&needle))
                })
        })
        .collect();

    let n = |k: &str| job["counts"][k].as_u64().unwrap_or(0);
    let done = n("applied") + n("skipped") + n("previewed") + n("unmatched") + n("rejected");
    let state = escape(job["state"].as_str().unwrap_or_default());
    let d = escape(&district);
    let id = escape(&job_id);
    let live = if FINAL.contains(&job["state"].as_str().unwrap_or_default()) {
        String::new()
    } else {
        format!(
            "<div id=\"job-live\" data-job=\"{id}\" data-events=\"/console/d/{d}/events\" \
             data-status=\"/console/d/{d}/jobs/{id}/status.json\" hidden></div>"
        )
    };
    let mut body = format!(
        "{live}<p>State: <strong class=\"state-{state}\" id=\"state\" aria-live=\"polite\">{state}</strong> · mode {} · replace {} · started {} · ended {}</p>\
         <label for=\"progress\" id=\"progress-label\" aria-live=\"polite\">{done} of {} files have an outcome</label>\
         <progress id=\"progress\" max=\"{}\" value=\"{done}\">{done}</progress>\
         <table><tbody>",
        escape(job["options"]["mode"].as_str().unwrap_or("apply")),
        escape(job["options"]["replace"].as_str().unwrap_or("always")),
        escape(job["started_at"].as_str().unwrap_or("–")),
        escape(job["finished_at"].as_str().unwrap_or("–")),
        n("files"),
        n("files").max(1),
    );
    for key in ["applied", "skipped", "previewed", "unmatched", "rejected"] {
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{key}</th><td class=\"num\" id=\"count-{key}\">{}</td></tr>",
            n(key)
        );
    }
    body.push_str("</tbody></table>");
    if job["state"] == "previewed" && session.may("importer") {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/console/d/{d}/jobs/{id}/apply\">{}\
             <p class=\"note\">This is a preview: no one's photo has changed. Read the log, then apply it \
             exactly as previewed.</p><p><button type=\"submit\" id=\"apply\">Apply this preview</button></p></form>",
            crate::html::csrf_field(&session)
        );
    }
    body.push_str("<h2>Log</h2>");
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/console/d/{d}/jobs/{id}\">\
         <label for=\"outcome\">Outcome</label><select id=\"outcome\" name=\"outcome\"><option value=\"\">all</option>"
    );
    for o in OUTCOMES {
        let selected = if outcome.as_deref() == Some(o) {
            " selected"
        } else {
            ""
        };
        let _ = write!(body, "<option{selected}>{o}</option>");
    }
    let _ = write!(
        body,
        "</select><label for=\"q\">File or reason contains</label><input id=\"q\" name=\"q\" value=\"{}\">\
         <p><button type=\"submit\">Filter</button> <a class=\"button\" href=\"/console/d/{d}/jobs/{id}/log.csv\">Download CSV</a></p></form>",
        escape(&q)
    );
    let _ = write!(
        body,
        "<p id=\"shown\">{} of {} files{}</p><table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">File</th>\
         <th scope=\"col\">Outcome</th><th scope=\"col\">Reason</th><th scope=\"col\">What to do</th></tr></thead><tbody>",
        rows.len().min(SHOWN),
        rows.len(),
        if rows.len() > SHOWN {
            " (the CSV has them all)"
        } else {
            ""
        }
    );
    for row in rows.iter().take(SHOWN) {
        let outcome = row["outcome"].as_str().unwrap_or_default();
        let reason = row["reason"].as_str().unwrap_or("");
        let file = escape(row["file_name"].as_str().unwrap_or_default());
        let file = match row["person_id"].as_str() {
            Some(person) => format!(
                "<a href=\"/console/d/{d}/people/{}\">{file}</a>",
                escape(&query_value(person))
            ),
            None => file,
        };
        let _ = write!(
            body,
            "<tr><td class=\"num\">{}</td><td>{file}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            row["seq"].as_u64().unwrap_or(0),
            escape(outcome),
            escape(reason),
            advice(outcome, reason),
        );
    }
    body.push_str("</tbody></table>");
    Html(page(
        &format!("Job {}", job_id.get(..8).unwrap_or(&job_id)),
        Some(&session),
        Some(&district),
        &body,
    ))
    .into_response()
}

/// The log as the API writes it, passed through as it streams.
pub async fn log_csv(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path((raw, job_id)): Path<(String, String)>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let path = format!(
        "/v1/districts/{district}/jobs/{}/log?format=csv",
        query_value(&job_id)
    );
    match console
        .api
        .send(
            console
                .api
                .request(reqwest::Method::GET, &session.token, &path),
        )
        .await
    {
        Ok(response) => csv_download(response, &format!("job-{job_id}.csv")),
        Err(failure) => failed(&session, &district, failure),
    }
}

/// A CSV from the API as a download, streamed through.
pub fn csv_download(response: reqwest::Response, name: &str) -> Response {
    let disposition = format!(
        "attachment; filename=\"{}\"",
        name.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.',
            "_"
        )
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(response.bytes_stream()),
    )
        .into_response()
}

/// The job's status as JSON, for the page's script to catch up once when its stream opens.
pub async fn status(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path((raw, job_id)): Path<(String, String)>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return crate::json_error(reqwest::StatusCode::NOT_FOUND, "no such job");
    };
    let path = format!("/v1/districts/{district}/jobs/{}", query_value(&job_id));
    match console.api.get_json(&session.token, &path).await {
        Ok(job) => axum::Json(job).into_response(),
        Err(failure) => super::failed_json(failure),
    }
}

/// The district's job events (Server-Sent Events), passed through from the API with the
/// session's token as they come, so the page's `EventSource` is told of every change; the
/// browser's `Last-Event-ID` goes along when it reconnects.
pub async fn events(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: axum::http::HeaderMap,
    Path(raw): Path<String>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let mut request = console.api.request(
        reqwest::Method::GET,
        &session.token,
        &format!("/v1/districts/{district}/events"),
    );
    if let Some(last) = headers.get("last-event-id") {
        request = request.header("last-event-id", last.as_bytes());
    }
    match console.api.send(request).await {
        Ok(response) => super::pass_through(response, &[header::CONTENT_TYPE]),
        Err(failure) => super::failed_json(failure),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Applies a preview, then shows the job.
pub async fn apply(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: axum::http::HeaderMap,
    Path((raw, job_id)): Path<(String, String)>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Some(refused) = crate::form_refused(&headers, &session, &form.csrf) {
        return refused;
    }
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let path = format!(
        "/v1/districts/{district}/jobs/{}/apply",
        query_value(&job_id)
    );
    let request = console
        .api
        .request(reqwest::Method::POST, &session.token, &path);
    match console.api.send_json(request).await {
        Ok(_) => axum::response::Redirect::to(&format!(
            "/console/d/{district}/jobs/{}",
            query_value(&job_id)
        ))
        .into_response(),
        Err(failure) => failed(&session, &district, failure),
    }
}
