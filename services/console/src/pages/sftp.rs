//! SFTP drop folders (admins): where the server listens and the host key to expect, the
//! district's accounts, a new account (a password, never shown again, and/or public keys),
//! disabling, enabling and removing one.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{district_of, failed, not_found, text};
use crate::html::{alert, csrf_field, escape, note, page, query_value};
use crate::session::Session;
use crate::{Console, SignedIn, form_refused};

async fn render(console: &Console, session: &Session, district: &str, before: &str) -> Response {
    let server = match console.api.get_json(&session.token, "/v1/sftp").await {
        Ok(s) => s,
        Err(failure) => return failed(session, district, failure),
    };
    let accounts = match console
        .api
        .get_json(
            &session.token,
            &format!("/v1/districts/{district}/sftp-accounts"),
        )
        .await
    {
        Ok(a) => a,
        Err(failure) => return failed(session, district, failure),
    };
    let d = escape(district);
    let mut body = before.to_owned();
    if server["enabled"].as_bool().unwrap_or(false) {
        let _ = write!(
            body,
            "<p>Server: <strong id=\"sftp-host\">{}:{}</strong></p><p>Host key fingerprint (check it on first connect): \
             <strong class=\"secret\" id=\"sftp-fingerprint\">{}</strong></p>",
            escape(text(&server, "host")),
            server["port"].as_u64().unwrap_or(0),
            escape(text(&server, "fingerprint")),
        );
    } else {
        body.push_str(&note(
            "This installation runs no SFTP server; accounts made here are used once it does.",
        ));
    }
    body.push_str(
        "<table><thead><tr><th scope=\"col\">User name</th><th scope=\"col\">Password</th><th scope=\"col\">Keys</th>\
         <th scope=\"col\">State</th><th scope=\"col\">Created</th><th scope=\"col\"></th></tr></thead><tbody>",
    );
    let list = accounts.as_array().or_else(|| accounts["items"].as_array());
    for a in list.into_iter().flatten() {
        let user = text(a, "username");
        let disabled = a["disabled"].as_bool().unwrap_or(false);
        let u = escape(&query_value(user));
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>\
             <form class=\"inline\" method=\"post\" action=\"/console/d/{d}/sftp/{u}/disabled\">{csrf}\
             <input type=\"hidden\" name=\"disabled\" value=\"{}\">\
             <button type=\"submit\" class=\"secondary\" aria-label=\"{} {}\">{}</button></form> \
             <form class=\"inline\" method=\"post\" action=\"/console/d/{d}/sftp/{u}/delete\">{csrf}\
             <button type=\"submit\" class=\"danger\" aria-label=\"Remove {}\">Remove</button></form></td></tr>",
            escape(user),
            if a["has_password"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            },
            a["public_keys"].as_array().map_or(0, Vec::len),
            if disabled { "disabled" } else { "enabled" },
            escape(text(a, "created_at")),
            !disabled,
            if disabled { "Enable" } else { "Disable" },
            escape(user),
            if disabled { "Enable" } else { "Disable" },
            escape(user),
            csrf = csrf_field(session),
        );
    }
    body.push_str("</tbody></table>");
    let _ = write!(
        body,
        "<h2>A new account</h2><form method=\"post\" action=\"/console/d/{d}/sftp\">{}\
         <label for=\"username\">User name</label><input id=\"username\" name=\"username\" required autocomplete=\"off\">\
         <label for=\"password\">Password (at least 12 characters; optional with keys)</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"12\">\
         <label for=\"public_keys\">OpenSSH public keys, one a line (optional with a password)</label>\
         <textarea id=\"public_keys\" name=\"public_keys\" rows=\"3\" cols=\"60\"></textarea>\
         <p><button type=\"submit\" id=\"create-sftp\">Create account</button></p></form>",
        csrf_field(session)
    );
    Html(page("SFTP accounts", Some(session), Some(district), &body)).into_response()
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
pub struct NewAccount {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    public_keys: String,
}

pub async fn create(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<NewAccount>,
) -> Response {
    if let Some(refused) = form_refused(&headers, &session, &form.csrf) {
        return refused;
    }
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let mut request = Map::new();
    request.insert("username".into(), json!(form.username.trim()));
    if !form.password.is_empty() {
        request.insert("password".into(), json!(form.password));
    }
    let keys: Vec<&str> = form
        .public_keys
        .lines()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    if !keys.is_empty() {
        request.insert("public_keys".into(), json!(keys));
    }
    let call = console
        .api
        .request(
            Method::POST,
            &session.token,
            &format!("/v1/districts/{district}/sftp-accounts"),
        )
        .json(&Value::Object(request));
    let before = match console.api.send_json(call).await {
        Ok(made) => note(&format!(
            "Account {} created. Its password is not shown again.",
            text(&made, "username")
        )),
        Err(failure) => alert(&failure.to_string()),
    };
    render(&console, &session, &district, &before).await
}

#[derive(Deserialize)]
pub struct Disable {
    #[serde(default)]
    csrf: String,
    disabled: bool,
}

pub async fn set_disabled(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path((raw, username)): Path<(String, String)>,
    Form(form): Form<Disable>,
) -> Response {
    if let Some(refused) = form_refused(&headers, &session, &form.csrf) {
        return refused;
    }
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let call = console
        .api
        .request(
            Method::PATCH,
            &session.token,
            &format!(
                "/v1/districts/{district}/sftp-accounts/{}",
                query_value(&username)
            ),
        )
        .json(&json!({"disabled": form.disabled}));
    match console.api.send_json(call).await {
        Ok(_) => Redirect::to(&format!("/console/d/{district}/sftp")).into_response(),
        Err(failure) => failed(&session, &district, failure),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn delete(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path((raw, username)): Path<(String, String)>,
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
        &format!(
            "/v1/districts/{district}/sftp-accounts/{}",
            query_value(&username)
        ),
    );
    match console.api.send_json(call).await {
        Ok(_) => Redirect::to(&format!("/console/d/{district}/sftp")).into_response(),
        Err(failure) => failed(&session, &district, failure),
    }
}
