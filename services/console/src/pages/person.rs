//! One person: their current photo (fetched through the console with the session's token), the
//! photos they have had with a way to bring one back, a new photo by dropping a file (shown as
//! soon as it is applied), and removing the photo. People are found by id, SIS id, student
//! number or email.

use std::fmt::Write as _;

use axum::Form;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use reqwest::Method;
use serde::Deserialize;

use super::{district_of, failed, failed_json, not_found, text};
use crate::html::{alert, csrf_field, escape, page, query_value};
use crate::{Console, SignedIn, call_refused, form_refused, json_error};

/// What a photo response carries that the page (or a browser) needs.
const PHOTO_HEADERS: [&str; 5] = [
    "content-type",
    "etag",
    "x-pictureday-photo-id",
    "x-pictureday-placeholder",
    "x-pictureday-placeholder-reason",
];

fn photo_headers() -> Vec<HeaderName> {
    PHOTO_HEADERS
        .iter()
        .map(|h| HeaderName::from_static(h))
        .collect()
}

#[derive(Deserialize, Default)]
pub struct Find {
    #[serde(default)]
    q: String,
}

/// Finds a person by SIS id, student number or email and opens their page; with no query, the
/// search form.
pub async fn find(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path(raw): Path<String>,
    Query(find): Query<Find>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let d = escape(&district);
    let q = find.q.trim();
    let mut body = format!(
        "<form method=\"get\" action=\"/console/d/{d}/people\"><label for=\"q\">SIS id, student number or email</label>\
         <input id=\"q\" name=\"q\" value=\"{}\" autocomplete=\"off\"> <button type=\"submit\">Find</button></form>",
        escape(q)
    );
    if !q.is_empty() {
        let mut found = Vec::new();
        for key in ["sis_id", "student_number", "email"] {
            let path = format!(
                "/v1/districts/{district}/people?{key}={}&limit=20",
                query_value(q)
            );
            match console.api.get_json(&session.token, &path).await {
                Ok(page) => found.extend(page["items"].as_array().cloned().unwrap_or_default()),
                Err(failure) if failure.status() == StatusCode::BAD_REQUEST => {}
                Err(failure) => return failed(&session, &district, failure),
            }
        }
        found.dedup_by(|a, b| a["id"] == b["id"]);
        if let [one] = found.as_slice() {
            return Redirect::to(&format!(
                "/console/d/{district}/people/{}",
                query_value(text(one, "id"))
            ))
            .into_response();
        }
        if found.is_empty() {
            body.push_str(&alert(&format!(
                "No one has {q} as SIS id, student number or email."
            )));
        } else {
            body.push_str("<ul>");
            for p in &found {
                let _ = write!(
                    body,
                    "<li><a href=\"/console/d/{d}/people/{}\">{} {}</a> ({})</li>",
                    escape(&query_value(text(p, "id"))),
                    escape(text(p, "first_name")),
                    escape(text(p, "last_name")),
                    escape(text(p, "role"))
                );
            }
            body.push_str("</ul>");
        }
    }
    Html(page(
        "Find a person",
        Some(&session),
        Some(&district),
        &body,
    ))
    .into_response()
}

/// Why a placeholder is shown, in words.
fn placeholder_reason(reason: &str) -> &'static str {
    match reason {
        "no-photo" => "No photo yet.",
        "person-inactive" => "No photo is shown: this person has left (inactive).",
        "district-photos-off" => "No photo is shown: photos are off for the whole district.",
        "school-photos-off" => {
            "No photo is shown: photos are off for one of this person's schools."
        }
        _ => "No photo is shown.",
    }
}

