//! What every response of every listener carries, whichever handler (or the framework itself)
//! made it: the documented JSON error shape for refusals, and headers that keep personal data
//! out of caches and stop browsers from interpreting what we send.

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;

/// Nothing may be loaded, run or framed from a response (the one HTML page, the API reference
/// at [`DOCS_PAGE`], sets its own policy, which allows its inline styles only).
const CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The longest framework error text read to become a message (they are a line or two).
const MAX_ERROR_TEXT: usize = 16 * 1024;

/// Where signed photo links are served (roster's `photo_links`).
pub const SIGNED_LINKS: &str = "/v1/photo-links/";

/// The API reference page, the one HTML page served: its handler sets a policy of its own
/// (its inline styles and nothing else), which is kept.
pub const DOCS_PAGE: &str = "/v1/docs";

/// The console's pages (`/console`…): HTML with a policy of their own (their own style sheet,
/// script, photos and calls), which is kept, and refusals that are pages, kept as pages.
fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// Adds the security headers and turns a non-JSON refusal (axum's own rejections: a bad JSON
/// body, a wrong content type, a bad query string, an unknown route, a wrong method, …) into
/// `{"error": {"code", "message"}}` with the same status.
pub async fn harden(response: Response, method: &Method, path: &str) -> Response {
    let console_page = is_console(path)
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
    let mut response = if is_plain_refusal(&response) && !console_page {
        to_json_error(response, method, path).await
    } else {
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let own_policy = path == DOCS_PAGE || is_console(path);
    if !(own_policy && headers.contains_key(header::CONTENT_SECURITY_POLICY)) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    // People, photos, logs, reports and jobs are personal data: never stored by any cache, the
    // browser's included. Photos keep their ETag, for clients that keep their own copies. A
    // signed photo link says itself how long the browser may keep what it served (`private`:
    // never a shared cache), which is what a link in an `<img>` tag is for.
    let cacheable_link = path.starts_with(SIGNED_LINKS)
        && response.status().is_success()
        && response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("private"));
    if !cacheable_link {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn is_plain_refusal(response: &Response) -> bool {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    !response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The stable error code of a status, as [`crate::http::ApiError`] names them.
pub fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "request_timeout",
        409 => "conflict",
        410 => "gone",
        411 => "length_required",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "too_many_requests",
        431 => "headers_too_large",
        500 => "internal",
        501 => "not_implemented",
        502 => "bad_gateway",
        503 => "unavailable",
        504 => "gateway_timeout",
        s if s < 500 => "client_error",
        _ => "server_error",
    }
}

/// A response in the documented error shape.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "error": { "code": code_for(status), "message": message }
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

async fn to_json_error(response: Response, method: &Method, path: &str) -> Response {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_owned())
        .unwrap_or_default();
    let message = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        // A 5xx text may say more about the inside than a client should read.
        status
            .canonical_reason()
            .unwrap_or("server error")
            .to_lowercase()
    } else if !text.is_empty() {
        text
    } else {
        match status {
            StatusCode::NOT_FOUND => format!("no such route: {method} {path}"),
            StatusCode::METHOD_NOT_ALLOWED => {
                let allowed = parts
                    .headers
                    .get(header::ALLOW)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                format!("{method} is not allowed on {path}; allowed: {allowed}")
            }
            other => other.canonical_reason().unwrap_or("refused").to_lowercase(),
        }
    };
    let mut out = error_response(status, &message);
    // Keep what the refusal said in headers (Allow, Retry-After, WWW-Authenticate, …).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    async fn json_of(response: Response) -> anyhow::Result<serde_json::Value> {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    #[tokio::test]
    async fn plain_refusals_become_json_errors_with_security_headers() -> anyhow::Result<()> {
        let plain = (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Expected JSON").into_response();
        let out = harden(plain, &Method::POST, "/v1/districts").await;
        assert_eq!(out.status(), 415);
        assert_eq!(out.headers()["content-type"], "application/json");
        assert_eq!(out.headers()["x-content-type-options"], "nosniff");
        assert_eq!(out.headers()["cache-control"], "no-store");
        assert_eq!(out.headers()["content-security-policy"], CSP);
        let body = json_of(out).await?;
        assert_eq!(body["error"]["code"], "unsupported_media_type");
        assert_eq!(body["error"]["message"], "Expected JSON");

        let missing = harden(StatusCode::NOT_FOUND.into_response(), &Method::GET, "/v2/x").await;
        let body = json_of(missing).await?;
        assert_eq!(body["error"]["message"], "no such route: GET /v2/x");

        let ok = harden("fine".into_response(), &Method::GET, "/healthz").await;
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
        Ok(())
    }

    #[tokio::test]
    async fn only_the_reference_page_keeps_a_policy_of_its_own() {
        let own = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";
        let page = || {
            let mut response = "<html></html>".into_response();
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(own),
            );
            response
        };
        let docs = harden(page(), &Method::GET, DOCS_PAGE).await;
        assert_eq!(docs.headers()["content-security-policy"], own);
        let elsewhere = harden(page(), &Method::GET, "/v1/districts").await;
        assert_eq!(elsewhere.headers()["content-security-policy"], CSP);
    }
}
