//! SFTP drop folders (admins): where the server listens, the host key to expect (its
//! fingerprint and a `known_hosts` line) and how to connect with FileZilla, WinSCP or OpenSSH;
//! the district's accounts; a new account (a password, never shown again, and/or public keys);
//! an account's password changed or its keys replaced; disabling, enabling and removing one.
//! A password typed here goes to the API and nowhere else: it is never put back in a page, a
//! redirect or a log.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{district_of, failed, not_found, text};
use crate::html::{alert, csrf_field, escape, note, page, query_value};
use crate::session::Session;
use crate::{Console, SignedIn, form_refused};

/// Where the server is, the host key, and how to connect.
fn server_section(server: &Value) -> String {
    let mut body = String::from("<h2>Server</h2>");
    if !server["enabled"].as_bool().unwrap_or(false) {
        body.push_str(&note(
            "This installation runs no SFTP server; accounts made here are used once it does.",
        ));
        return body;
    }
    let host = escape(text(server, "host"));
    let port = server["port"].as_u64().unwrap_or(22);
    let _ = write!(
        body,
        "<dl class=\"facts\"><dt>Host</dt><dd id=\"sftp-host\">{host}</dd>\
         <dt>Port</dt><dd id=\"sftp-port\">{port}</dd>\
         <dt>Host key fingerprint</dt><dd><code class=\"secret\" id=\"sftp-fingerprint\">{}</code></dd>\
         <dt><label for=\"sftp-known-hosts\">known_hosts line</label></dt>\
         <dd><textarea id=\"sftp-known-hosts\" class=\"secret\" rows=\"3\" readonly>{}</textarea></dd></dl>\
         <p>Check the fingerprint the first time a program connects: if it shows another, do not \
         connect, and tell your operator.</p>",
        escape(text(server, "fingerprint")),
        escape(text(server, "known_hosts")),
    );
    let _ = write!(
        body,
        "<h2>Connecting</h2><dl class=\"howto\">\
         <dt>FileZilla</dt><dd>File → Site Manager → New site. Protocol <em>SFTP</em>, host <code>{host}</code>, \
         port <code>{port}</code>, logon type <em>Normal</em> (user name and password) or <em>Key file</em>. \
         On the first connection compare the fingerprint it shows with the one above before you accept it.</dd>\
         <dt>WinSCP</dt><dd>New Site. File protocol <em>SFTP</em>, host name <code>{host}</code>, port number \
         <code>{port}</code>, user name and password (or Advanced → SSH → Authentication → private key file, \
         as <code>.ppk</code>). WinSCP shows the fingerprint on the first connection: compare it with the one above.</dd>\
         <dt>OpenSSH</dt><dd>Add the <code>known_hosts</code> line above to <code>~/.ssh/known_hosts</code>, then \
         <code>sftp -P {port} <var>user</var>@{host}</code> and <code>put 1234.jpg /incoming/idphotos/</code>.</dd>\
         </dl><p>Photos (named by student number, SIS id or email), zips and a mapping CSV go in \
         <code>/incoming/idphotos/</code>; roster CSVs in <code>/incoming/data/</code>. Each drop becomes a job.</p>"
    );
    body
}

