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

/// What to do about a file, by its outcome.
fn advice(outcome: &str) -> &'static str {
    match outcome {
        "unmatched" => {
            "Check the name or id against the roster, fix the roster or add a mapping CSV, and upload the file again."
        }
        "rejected" => "Replace the file with a readable portrait photo and upload it again.",
        "skipped" => "Kept by the replace policy; upload with replace=always to use it.",
        _ => "",
    }
}

pub fn table(district: &str, jobs: &[Value]) -> String {
    if jobs.is_empty() {
        return "<p>No imports yet.</p>".into();
    }
    let d = escape(district);
    let mut out = String::from(
        "<table><thead><tr><th scope=\"col\">Job</th><th scope=\"col\">State</th>\
         <th scope=\"col\" class=\"num\">Files</th><th scope=\"col\" class=\"num\">Applied</th>\
         <th scope=\"col\" class=\"num\">Unmatched</th><th scope=\"col\" class=\"num\">Rejected</th>\
         <th scope=\"col\">Started</th><th scope=\"col\">Ended</th></tr></thead><tbody>",
    );
    for job in jobs {
        let id = escape(job["job_id"].as_str().unwrap_or_default());
        let state = escape(job["state"].as_str().unwrap_or_default());
        let n = |k: &str| job["counts"][k].as_u64().unwrap_or(0);
        let _ = write!(
            out,
            "<tr><td><a href=\"/console/d/{d}/jobs/{id}\">{short}</a></td><td class=\"state-{state}\">{state}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td>{}</td></tr>",
            n("files"),
            n("applied"),
            n("unmatched"),
            n("rejected"),
            escape(job["started_at"].as_str().unwrap_or("–")),
            escape(job["finished_at"].as_str().unwrap_or("–")),
            short = id.get(..8).unwrap_or(&id),
        );
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
            &format!("/v1/districts/{district}/jobs?limit=100"),
        )
        .await
    {
        Ok(j) => j,
        Err(failure) => return failed(&session, &district, failure),
    };
    let body = table(&district, jobs["items"].as_array().map_or(&[][..], |v| v));
    Html(page("Jobs", Some(&session), Some(&district), &body)).into_response()
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
    let mut body = format!(
        "<p>State: <strong class=\"state-{state}\" id=\"state\">{state}</strong> · started {} · ended {}</p>\
         <label for=\"progress\">{done} of {} files have an outcome</label>\
         <progress id=\"progress\" max=\"{}\" value=\"{done}\">{done}</progress>\
         <table><tbody>",
        escape(job["started_at"].as_str().unwrap_or("–")),
        escape(job["finished_at"].as_str().unwrap_or("–")),
        n("files"),
        n("files").max(1),
    );
    for key in ["applied", "skipped", "previewed", "unmatched", "rejected"] {
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{key}</th><td class=\"num\">{}</td></tr>",
            n(key)
        );
    }
    body.push_str("</tbody></table><h2>Log</h2>");
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
        let _ = write!(
            body,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            row["seq"].as_u64().unwrap_or(0),
            escape(row["file_name"].as_str().unwrap_or_default()),
            escape(outcome),
            escape(row["reason"].as_str().unwrap_or("")),
            advice(outcome),
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
