//! A district's tokens (admins): who has one and with which role, a new token — shown this once,
//! never again and never logged — and revoking one.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{district_of, failed, not_found, text};
use crate::html::{alert, csrf_field, escape, page, query_value};
use crate::session::Session;
use crate::{Console, SignedIn, form_refused};

const ROLES: [&str; 3] = ["viewer", "importer", "admin"];

async fn render(console: &Console, session: &Session, district: &str, before: &str) -> Response {
    let tokens = match console
        .api
        .get_json(&session.token, &format!("/v1/districts/{district}/tokens"))
        .await
    {
        Ok(t) => t,
        Err(failure) => return failed(session, district, failure),
    };
    let d = escape(district);
    let mut body = before.to_owned();
    body.push_str(
        "<table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Role</th><th scope=\"col\">Created</th>\
         <th scope=\"col\">Expires</th><th scope=\"col\">Actions</th></tr></thead><tbody>",
    );
    let list = tokens.as_array().or_else(|| tokens["items"].as_array());
    for t in list.into_iter().flatten() {
        let name = t["name"].as_str().unwrap_or("(no name)");
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>\
             <form class=\"inline\" method=\"post\" action=\"/console/d/{d}/tokens/{}/revoke\">{}\
             <button type=\"submit\" class=\"danger\" aria-label=\"Revoke {}\">Revoke</button></form></td></tr>",
            escape(name),
            escape(text(t, "role")),
            escape(text(t, "created_at")),
            escape(t["expires_at"].as_str().unwrap_or("never")),
            escape(&query_value(text(t, "id"))),
            csrf_field(session),
            escape(name),
        );
    }
    body.push_str("</tbody></table>");
    let _ = write!(
        body,
        "<h2>A new token</h2><form method=\"post\" action=\"/console/d/{d}/tokens\">{}\
         <label for=\"name\">Name (who or what uses it)</label><input id=\"name\" name=\"name\" required maxlength=\"200\">\
         <label for=\"role\">Role</label><select id=\"role\" name=\"role\">",
        csrf_field(session)
    );
    for role in ROLES {
        let _ = write!(body, "<option>{role}</option>");
    }
    body.push_str(
        "</select><label for=\"expires\">Expires (optional)</label><input id=\"expires\" name=\"expires\" type=\"date\">\
         <p><button type=\"submit\" id=\"create-token\">Create token</button></p></form>\
         <p class=\"note\">A viewer reads photos, people, jobs and reports; an importer also uploads; an admin \
         also manages tokens, SFTP accounts and webhooks.</p>",
    );
    Html(page("Tokens", Some(session), Some(district), &body)).into_response()
}

pub async fn list(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path(raw): Path<String>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    render(&console, &session, &district, "").await
}

#[derive(Deserialize)]
pub struct NewToken {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    expires: String,
}

/// Makes a token and shows it, this once.
pub async fn create(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<NewToken>,
) -> Response {
    if let Some(refused) = form_refused(&headers, &session, &form.csrf) {
        return refused;
    }
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    if !ROLES.contains(&form.role.as_str()) {
        return render(&console, &session, &district, &alert("Choose a role.")).await;
    }
    let mut request = Map::new();
    request.insert("role".into(), json!(form.role));
    if !form.name.trim().is_empty() {
        request.insert("name".into(), json!(form.name.trim()));
    }
    if !form.expires.is_empty() {
        request.insert(
            "expires_at".into(),
            json!(format!("{}T00:00:00Z", form.expires)),
        );
    }
    let call = console
        .api
        .request(
            Method::POST,
            &session.token,
            &format!("/v1/districts/{district}/tokens"),
        )
        .json(&Value::Object(request));
    match console.api.send_json(call).await {
        Ok(made) => {
            let shown = format!(
                "<div class=\"note\" role=\"status\"><p>The new {} token <strong>{}</strong>. Copy it now: \
                 it is shown this once and cannot be seen again.</p>\
                 <p class=\"secret\" id=\"new-secret\">{}</p></div>",
                escape(text(&made, "role")),
                escape(made["name"].as_str().unwrap_or("")),
                escape(text(&made, "token")),
            );
            render(&console, &session, &district, &shown).await
        }
        Err(failure) => render(&console, &session, &district, &alert(&failure.to_string())).await,
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn revoke(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path((raw, id)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = form_refused(&headers, &session, &form.csrf) {
        return refused;
    }
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let call = console.api.request(
        Method::DELETE,
        &session.token,
        &format!("/v1/districts/{district}/tokens/{}", query_value(&id)),
    );
    match console.api.send_json(call).await {
        Ok(_) => Redirect::to(&format!("/console/d/{district}/tokens")).into_response(),
        Err(failure) => failed(&session, &district, failure),
    }
}
