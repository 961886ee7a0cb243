//! One module per page group.

pub mod home;
pub mod jobs;
pub mod missing;
pub mod schools;
pub mod sign_in;

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
