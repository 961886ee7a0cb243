//! The whole API's OpenAPI 3.1 document, merged from every service's part (each generated from
//! its handlers), served at `/v1/openapi.json`, and rendered as a plain HTML reference at
//! `/v1/docs` (server-side, no scripts). The embedded default and the gateway both serve them;
//! neither needs a token: they document the API and hold no data.

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use utoipa::OpenApi as _;
use utoipa::openapi::{InfoBuilder, OpenApi};

/// Where the document is served.
pub const DOCUMENT: &str = "/v1/openapi.json";

/// The reference page's policy: its own inline styles, nothing else.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

/// The document as JSON (OpenAPI 3.1).
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "docs",
    operation_id = "openapiDocument",
    security(()),
    responses((status = 200, description = "This document: every route, its parameters, bodies, responses and examples.", body = Object, content_type = "application/json"))
)]
async fn document_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT_JSON.as_str(),
    )
        .into_response()
}

/// The reference: the document rendered as one HTML page.
#[utoipa::path(
    get,
    path = "/v1/docs",
    tag = "docs",
    operation_id = "apiReference",
    security(()),
    responses((status = 200, description = "The API reference, as HTML.", body = String, content_type = "text/html"))
)]
async fn reference_page() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        REFERENCE_HTML.as_str(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    response
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(document_json, reference_page),
    tags(
        (name = "docs", description = "This document and its reference page."),
        (name = "health", description = "Liveness and readiness of a listener."),
    )
)]
struct DocsApi;

/// The merged document: every service's routes, the health endpoints, the document itself; the
/// bearer scheme, the error shape and the standard error responses.
pub fn document() -> OpenApi {
    let mut doc = DocsApi::openapi();
    doc.info = InfoBuilder::new()
        .title("Pictureday API")
        .version("v1")
        .description(Some(
            "School ID photos, from a photographer's delivery to every school app: districts and \
             their tokens, rosters, photo imports and their jobs, people and their photos.\n\n\
             Every request carries `Authorization: Bearer <token>` (the operator token, or a \
             district token with a role: `admin` ⊃ `importer` ⊃ `viewer`), except the signed \
             photo links, the health endpoints and this document. Any other district than the \
             token's, existing or not, is a `404`. Every refusal is JSON: \
             `{\"error\": {\"code\", \"message\", \"details\"}}` (the `Error` schema).",
        ))
        .build();
    for part in [
        pictureday_platform::openapi::health(),
        pictureday_ingest::openapi::openapi(),
        pictureday_roster::openapi::openapi(),
        pictureday_reporting::openapi::openapi(),
    ] {
        doc.merge(part);
    }
    // Tags in the order an integrator meets them.
    if let Some(tags) = doc.tags.as_mut() {
        tags.sort_by_key(|tag| {
            TAG_ORDER
                .iter()
                .position(|name| *name == tag.name)
                .unwrap_or(TAG_ORDER.len())
        });
    }
    pictureday_platform::openapi::finish(doc)
}

const TAG_ORDER: [&str; 11] = [
    "districts",
    "tokens",
    "roster",
    "imports",
    "jobs",
    "webhooks",
    "people",
    "photo-links",
    "retention",
    "health",
    "docs",
];

static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    document().to_pretty_json().unwrap_or_else(|error| {
        format!("{{\"error\": {{\"code\": \"internal\", \"message\": \"{error}\"}}}}")
    })
});

static REFERENCE_HTML: LazyLock<String> = LazyLock::new(|| {
    let doc = serde_json::to_value(document()).unwrap_or(Value::Null);
    render(&doc)
});

