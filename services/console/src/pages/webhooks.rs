//! Webhooks (admins): the district's endpoints and their state, a new one — its signing secret
//! shown this once — enabling a disabled one again, and removing one.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{district_of, failed, not_found, text};
use crate::html::{alert, csrf_field, escape, page, query_value};
use crate::session::Session;
use crate::{Console, SignedIn, form_refused};

const EVENT_TYPES: [&str; 2] = ["job.status", "webhook.disabled"];

async fn render(console: &Console, session: &Session, district: &str, before: &str) -> Response {
    let hooks = match console
        .api
        .get_json(
            &session.token,
            &format!("/v1/districts/{district}/webhooks"),
        )
        .await
    {
        Ok(h) => h,
        Err(failure) => return failed(session, district, failure),
    };
    let d = escape(district);
    let mut body = before.to_owned();
    body.push_str(
        "<table><thead><tr><th scope=\"col\">URL</th><th scope=\"col\">Events</th><th scope=\"col\">State</th>\
         <th scope=\"col\">Created</th><th scope=\"col\">Actions</th></tr></thead><tbody>",
    );
    let list = hooks["items"].as_array().or_else(|| hooks.as_array());
    for h in list.into_iter().flatten() {
        let id = escape(&query_value(text(h, "id")));
        let url = escape(text(h, "url"));
        let enabled = h["enabled"].as_bool().unwrap_or(true);
        let events: Vec<&str> = h["event_types"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let enable = if enabled {
            String::new()
        } else {
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/console/d/{d}/webhooks/{id}/enable\">{}\
                 <button type=\"submit\" class=\"secondary\" aria-label=\"Enable {url}\">Enable</button></form> ",
                csrf_field(session)
            )
        };
        let _ = write!(
            body,
            "<tr><td>{url}</td><td>{}</td><td>{}</td><td>{}</td><td>{enable}\
             <form class=\"inline\" method=\"post\" action=\"/console/d/{d}/webhooks/{id}/delete\">{}\
             <button type=\"submit\" class=\"danger\" aria-label=\"Remove {url}\">Remove</button></form></td></tr>",
            escape(&events.join(", ")),
            if enabled {
                "enabled".to_owned()
            } else {
                format!(
                    "disabled: {}",
                    escape(h["disabled_reason"].as_str().unwrap_or(""))
                )
            },
            escape(text(h, "created_at")),
            csrf_field(session),
        );
    }
    body.push_str("</tbody></table>");
    let _ = write!(
        body,
        "<h2>A new endpoint</h2><form method=\"post\" action=\"/console/d/{d}/webhooks\">{}\
         <label for=\"url\">URL (https://…)</label><input id=\"url\" name=\"url\" type=\"url\" required size=\"60\">\
         <fieldset><legend>Events</legend>",
        csrf_field(session)
    );
    for (i, t) in EVENT_TYPES.iter().enumerate() {
        let _ = write!(
            body,
            "<input type=\"checkbox\" id=\"event-{i}\" name=\"event_types\" value=\"{t}\"{}><label for=\"event-{i}\">{t}</label>",
            if i == 0 { " checked" } else { "" }
        );
    }
    body.push_str(
        "</fieldset><p><button type=\"submit\" id=\"create-webhook\">Add endpoint</button></p></form>",
    );
    Html(page("Webhooks", Some(session), Some(district), &body)).into_response()
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

pub async fn create(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path(raw): Path<String>,
    // Repeated `event_types` fields, which a form of a struct cannot read.
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Response {
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    if let Some(refused) = form_refused(&headers, &session, value("csrf")) {
        return refused;
    }
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let events: Vec<&str> = fields
        .iter()
        .filter(|(k, v)| k == "event_types" && EVENT_TYPES.contains(&v.as_str()))
        .map(|(_, v)| v.as_str())
        .collect();
    let call = console
        .api
        .request(
            Method::POST,
            &session.token,
            &format!("/v1/districts/{district}/webhooks"),
        )
        .json(&json!({"url": value("url").trim(), "event_types": events}));
    let before = match console.api.send_json(call).await {
        Ok(made) => format!(
            "<div class=\"note\" role=\"status\"><p>Endpoint {} added. Its signing secret, shown this once \
             (keep it where the receiver checks signatures):</p><p class=\"secret\" id=\"new-secret\">{}</p></div>",
            escape(text(&made, "url")),
            escape(text(&made, "secret")),
        ),
        Err(failure) => alert(&failure.to_string()),
    };
    render(&console, &session, &district, &before).await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn act(
    console: &Console,
    session: &Session,
    headers: &HeaderMap,
    raw: &str,
    csrf: &str,
    method: Method,
    suffix: &str,
) -> Response {
    if let Some(refused) = form_refused(headers, session, csrf) {
        return refused;
    }
    let Some(district) = district_of(session, raw) else {
        return not_found(session);
    };
    let call = console.api.request(
        method,
        &session.token,
        &format!("/v1/districts/{district}/webhooks/{suffix}"),
    );
    match console.api.send_json(call).await {
        Ok(_) => Redirect::to(&format!("/console/d/{district}/webhooks")).into_response(),
        Err(failure) => failed(session, &district, failure),
    }
}

pub async fn enable(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path((raw, id)): Path<(String, String)>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let suffix = format!("{}/enable", query_value(&id));
    act(
        &console,
        &session,
        &headers,
        &raw,
        &form.csrf,
        Method::POST,
        &suffix,
    )
    .await
}

pub async fn delete(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path((raw, id)): Path<(String, String)>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let suffix = query_value(&id);
    act(
        &console,
        &session,
        &headers,
        &raw,
        &form.csrf,
        Method::DELETE,
        &suffix,
    )
    .await
}
