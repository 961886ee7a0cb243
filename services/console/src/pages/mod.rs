//! One module per page group.

pub mod home;
pub mod jobs;
pub mod missing;
pub mod person;
pub mod schools;
pub mod sftp;
pub mod sign_in;
pub mod tokens;
pub mod upload;
pub mod webhooks;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::api::ApiFailure;
use crate::html;
use crate::session::Session;

/// The district a page is about, if the session may see it: a district token only its own
/// (another's is a `404`, as in the API), the operator any.
pub fn district_of(session: &Session, raw: &str) -> Option<String> {
    match &session.district {
        Some(own) if own != raw => None,
        _ => Some(raw.to_owned()),
    }
}

pub fn not_found(session: &Session) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(html::page(
            "Not found",
            Some(session),
            session.district.as_deref(),
            &html::alert("There is no such page for this account."),
        )),
    )
        .into_response()
}

/// An API failure as a page (a `401` — a revoked or expired token — signs the admin out).
pub fn failed(session: &Session, district: &str, failure: ApiFailure) -> Response {
    let status = failure.status();
    if status == StatusCode::UNAUTHORIZED {
        return axum::response::Redirect::to("/console/sign-in").into_response();
    }
    (
        status,
        Html(html::page(
            "Something went wrong",
            Some(session),
            Some(district),
            &html::alert(&failure.to_string()),
        )),
    )
        .into_response()
}

/// An API failure for a page's script: JSON with the API's status and message (a `401` says to
/// sign in again).
pub fn failed_json(failure: ApiFailure) -> Response {
    let status = failure.status();
    let message = if status == StatusCode::UNAUTHORIZED {
        "Your session has ended; sign in again.".to_owned()
    } else {
        failure.to_string()
    };
    crate::json_error(status, &message)
}

/// An API response passed through as it streams: its status, the named headers, and its body.
pub fn pass_through(response: reqwest::Response, keep: &[axum::http::HeaderName]) -> Response {
    let status = response.status();
    let mut headers = axum::http::HeaderMap::new();
    for name in keep {
        if let Some(value) = response.headers().get(name.as_str())
            && let Ok(value) = axum::http::HeaderValue::from_bytes(value.as_bytes())
        {
            headers.insert(name.clone(), value);
        }
    }
    let body = axum::body::Body::from_stream(response.bytes_stream());
    (status, headers, body).into_response()
}

/// A string from a JSON value, or `""`.
pub fn text<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}