/// `/v1/openapi.json` and `/v1/docs` (literal paths, as every route's: the tests read them).
pub fn router() -> Router {
    Router::new()
        .route("/v1/openapi.json", get(document_json))
        .route("/v1/docs", get(reference_page))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Prose of the document: escaped, with `code` spans and paragraphs.
fn prose(text: &str) -> String {
    let mut out = String::new();
    for paragraph in text.split("\n\n") {
        out.push_str("<p>");
        for (i, part) in escape(paragraph).split('`').enumerate() {
            if i % 2 == 1 {
                let _ = write!(out, "<code>{part}</code>");
            } else {
                out.push_str(part);
            }
        }
        out.push_str("</p>");
    }
    out
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A schema in a line: its component's name (linked), or its type.
fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{0}\">{0}</a>", escape(name));
    }
    if let Some(items) = schema.get("items") {
        return format!("array of {}", schema_name(items));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let names: Vec<String> = options.iter().map(schema_name).collect();
            return names.join(if key == "allOf" { " and " } else { " or " });
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_owned(),
    };
    let mut out = escape(&kind);
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        let _ = write!(out, " ({})", escape(format));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values
            .iter()
            .map(|v| {
                format!(
                    "<code>{}</code>",
                    escape(v.as_str().unwrap_or(&v.to_string()))
                )
            })
            .collect();
        let _ = write!(out, ": {}", values.join(", "));
    }
    out
}

fn example_block(out: &mut String, value: &Value) {
    let shown = match value {
        Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    let _ = write!(out, "<pre>{}</pre>", escape(&shown));
}

fn content_block(out: &mut String, content: &Value) {
    let Some(content) = content.as_object() else {
        return;
    };
    for (media_type, media) in content {
        let _ = write!(out, "<p><code>{}</code>", escape(media_type));
        if let Some(schema) = media.get("schema") {
            let _ = write!(out, " — {}", schema_name(schema));
        }
        out.push_str("</p>");
        if let Some(example) = media.get("example") {
            example_block(out, example);
        }
    }
}

/// A tag's name and description, and its operations: method, path and the operation.
type Group<'a> = (String, String, Vec<(String, String, &'a Value)>);

