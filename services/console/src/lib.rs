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
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
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
        .route(
            "/console/sign-in",
            get(pages::sign_in::form).post(pages::sign_in::sign_in),
        )
        .route("/console/sign-out", post(pages::sign_in::sign_out))
        .route("/console/districts", get(pages::home::districts))
        .route("/console/d/{district}", get(pages::home::home))
        .route("/console/d/{district}/jobs", get(pages::jobs::list))
        .route("/console/d/{district}/jobs/{job}", get(pages::jobs::job))
        .route(
            "/console/d/{district}/jobs/{job}/log.csv",
            get(pages::jobs::log_csv),
        )
        .route("/console/d/{district}/missing", get(pages::missing::list))
        .route(
            "/console/d/{district}/missing.csv",
            get(pages::missing::csv),
        )
        .route("/console/d/{district}/schools", get(pages::schools::list))
        .route(
            "/console/d/{district}/schools/{school}/photos",
            post(pages::schools::set_photos),
        )
        .with_state(console)
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