/// The note a finished change leaves (`?changed=…&account=…`): fixed words and the account's
/// name, never a password.
fn changed_note(changed: &str, account: &str) -> String {
    let account = account.to_owned();
    match changed {
        "created" => note(&format!(
            "Account {account} created. Its password is not shown again."
        )),
        "password" => note(&format!(
            "The password of {account} was changed. It is not shown again: give it to whoever connects, \
             who must use it from now on."
        )),
        "keys" => note(&format!("The public keys of {account} were replaced.")),
        "disabled" => note(&format!("{account} is disabled: it can no longer log in.")),
        "enabled" => note(&format!("{account} is enabled again.")),
        "removed" => note(&format!("{account} was removed.")),
        _ => String::new(),
    }
}

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
    let csrf = csrf_field(session);
    let mut body = before.to_owned();
    body.push_str(&server_section(&server));
    body.push_str(
        "<h2>Accounts</h2><table id=\"sftp-accounts\"><thead><tr><th scope=\"col\">User name</th>\
         <th scope=\"col\">Password</th><th scope=\"col\" class=\"num\">Keys</th><th scope=\"col\">State</th>\
         <th scope=\"col\">Created</th><th scope=\"col\">Changed</th><th scope=\"col\">Actions</th></tr></thead><tbody>",
    );
    let list: Vec<&Value> = accounts
        .as_array()
        .or_else(|| accounts["items"].as_array())
        .into_iter()
        .flatten()
        .collect();
    if list.is_empty() {
        body.push_str("<tr><td colspan=\"7\">No accounts yet.</td></tr>");
    }
    for a in &list {
        let user = text(a, "username");
        let name = escape(user);
        let disabled = a["disabled"].as_bool().unwrap_or(false);
        let u = escape(&query_value(user));
        let action = if disabled { "Enable" } else { "Disable" };
        let _ = write!(
            body,
            "<tr data-account=\"{name}\"><th scope=\"row\">{name}</th><td data-k=\"password\">{}</td>\
             <td class=\"num\" data-k=\"keys\">{}</td><td data-k=\"state\">{}</td><td>{}</td><td data-k=\"rotated\">{}</td><td>\
             <form class=\"inline\" method=\"post\" action=\"/console/d/{d}/sftp/{u}/disabled\">{csrf}\
             <input type=\"hidden\" name=\"disabled\" value=\"{}\">\
             <button type=\"submit\" class=\"secondary\" aria-label=\"{action} {name}\">{action}</button></form> \
             <form class=\"inline\" method=\"post\" action=\"/console/d/{d}/sftp/{u}/delete\">{csrf}\
             <button type=\"submit\" class=\"danger\" aria-label=\"Remove {name}\">Remove</button></form></td></tr>",
            if a["has_password"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            },
            a["public_keys"].as_array().map_or(0, Vec::len),
            if disabled { "disabled" } else { "enabled" },
            escape(text(a, "created_at")),
            escape(text(a, "rotated_at")),
            !disabled,
        );
    }
    body.push_str("</tbody></table>");
    for (i, a) in list.iter().enumerate() {
        let user = text(a, "username");
        let name = escape(user);
        let u = escape(&query_value(user));
        let keys: Vec<&str> = a["public_keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let _ = write!(
            body,
            "<section aria-labelledby=\"account-{i}\"><h3 id=\"account-{i}\">{name}</h3>\
             <form method=\"post\" action=\"/console/d/{d}/sftp/{u}/password\">{csrf}\
             <label for=\"password-{i}\">New password for {name} (at least 12 characters)</label>\
             <input id=\"password-{i}\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"12\" required>\
             <p><button type=\"submit\">Change password</button></p></form>\
             <form method=\"post\" action=\"/console/d/{d}/sftp/{u}/keys\">{csrf}\
             <label for=\"keys-{i}\">Public keys of {name}, one a line (these replace the keys it has; \
             empty removes them, if it has a password)</label>\
             <textarea id=\"keys-{i}\" name=\"public_keys\" rows=\"3\" cols=\"60\" spellcheck=\"false\">{}</textarea>\
             <p><button type=\"submit\">Replace keys</button></p></form></section>",
            escape(&keys.join("\n")),
        );
    }
    let _ = write!(
        body,
        "<h2>A new account</h2><form method=\"post\" action=\"/console/d/{d}/sftp\">{csrf}\
         <label for=\"username\">User name</label><input id=\"username\" name=\"username\" required autocomplete=\"off\">\
         <label for=\"password\">Password (at least 12 characters; optional with keys)</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"12\">\
         <label for=\"public_keys\">OpenSSH public keys, one a line (optional with a password)</label>\
         <textarea id=\"public_keys\" name=\"public_keys\" rows=\"3\" cols=\"60\" spellcheck=\"false\"></textarea>\
         <p><button type=\"submit\" id=\"create-sftp\">Create account</button></p></form>"
    );
    Html(page("SFTP accounts", Some(session), Some(district), &body)).into_response()
}

#[derive(Deserialize)]
pub struct Changed {
    changed: Option<String>,
    account: Option<String>,
}

pub async fn list(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path(raw): Path<String>,
    Query(changed): Query<Changed>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let before = match (&changed.changed, &changed.account) {
        (Some(what), Some(account)) => changed_note(what, account),
        _ => String::new(),
    };
    render(&console, &session, &district, &before).await
}

/// After a change: the page again (so reloading it sends nothing twice), saying what changed.
fn done(district: &str, changed: &str, account: &str) -> Response {
    Redirect::to(&format!(
        "/console/d/{district}/sftp?changed={changed}&account={}",
        query_value(account)
    ))
    .into_response()
}

/// The account's address in the API.
fn account_path(district: &str, username: &str) -> String {
    format!(
        "/v1/districts/{district}/sftp-accounts/{}",
        query_value(username)
    )
}

/// Lines of public keys, blank ones dropped.
fn key_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect()
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
    let keys = key_lines(&form.public_keys);
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
    match console.api.send_json(call).await {
        Ok(made) => done(&district, "created", text(&made, "username")),
        Err(failure) => render(&console, &session, &district, &alert(&failure.to_string())).await,
    }
}

#[derive(Deserialize)]
pub struct NewPassword {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// Changes an account's password (`PATCH` with `password`); its keys are kept.
pub async fn set_password(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path((raw, username)): Path<(String, String)>,
    Form(form): Form<NewPassword>,
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
            &account_path(&district, &username),
        )
        .json(&json!({"password": form.password}));
    match console.api.send_json(call).await {
        Ok(_) => {
            tracing::info!(%district, user = %username, "console: SFTP password changed");
            done(&district, "password", &username)
        }
        Err(failure) => render(&console, &session, &district, &alert(&failure.to_string())).await,
    }
}

#[derive(Deserialize)]
pub struct NewKeys {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    public_keys: String,
}

/// Replaces an account's public keys (`PATCH` with `public_keys`); its password is kept.
pub async fn set_keys(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path((raw, username)): Path<(String, String)>,
    Form(form): Form<NewKeys>,
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
            &account_path(&district, &username),
        )
        .json(&json!({"public_keys": key_lines(&form.public_keys)}));
    match console.api.send_json(call).await {
        Ok(_) => {
            tracing::info!(%district, user = %username, "console: SFTP keys replaced");
            done(&district, "keys", &username)
        }
        Err(failure) => render(&console, &session, &district, &alert(&failure.to_string())).await,
    }
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
            &account_path(&district, &username),
        )
        .json(&json!({"disabled": form.disabled}));
    match console.api.send_json(call).await {
        Ok(_) => done(
            &district,
            if form.disabled { "disabled" } else { "enabled" },
            &username,
        ),
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
        &account_path(&district, &username),
    );
    match console.api.send_json(call).await {
        Ok(_) => done(&district, "removed", &username),
        Err(failure) => failed(&session, &district, failure),
    }
}