/// The document as one page: the operations by tag, then the schemas.
fn render(doc: &Value) -> String {
    let info = &doc["info"];
    let title = escape(text(info, "title"));
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#1b1b1b}}\
         code,pre{{font-family:ui-monospace,monospace;font-size:.9em}}\
         pre{{background:#f4f4f4;padding:.6rem;overflow:auto}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}}\
         .op{{border-top:2px solid #ccc;margin-top:1.5rem}}.method{{font-weight:bold;text-transform:uppercase}}\
         </style></head><body><h1>{title} <small>{}</small></h1>{}<p>The machine-readable document: \
         <a href=\"{DOCUMENT}\"><code>{DOCUMENT}</code></a> (OpenAPI {}).</p>",
        escape(text(info, "version")),
        prose(text(info, "description")),
        escape(text(doc, "openapi")),
    );
    // Operations, grouped by their first tag, in the order of the document's tags.
    let mut groups: Vec<Group> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tag| {
            (
                text(tag, "name").to_owned(),
                text(tag, "description").to_owned(),
                Vec::new(),
            )
        })
        .collect();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if !operation.is_object() || method == "parameters" {
                continue;
            }
            let tag = operation["tags"][0].as_str().unwrap_or("other").to_owned();
            let at = match groups.iter().position(|(name, _, _)| *name == tag) {
                Some(at) => at,
                None => {
                    groups.push((tag, String::new(), Vec::new()));
                    groups.len() - 1
                }
            };
            groups[at].2.push((method.clone(), path.clone(), operation));
        }
    }
    out.push_str("<h2>Contents</h2><ul>");
    for (tag, _, operations) in &groups {
        let _ = write!(out, "<li><a href=\"#tag-{0}\">{0}</a><ul>", escape(tag));
        for (method, path, operation) in operations {
            let _ = write!(
                out,
                "<li><a href=\"#op-{}\"><span class=\"method\">{}</span> <code>{}</code></a></li>",
                escape(text(operation, "operationId")),
                escape(method),
                escape(path)
            );
        }
        out.push_str("</ul></li>");
    }
    out.push_str("<li><a href=\"#schemas\">schemas</a></li></ul>");
    let global_security = !doc["security"].as_array().is_none_or(Vec::is_empty);
    for (tag, description, operations) in &groups {
        let _ = write!(
            out,
            "<h2 id=\"tag-{0}\">{0}</h2>{1}",
            escape(tag),
            prose(description)
        );
        for (method, path, operation) in operations {
            operation_html(&mut out, method, path, operation, global_security);
        }
    }
    out.push_str("<h2 id=\"schemas\">Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let _ = write!(
            out,
            "<h3 id=\"schema-{0}\">{0}</h3>{1}",
            escape(name),
            prose(text(schema, "description"))
        );
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            out.push_str("<table><tr><th>field</th><th>type</th><th>description</th></tr>");
            for (field, property) in properties {
                let _ = write!(
                    out,
                    "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(field),
                    if required.contains(&field.as_str()) {
                        " (required)"
                    } else {
                        ""
                    },
                    schema_name(property),
                    prose(text(property, "description"))
                );
            }
            out.push_str("</table>");
        } else {
            let _ = write!(out, "<p>{}</p>", schema_name(schema));
        }
        if let Some(example) = schema.get("example") {
            example_block(&mut out, example);
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn operation_html(out: &mut String, method: &str, path: &str, operation: &Value, global: bool) {
    let _ = write!(
        out,
        "<div class=\"op\" id=\"op-{}\"><h3><span class=\"method\">{}</span> <code>{}</code></h3>{}{}",
        escape(text(operation, "operationId")),
        escape(method),
        escape(path),
        prose(text(operation, "summary")),
        prose(text(operation, "description")),
    );
    let public = operation["security"].as_array().is_some_and(Vec::is_empty) || !global;
    out.push_str(if public {
        "<p><em>No token needed.</em></p>"
    } else {
        "<p><em>Needs a bearer token.</em></p>"
    });
    if let Some(parameters) = operation["parameters"].as_array() {
        out.push_str(
            "<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>",
        );
        for parameter in parameters {
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(text(parameter, "name")),
                if parameter["required"] == Value::Bool(true) {
                    " (required)"
                } else {
                    ""
                },
                escape(text(parameter, "in")),
                schema_name(&parameter["schema"]),
                prose(text(parameter, "description"))
            );
        }
        out.push_str("</table>");
    }
    if let Some(body) = operation.get("requestBody") {
        let _ = write!(
            out,
            "<h4>Request body</h4>{}",
            prose(text(body, "description"))
        );
        content_block(out, &body["content"]);
    }
    out.push_str("<h4>Responses</h4>");
    for (status, response) in operation["responses"].as_object().into_iter().flatten() {
        if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
            let name = reference.rsplit('/').next().unwrap_or(reference);
            let _ = write!(
                out,
                "<p><strong>{}</strong> — {} (<a href=\"#schema-Error\">Error</a>)</p>",
                escape(status),
                escape(name)
            );
            continue;
        }
        let _ = write!(
            out,
            "<p><strong>{}</strong> — {}</p>",
            escape(status),
            escape(text(response, "description"))
        );
        content_block(out, &response["content"]);
    }
    out.push_str("</div>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use pictureday_platform::http_responses::DOCS_PAGE;

    #[test]
    fn the_page_escapes_what_it_shows() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            prose("use `a<b`\n\nnext"),
            "<p>use <code>a&lt;b</code></p><p>next</p>"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_scheme() -> anyhow::Result<()> {
        let doc: Value = serde_json::from_str(&DOCUMENT_JSON)?;
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
            "bearer"
        );
        assert_eq!(doc["security"][0]["bearerAuth"], serde_json::json!([]));
        for public in ["/healthz", "/readyz", DOCUMENT, DOCS_PAGE] {
            assert_eq!(
                doc["paths"][public]["get"]["security"],
                serde_json::json!([]),
                "{public}"
            );
        }
        assert!(doc["components"]["schemas"]["Error"].is_object());
        let html = reference_page_html();
        assert!(html.contains("/v1/districts/{district}/people"));
        assert!(!html.contains("<script"));
        Ok(())
    }

    fn reference_page_html() -> String {
        REFERENCE_HTML.clone()
    }
}
