//! Who has no photo: by school and role, and the CSV.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{district_of, failed, not_found};
use crate::html::{escape, page, query_value};
use crate::{Console, SignedIn};

#[derive(Deserialize, Default)]
pub struct Filter {
    school: Option<String>,
    role: Option<String>,
}

impl Filter {
    fn query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.school.as_deref().filter(|s| !s.is_empty()) {
            parts.push(format!("school={}", query_value(s)));
        }
        if let Some(r) = self
            .role
            .as_deref()
            .filter(|r| matches!(*r, "student" | "staff"))
        {
            parts.push(format!("role={r}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

pub async fn list(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path(raw): Path<String>,
    Query(filter): Query<Filter>,
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
    let csv = match console
        .api
        .send(console.api.request(
            reqwest::Method::GET,
            &session.token,
            &format!("{base}/reports/missing-photos.csv{}", filter.query()),
        ))
        .await
    {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(failure) => return failed(&session, &district, failure),
    };
    let d = escape(&district);
    let mut body = format!(
        "<form method=\"get\" action=\"/console/d/{d}/missing\"><label for=\"school\">School</label>\
         <select id=\"school\" name=\"school\"><option value=\"\">all</option>"
    );
    for s in schools.as_array().into_iter().flatten() {
        let id = s["id"].as_str().unwrap_or_default();
        let selected = if filter.school.as_deref() == Some(id) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<option value=\"{}\"{selected}>{} ({} missing)</option>",
            escape(id),
            escape(s["name"].as_str().unwrap_or_default()),
            s["missing_photos"].as_u64().unwrap_or(0)
        );
    }
    body.push_str("</select><label for=\"role\">Role</label><select id=\"role\" name=\"role\"><option value=\"\">all</option>");
    for role in ["student", "staff"] {
        let selected = if filter.role.as_deref() == Some(role) {
            " selected"
        } else {
            ""
        };
        let _ = write!(body, "<option{selected}>{role}</option>");
    }
    let _ = write!(
        body,
        "</select><p><button type=\"submit\">Show</button> <a class=\"button\" href=\"/console/d/{d}/missing.csv{}\">Download CSV</a></p></form>",
        escape(&filter.query())
    );
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<Vec<String>> = reader
        .records()
        .filter_map(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect())
        .collect();
    let _ = write!(
        body,
        "<p id=\"count\">{} without a photo</p><table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Role</th>\
         <th scope=\"col\">School</th><th scope=\"col\">SIS id</th><th scope=\"col\">Student number</th></tr></thead><tbody>",
        rows.len()
    );
    for row in &rows {
        let f = |i: usize| escape(row.get(i).map_or("", String::as_str));
        // Found by the first id the row has (SIS id, student number, email).
        let key = [1, 2, 3]
            .iter()
            .filter_map(|i| row.get(*i))
            .find(|v| !v.is_empty())
            .map_or(String::new(), |v| query_value(v));
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/d/{d}/people?q={}\">{} {}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&key),
            f(4),
            f(5),
            f(0),
            f(6),
            f(1),
            f(2)
        );
    }
    body.push_str("</tbody></table>");
    Html(page(
        "Missing photos",
        Some(&session),
        Some(&district),
        &body,
    ))
    .into_response()
}

pub async fn csv(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path(raw): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let path = format!(
        "/v1/districts/{district}/reports/missing-photos.csv{}",
        filter.query()
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
        Ok(response) => super::jobs::csv_download(response, "missing-photos.csv"),
        Err(failure) => failed(&session, &district, failure),
    }
}