async fn page_of(
    console: &Console,
    session: &crate::session::Session,
    district: &str,
    person_id: &str,
) -> Response {
    let base = format!("/v1/districts/{district}/people/{}", query_value(person_id));
    let person = match console.api.get_json(&session.token, &base).await {
        Ok(p) => p,
        Err(failure) => return failed(session, district, failure),
    };
    let photos = match console
        .api
        .get_json(&session.token, &format!("{base}/photos"))
        .await
    {
        Ok(p) => p,
        Err(failure) => return failed(session, district, failure),
    };
    // What the photo route serves now: the photo, or a placeholder and why.
    let shown = console
        .api
        .send(console.api.request(
            Method::GET,
            &session.token,
            &format!("{base}/photo?size=small"),
        ))
        .await;
    let placeholder = match &shown {
        Ok(r) => r
            .headers()
            .get("x-pictureday-placeholder-reason")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        Err(_) => Some(String::new()),
    };
    drop(shown);
    let d = escape(district);
    let p = escape(&query_value(person_id));
    let name = format!(
        "{} {}",
        text(&person, "first_name"),
        text(&person, "last_name")
    );
    let photo_id = text(&person, "photo_id");
    let mut body = String::new();
    let _ = write!(
        body,
        "<p>{} · {} · school {} · SIS id {} · student number {} · email {}</p>",
        escape(text(&person, "role")),
        escape(text(&person, "status")),
        escape(
            &person["school"]
                .as_str()
                .map_or_else(|| person["school"].to_string(), str::to_owned)
        ),
        escape(person["sis_id"].as_str().unwrap_or("–")),
        escape(person["student_number"].as_str().unwrap_or("–")),
        escape(person["email"].as_str().unwrap_or("–")),
    );
    let _ = write!(
        body,
        "<h2>Photo</h2><img id=\"photo\" class=\"portrait\" data-photo-id=\"{}\" \
         src=\"/console/d/{d}/people/{p}/photo?size=medium&amp;v={}\" alt=\"{}\" width=\"240\" height=\"300\">\
         <p id=\"photo-state\">{}</p>",
        escape(photo_id),
        escape(&query_value(photo_id)),
        escape(&if placeholder.is_some() {
            format!("Placeholder for {name}")
        } else {
            format!("Photo of {name}")
        }),
        escape(&match &placeholder {
            Some(reason) => placeholder_reason(reason).to_owned(),
            None => "Current photo.".to_owned(),
        })
    );
    if session.may("importer") {
        let _ = write!(
            body,
            "<div id=\"replace-photo\" data-action=\"/console/d/{d}/people/{p}/photo\" data-photo=\"/console/d/{d}/people/{p}/photo\">\
             <div class=\"drop\" id=\"photo-drop\"><p>Drop a new photo here, or choose one:</p>\
             <label for=\"new-photo\">New photo</label><input id=\"new-photo\" type=\"file\" accept=\"image/*,.heic,.heif,.avif\"></div>\
             <p id=\"photo-status\" role=\"status\" aria-live=\"polite\"></p></div>"
        );
        if !photo_id.is_empty() {
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/console/d/{d}/people/{p}/photo/delete\">{}\
                 <button type=\"submit\" class=\"danger\" id=\"delete-photo\">Remove this photo</button> \
                 <span>(it stays in the history below and can be brought back)</span></form>",
                csrf_field(session)
            );
        }
    }
    body.push_str(
        "<h2>History</h2><table><thead><tr><th scope=\"col\">Photo</th><th scope=\"col\">File</th>\
         <th scope=\"col\">Outcome</th><th scope=\"col\">Added</th><th scope=\"col\">Job</th><th scope=\"col\">Actions</th></tr></thead><tbody>",
    );
    let history = photos.as_array().map_or(&[][..], |v| v);
    let history = if history.is_empty() {
        photos["items"].as_array().map_or(&[][..], |v| v)
    } else {
        history
    };
    for version in history {
        let id = text(version, "id");
        let current = version["current"].as_bool().unwrap_or(false);
        let job = text(version, "job_id");
        let action = if current {
            "<strong>current</strong>".to_owned()
        } else if session.may("importer") && text(version, "outcome") != "previewed" {
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/console/d/{d}/people/{p}/photos/{}/restore\">{}\
                 <button type=\"submit\" class=\"secondary\" aria-label=\"Make this the photo: {} of {}\">Make this the photo</button></form>",
                escape(&query_value(id)),
                csrf_field(session),
                escape(text(version, "file_name")),
                escape(text(version, "created_at")),
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td><img class=\"thumb\" src=\"/console/d/{d}/people/{p}/photos/{}?size=small\" alt=\"Version from {}\" width=\"48\" height=\"60\"></td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
            escape(&query_value(id)),
            escape(text(version, "file_name")),
            escape(text(version, "file_name")),
            escape(text(version, "outcome")),
            escape(text(version, "created_at")),
            if job.is_empty() {
                "–".to_owned()
            } else {
                format!(
                    "<a href=\"/console/d/{d}/jobs/{}\">{}</a>",
                    escape(&query_value(job)),
                    escape(job.get(..8).unwrap_or(job))
                )
            },
        );
    }
    if history.is_empty() {
        body.push_str("<tr><td colspan=\"6\">No photos yet.</td></tr>");
    }
    body.push_str("</tbody></table>");
    Html(page(&name, Some(session), Some(district), &body)).into_response()
}

