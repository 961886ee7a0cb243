//! Signing in with a token (a district's, or the operator's, which then picks a district) and
//! out.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use crate::html::{alert, page};
use crate::session::{self, LIFETIME, Session};
use crate::{Console, SignedIn, forbidden, same_origin};

/// `/console`: home when signed in, else the sign-in page.
pub async fn start(State(console): State<Console>, headers: HeaderMap) -> Redirect {
    let signed_in = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::cookie_value)
        .and_then(|v| console.keys.open(v, Utc::now()).ok());
    match signed_in {
        Some(Session {
            district: Some(d), ..
        }) => Redirect::to(&format!("/console/d/{d}")),
        Some(_) => Redirect::to("/console/districts"),
        None => Redirect::to("/console/sign-in"),
    }
}

pub async fn form() -> Html<String> {
    Html(sign_in_page(None))
}

fn sign_in_page(error: Option<&str>) -> String {
    let body = format!(
        "{}<form method=\"post\" action=\"/console/sign-in\">\
         <label for=\"token\">Token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required size=\"48\">\
         <label for=\"district\">District <span>(operator token only)</span></label>\
         <input id=\"district\" name=\"district\" autocomplete=\"off\" size=\"24\">\
         <p><button type=\"submit\">Sign in</button></p></form>\
         <p class=\"note\">Use a district token (ask your operator or an admin of your district), \
         or the operator token printed when Pictureday started.</p>",
        error.map(alert).unwrap_or_default()
    );
    page("Sign in", None, None, &body)
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    #[serde(default)]
    district: String,
}

pub async fn sign_in(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if !same_origin(&headers) {
        return forbidden("This form must be sent from the console's own page.");
    }
    let token = form.token.trim().to_owned();
    let refused = |message: &str| {
        (StatusCode::UNAUTHORIZED, Html(sign_in_page(Some(message)))).into_response()
    };
    if token.is_empty() {
        return refused("Enter a token.");
    }
    let who = match console.api.get_json(&token, "/v1/whoami").await {
        Ok(who) => who,
        Err(failure) if failure.status() == StatusCode::UNAUTHORIZED => {
            return refused("That token is not valid (or has expired or been revoked).");
        }
        Err(failure) => return refused(&failure.to_string()),
    };
    let (role, district) = match who["kind"].as_str() {
        Some("operator") => {
            let district = form.district.trim();
            (
                "operator".to_owned(),
                (!district.is_empty()).then(|| district.to_owned()),
            )
        }
        _ => (
            who["role"].as_str().unwrap_or("viewer").to_owned(),
            who["district"].as_str().map(str::to_owned),
        ),
    };
    // The operator naming a district: it must exist.
    if role == "operator"
        && let Some(d) = &district
        && console
            .api
            .get_json(&token, &format!("/v1/districts/{d}"))
            .await
            .is_err()
    {
        return refused(&format!("There is no district {d:?}."));
    }
    let csrf = match console.keys.random_hex(16) {
        Ok(csrf) => csrf,
        Err(_) => return refused("Signing in failed; try again."),
    };
    let session = Session {
        token,
        role,
        district: district.clone(),
        csrf,
        expires_at: Utc::now() + LIFETIME,
    };
    let Ok(sealed) = console.keys.seal(&session) else {
        return refused("Signing in failed; try again.");
    };
    let to = match &district {
        Some(d) => format!("/console/d/{d}"),
        None => "/console/districts".to_owned(),
    };
    tracing::info!(role = %session.role, district = ?session.district, "console sign-in");
    with_cookie(
        Redirect::to(&to),
        &session::set_cookie(Some(&sealed), console.secure_cookies),
    )
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !same_origin(&headers) || !session.csrf_matches(&form.csrf) {
        return forbidden(
            "This form has expired or did not come from the console; reload the page.",
        );
    }
    with_cookie(
        Redirect::to("/console/sign-in"),
        &session::set_cookie(None, console.secure_cookies),
    )
}

fn with_cookie(redirect: Redirect, cookie: &str) -> Response {
    let mut response = redirect.into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    // Nothing signed in is ever kept by a cache.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
