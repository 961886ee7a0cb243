//! The console: the pages a district admin (or an operator's support staff) uses instead of curl,
//! served by the system itself under `/console` on the API's own address. Pages are rendered on
//! the server from the public API, called with the signed-in admin's token, so the API's roles and
//! tenant checks are the console's too. A session lives only in its sealed cookie (`session`);
//! every form carries the session's CSRF value and every POST must come from the console's own
//! origin.

mod api;
mod html;
mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;

pub use api::Api;
use session::{Session, SessionKey};

/// What the console needs.
#[derive(Clone)]
pub struct Console {
    pub api: Api,
    pub keys: Arc<SessionKey>,
    /// Cookies are `Secure` when the console is reached over TLS (a public URL of `https://`).
    pub secure_cookies: bool,
}

impl Console {
    /// `api_base`: where this server reaches the API; `secret`: the installation's secret the
    /// session key is derived from; `public_url`: how users reach it, when known.
    pub fn new(api_base: &str, secret: &str, public_url: Option<&str>) -> anyhow::Result<Self> {
        Ok(Self {
            api: Api::new(api_base),
            keys: Arc::new(SessionKey::derive(secret)?),
            secure_cookies: public_url.is_some_and(|u| u.starts_with("https://")),
        })
    }
}

/// Every console route.
pub fn router(console: Console) -> Router {
    Router::new()
        .route("/console", get(pages::sign_in::start))
        .route("/console/", get(pages::sign_in::start))
        .route("/console/assets/console.css", get(assets::style))
        .route("/console/assets/console.js", get(assets::script))
        .route(
            "/console/sign-in",
            get(pages::sign_in::form).post(pages::sign_in::sign_in),
        )
        .route("/console/sign-out", post(pages::sign_in::sign_out))
        .route("/console/districts", get(pages::home::districts))
        .route("/console/d/{district}", get(pages::home::home))
        .route("/console/d/{district}/jobs", get(pages::jobs::list))
        .route(
            "/console/d/{district}/jobs.json",
            get(pages::jobs::list_json),
        )
        .route("/console/d/{district}/jobs/{job}", get(pages::jobs::job))
        .route(
            "/console/d/{district}/jobs/{job}/status.json",
            get(pages::jobs::status),
        )
        .route(
            "/console/d/{district}/jobs/{job}/apply",
            post(pages::jobs::apply),
        )
        .route(
            "/console/d/{district}/jobs/{job}/log.csv",
            get(pages::jobs::log_csv),
        )
        .route("/console/d/{district}/events", get(pages::jobs::events))
        .route("/console/d/{district}/upload", get(pages::upload::form))
        .route(
            "/console/d/{district}/imports",
            post(pages::upload::import).layer(DefaultBodyLimit::disable()),
        )
        .route("/console/d/{district}/missing", get(pages::missing::list))
        .route(
            "/console/d/{district}/missing.csv",
            get(pages::missing::csv),
        )
        .route("/console/d/{district}/people", get(pages::person::find))
        .route(
            "/console/d/{district}/people/{person}",
            get(pages::person::show),
        )
        .route(
            "/console/d/{district}/people/{person}/photo",
            get(pages::person::photo)
                .put(pages::person::replace)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/console/d/{district}/people/{person}/photo/delete",
            post(pages::person::delete),
        )
        .route(
            "/console/d/{district}/people/{person}/photos/{photo}",
            get(pages::person::version),
        )
        .route(
            "/console/d/{district}/people/{person}/photos/{photo}/restore",
            post(pages::person::restore),
        )
        .route("/console/d/{district}/schools", get(pages::schools::list))
        .route(
            "/console/d/{district}/schools/{school}/photos",
            post(pages::schools::set_photos),
        )
        .route(
            "/console/d/{district}/tokens",
            get(pages::tokens::list).post(pages::tokens::create),
        )
        .route(
            "/console/d/{district}/tokens/{token}/revoke",
            post(pages::tokens::revoke),
        )
        .route(
            "/console/d/{district}/sftp",
            get(pages::sftp::list).post(pages::sftp::create),
        )
        .route(
            "/console/d/{district}/sftp/{username}/disabled",
            post(pages::sftp::set_disabled),
        )
        .route(
            "/console/d/{district}/sftp/{username}/password",
            post(pages::sftp::set_password),
        )
        .route(
            "/console/d/{district}/sftp/{username}/keys",
            post(pages::sftp::set_keys),
        )
        .route(
            "/console/d/{district}/sftp/{username}/delete",
            post(pages::sftp::delete),
        )
        .route(
            "/console/d/{district}/webhooks",
            get(pages::webhooks::list).post(pages::webhooks::create),
        )
        .route(
            "/console/d/{district}/webhooks/{id}/enable",
            post(pages::webhooks::enable),
        )
        .route(
            "/console/d/{district}/webhooks/{id}/delete",
            post(pages::webhooks::delete),
        )
        .layer(axum::middleware::map_response(with_policy))
        .with_state(console)
}

/// Every console response says what its page may load ([`html::POLICY`]).
async fn with_policy(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(html::POLICY),
    );
    response
}

/// The style sheet and script, from the binary.
mod assets {
    use axum::http::header;
    use axum::response::IntoResponse;

    pub async fn style() -> impl IntoResponse {
        (
            [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
            crate::html::STYLE,
        )
    }

    pub async fn script() -> impl IntoResponse {
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            crate::html::SCRIPT,
        )
    }
}

/// A signed-in session, or a redirect to the sign-in page.
pub struct SignedIn(pub Session);

impl<S> FromRequestParts<S> for SignedIn
where
    Console: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let console = Console::from_ref(state);
        let session = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(session::cookie_value)
            .and_then(|value| console.keys.open(value, Utc::now()).ok());
        match session {
            Some(session) => Ok(SignedIn(session)),
            None => Err(Redirect::to("/console/sign-in").into_response()),
        }
    }
}

/// A POST from another site (or a page not of this console) is refused: the browser says where a
/// form came from in `Origin` (and `Sec-Fetch-Site`), which a page elsewhere cannot forge.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_ok = match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => host.is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
        }),
    };
    let fetch_ok = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|site| matches!(site, "same-origin" | "none"));
    origin_ok && fetch_ok
}

/// A refused form: `403` with a page that says why.
pub(crate) fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::response::Html(html::page("Refused", None, None, &html::alert(message))),
    )
        .into_response()
}

/// A form's checks: from the console's own origin, with the session's CSRF value.
pub(crate) fn form_refused(headers: &HeaderMap, session: &Session, csrf: &str) -> Option<Response> {
    (!same_origin(headers) || !session.csrf_matches(csrf)).then(|| {
        forbidden("This form has expired or did not come from the console; reload the page.")
    })
}

/// A script's call's checks: from the console's own origin, with the session's CSRF value in
/// `X-CSRF-Token`. Refused as JSON, which the page's script shows.
pub(crate) fn call_refused(headers: &HeaderMap, session: &Session) -> Option<Response> {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    (!same_origin(headers) || !session.csrf_matches(sent)).then(|| {
        json_error(
            StatusCode::FORBIDDEN,
            "This page has expired or is not the console's; reload it.",
        )
    })
}

/// An error for a page's script, in the API's shape.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": {"message": message}})),
    )
        .into_response()
}