pub async fn show(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path((raw, person)): Path<(String, String)>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    page_of(&console, &session, &district, &person).await
}

#[derive(Deserialize)]
pub struct Size {
    size: Option<String>,
}

impl Size {
    fn query(&self) -> &'static str {
        match self.size.as_deref() {
            Some("small") => "?size=small",
            Some("large") => "?size=large",
            _ => "?size=medium",
        }
    }
}

/// The person's photo (or the placeholder), fetched with the session's token.
pub async fn photo(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path((raw, person)): Path<(String, String)>,
    Query(size): Query<Size>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = format!(
        "/v1/districts/{district}/people/{}/photo{}",
        query_value(&person),
        size.query()
    );
    image(&console, &session.token, &path).await
}

/// An older version of the person's photo.
pub async fn version(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path((raw, person, photo)): Path<(String, String, String)>,
    Query(size): Query<Size>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = format!(
        "/v1/districts/{district}/people/{}/photos/{}{}",
        query_value(&person),
        query_value(&photo),
        size.query()
    );
    image(&console, &session.token, &path).await
}

async fn image(console: &Console, token: &str, path: &str) -> Response {
    match console
        .api
        .send(console.api.request(Method::GET, token, path))
        .await
    {
        Ok(response) => super::pass_through(response, &photo_headers()),
        Err(failure) => failure.status().into_response(),
    }
}

#[derive(Deserialize)]
pub struct Replace {
    file_name: Option<String>,
}

/// A new photo from the page's script: the file streamed through to
/// `PUT …/people/{person}/photo?wait=true` with the session's token.
pub async fn replace(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path((raw, person)): Path<(String, String)>,
    Query(replace): Query<Replace>,
    body: Body,
) -> Response {
    if let Some(refused) = call_refused(&headers, &session) {
        return refused;
    }
    let Some(district) = district_of(&session, &raw) else {
        return json_error(StatusCode::NOT_FOUND, "no such person");
    };
    let mut path = format!(
        "/v1/districts/{district}/people/{}/photo?wait=true",
        query_value(&person)
    );
    if let Some(name) = replace.file_name.as_deref().filter(|n| !n.is_empty()) {
        let _ = write!(path, "&file_name={}", query_value(name));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map_or(&b"application/octet-stream"[..], |v| v.as_bytes());
    let mut request = console
        .api
        .request(Method::PUT, &session.token, &path)
        .header(header::CONTENT_TYPE, content_type)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        request = request.header(header::CONTENT_LENGTH, length.as_bytes());
    }
    match console.api.send(request).await {
        Ok(response) => super::pass_through(response, &[header::CONTENT_TYPE]),
        Err(failure) => failed_json(failure),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Removes the current photo (kept in the history).
pub async fn delete(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path((raw, person)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = form_refused(&headers, &session, &form.csrf) {
        return refused;
    }
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let path = format!(
        "/v1/districts/{district}/people/{}/photo",
        query_value(&person)
    );
    let request = console.api.request(Method::DELETE, &session.token, &path);
    match console.api.send_json(request).await {
        Ok(_) => back_to(&district, &person),
        Err(failure) => failed(&session, &district, failure),
    }
}

/// An earlier photo becomes the person's photo again.
pub async fn restore(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path((raw, person, photo)): Path<(String, String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = form_refused(&headers, &session, &form.csrf) {
        return refused;
    }
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let path = format!(
        "/v1/districts/{district}/people/{}/photos/{}/restore",
        query_value(&person),
        query_value(&photo)
    );
    let request = console.api.request(Method::POST, &session.token, &path);
    match console.api.send_json(request).await {
        Ok(_) => back_to(&district, &person),
        Err(failure) => failed(&session, &district, failure),
    }
}

fn back_to(district: &str, person: &str) -> Response {
    Redirect::to(&format!(
        "/console/d/{district}/people/{}",
        query_value(person)
    ))
    .into_response()
}
