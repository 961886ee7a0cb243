//! Uploading photos: a zip, a folder, or a mapping CSV with its images, any number of files. The
//! page's script streams them to [`import`] with a progress bar and the time left, then follows
//! the job. The browser never holds the API token: [`import`] passes the upload through to the
//! API's import route with the session's token as it arrives, never holding it whole.

use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{district_of, failed_json, not_found};
use crate::html::{escape, page};
use crate::{Console, SignedIn, call_refused, json_error};

const MODES: [&str; 2] = ["apply", "preview"];
const REPLACE: [(&str, &str); 3] = [
    (
        "always",
        "everyone matched: a newer upload replaces the current photo",
    ),
    (
        "missing_only",
        "only people without a photo (everyone else keeps theirs)",
    ),
    (
        "existing_only",
        "only people who already have a photo (retakes)",
    ),
];

pub async fn form(SignedIn(session): SignedIn, Path(raw): Path<String>) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let d = escape(&district);
    let mut body = String::new();
    if !session.may("importer") {
        body.push_str(&crate::html::alert(
            "Uploading needs a token with role importer or admin; this token's role is viewer.",
        ));
        return Html(page(
            "Upload photos",
            Some(&session),
            Some(&district),
            &body,
        ))
        .into_response();
    }
    let _ = write!(
        body,
        "<p>A zip of photos named by student number, SIS id or email; a whole folder; or a SmartPass \
         mapping CSV with its images. Any number of files: they are sent as one upload.</p>\
         <form id=\"upload-form\" data-action=\"/console/d/{d}/imports\" data-jobs=\"/console/d/{d}/jobs\">\
         <div class=\"drop\" id=\"drop\"><p>Drop a zip, a folder, or a mapping CSV and images here, or choose them:</p>\
         <label for=\"files\">Files (zip, CSV, images)</label>\
         <input id=\"files\" type=\"file\" multiple accept=\".zip,.csv,image/*,.heic,.heif,.avif\">\
         <label for=\"folder\">A folder</label><input id=\"folder\" type=\"file\" webkitdirectory multiple></div>\
         <p id=\"selection\" aria-live=\"polite\">No files chosen.</p>\
         <fieldset><legend>What to do</legend>\
         <input type=\"checkbox\" id=\"preview\" name=\"preview\"><label for=\"preview\">Preview first: \
         change no one's photo; read the log, then apply it</label></fieldset>\
         <label for=\"replace\">Whose photo may it set</label><select id=\"replace\" name=\"replace\">"
    );
    for (value, what) in REPLACE {
        let _ = write!(body, "<option value=\"{value}\">{value}: {what}</option>");
    }
    body.push_str(
        "</select><p><button type=\"submit\" id=\"upload-button\" disabled>Upload</button> \
         <button type=\"button\" class=\"secondary\" id=\"clear\">Clear</button></p>\
         <progress id=\"upload-progress\" max=\"1\" value=\"0\" aria-label=\"Sent\" aria-describedby=\"upload-status\" hidden></progress>\
         <p id=\"upload-status\" role=\"status\" aria-live=\"polite\"></p></form>\
         <noscript><p class=\"alert\">Uploading from the console needs JavaScript.</p></noscript>",
    );
    Html(page(
        "Upload photos",
        Some(&session),
        Some(&district),
        &body,
    ))
    .into_response()
}

#[derive(Deserialize)]
pub struct ImportOptions {
    mode: Option<String>,
    replace: Option<String>,
}

/// The page's upload, streamed through to `POST /v1/districts/{d}/imports` with the session's
/// token. Needs the session's CSRF value in `X-CSRF-Token` and the console's own origin.
pub async fn import(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(options): Query<ImportOptions>,
    body: Body,
) -> Response {
    if let Some(refused) = call_refused(&headers, &session) {
        return refused;
    }
    let Some(district) = district_of(&session, &raw) else {
        return json_error(StatusCode::NOT_FOUND, "no such district");
    };
    let mode = options.mode.unwrap_or_else(|| "apply".into());
    let replace = options.replace.unwrap_or_else(|| "always".into());
    if !MODES.contains(&mode.as_str()) || !REPLACE.iter().any(|(r, _)| *r == replace) {
        return json_error(StatusCode::BAD_REQUEST, "unknown mode or replace policy");
    }
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .filter(|v| v.as_bytes().starts_with(b"multipart/form-data"))
    else {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "an upload is a multipart/form-data form",
        );
    };
    let mut request = console
        .api
        .request(
            reqwest::Method::POST,
            &session.token,
            &format!("/v1/districts/{district}/imports?mode={mode}&replace={replace}"),
        )
        .header(header::CONTENT_TYPE, content_type.as_bytes())
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        request = request.header(header::CONTENT_LENGTH, length.as_bytes());
    }
    match console.api.send(request).await {
        Ok(response) => {
            tracing::info!(%district, role = %session.role, "console upload accepted");
            super::pass_through(response, &[header::CONTENT_TYPE])
        }
        Err(failure) => failed_json(failure),
    }
}
