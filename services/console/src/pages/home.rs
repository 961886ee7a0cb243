//! The home page (SmartPass's alert: how many people have no photo, and the latest jobs) and the
//! operator's list of districts.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use std::fmt::Write as _;

use super::{district_of, failed, not_found};
use crate::html::{escape, page};
use crate::{Console, SignedIn};

pub async fn districts(State(console): State<Console>, SignedIn(session): SignedIn) -> Response {
    if let Some(d) = &session.district {
        return axum::response::Redirect::to(&format!("/console/d/{d}")).into_response();
    }
    let list = match console.api.get_json(&session.token, "/v1/districts").await {
        Ok(list) => list,
        Err(failure) => return failed(&session, "", failure),
    };
    let mut body = String::from("<ul>");
    for d in list.as_array().into_iter().flatten() {
        let id = escape(d["id"].as_str().unwrap_or_default());
        let name = escape(d["name"].as_str().unwrap_or_default());
        let _ = write!(
            body,
            "<li><a href=\"/console/d/{id}\">{name}</a> ({id})</li>"
        );
    }
    body.push_str("</ul>");
    Html(page("Districts", Some(&session), None, &body)).into_response()
}

pub async fn home(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path(raw): Path<String>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let base = format!("/v1/districts/{district}");
    let schools = match console
        .api
        .get_json(&session.token, &format!("{base}/schools"))
        .await
    {
        Ok(s) => s,
        Err(failure) => return failed(&session, &district, failure),
    };
    let jobs = match console
        .api
        .get_json(&session.token, &format!("{base}/jobs?limit=5"))
        .await
    {
        Ok(j) => j,
        Err(failure) => return failed(&session, &district, failure),
    };
    let missing: u64 = schools
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["missing_photos"].as_u64().unwrap_or(0))
        .sum();
    let d = escape(&district);
    let mut body = String::new();
    if missing > 0 {
        let _ = write!(
            body,
            "<p class=\"alert\" role=\"status\"><strong>{missing}</strong> {} without a photo. \
             <a href=\"/console/d/{d}/missing\">See who</a> or \
             <a href=\"/console/d/{d}/missing.csv\">download the list (CSV)</a>.</p>",
            if missing == 1 {
                "person is"
            } else {
                "people are"
            }
        );
    } else {
        body.push_str("<p class=\"note\" role=\"status\">Everyone has a photo.</p>");
    }
    body.push_str("<h2>Latest jobs</h2>");
    body.push_str(&super::jobs::table(
        &district,
        jobs["items"].as_array().map_or(&[][..], |v| v),
        Some(5),
    ));
    let _ = write!(body, "<p><a href=\"/console/d/{d}/jobs\">All jobs</a></p>");
    Html(page(
        &format!("District {district}"),
        Some(&session),
        Some(&district),
        &body,
    ))
    .into_response()
}
