//! Schools and their photos, on or off (SmartPass's Enable/Disable), one button a school.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{district_of, failed, not_found};
use crate::html::{csrf_field, escape, page, query_value};
use crate::{Console, SignedIn, forbidden, same_origin};

pub async fn list(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Path(raw): Path<String>,
) -> Response {
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let schools = match console
        .api
        .get_json(&session.token, &format!("/v1/districts/{district}/schools"))
        .await
    {
        Ok(s) => s,
        Err(failure) => return failed(&session, &district, failure),
    };
    let d = escape(&district);
    let admin = session.may("admin");
    let mut body = String::from(
        "<table><thead><tr><th scope=\"col\">School</th><th scope=\"col\" class=\"num\">People</th>\
         <th scope=\"col\" class=\"num\">Missing photos</th><th scope=\"col\">Photos</th></tr></thead><tbody>",
    );
    for s in schools.as_array().into_iter().flatten() {
        let id = s["id"].as_str().unwrap_or_default();
        let name = escape(s["name"].as_str().unwrap_or_default());
        let on = s["photos_enabled"].as_bool().unwrap_or(true);
        let control = if admin {
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/console/d/{d}/schools/{}/photos\">{}\
                 <input type=\"hidden\" name=\"enabled\" value=\"{}\">\
                 <button type=\"submit\" aria-label=\"Turn {} photos for {name}\">Turn {}</button></form>",
                escape(id),
                csrf_field(&session),
                !on,
                if on { "off" } else { "on" },
                if on { "off" } else { "on" },
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\"><a href=\"/console/d/{d}/missing?school={}\">{}</a></td>\
             <td><strong>{}</strong> {control}</td></tr>",
            s["people"].as_u64().unwrap_or(0),
            query_value(id),
            s["missing_photos"].as_u64().unwrap_or(0),
            if on { "on" } else { "off" },
        );
    }
    body.push_str("</tbody></table><p class=\"note\">With photos off, every photo request for the school's people gets the placeholder. Nothing is deleted; turn them on again to show the photos.</p>");
    Html(page("Schools", Some(&session), Some(&district), &body)).into_response()
}

#[derive(Deserialize)]
pub struct PhotosForm {
    #[serde(default)]
    csrf: String,
    enabled: bool,
}

pub async fn set_photos(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    Path((raw, school)): Path<(String, String)>,
    Form(form): Form<PhotosForm>,
) -> Response {
    if !same_origin(&headers) || !session.csrf_matches(&form.csrf) {
        return forbidden(
            "This form has expired or did not come from the console; reload the page.",
        );
    }
    let Some(district) = district_of(&session, &raw) else {
        return not_found(&session);
    };
    let request = console
        .api
        .request(
            Method::PUT,
            &session.token,
            &format!("/v1/districts/{district}/schools/{}", query_value(&school)),
        )
        .json(&json!({"photos_enabled": form.enabled}));
    match console.api.send_json(request).await {
        Ok(_) => Redirect::to(&format!("/console/d/{district}/schools")).into_response(),
        Err(failure) => failed(&session, &district, failure),
    }
}
