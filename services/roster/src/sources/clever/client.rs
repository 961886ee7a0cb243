//! A client of Clever's API for one district's bearer token: follows `links` `rel: next` pages,
//! waits out `429`s as `Retry-After` says, retries transient failures (connection errors,
//! timeouts, `5xx`) with exponential backoff and full jitter, and keeps under Clever's limit of
//! 1,200 requests a minute per token with a limiter shared by every sync of that token in this
//! process.
//!
//! The token goes in the `Authorization` header only: it is in no URL, log line or error.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::StatusCode;
use hyper::header::{ACCEPT, AUTHORIZATION, HeaderValue, RETRY_AFTER, USER_AGENT};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::model::{ErrorBody, Page};

/// Clever's limit per token.
pub const REQUESTS_PER_MINUTE: u32 = 1200;
/// Records asked for per page.
pub const PAGE_SIZE: u32 = 1000;
/// The longest `Retry-After` waited on; a longer one is waited this long, then asked again.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// Attempts of one request before the run fails.
const MAX_ATTEMPTS: u32 = 8;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read (a page of 1,000 users is a few MB).
const MAX_BODY: usize = 64 * 1024 * 1024;

type Http = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// How a request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum CleverError {
    /// `401`/`403`: the token is wrong, revoked, or lacks access.
    #[error("Clever refused the token ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// The events cursor is older than the feed keeps (30 days), or unknown to it.
    #[error("Clever no longer has the events after the saved cursor ({status}): {message}")]
    CursorExpired { status: u16, message: String },
    #[error("Clever answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("Clever could not be reached: {0}")]
    Transport(String),
    #[error("Clever's answer could not be read: {0}")]
    Decode(String),
    /// A `next` link to another host: the token is not sent there.
    #[error("Clever's next link leaves {0}; not followed")]
    ForeignLink(String),
}

impl CleverError {
    /// A short machine name for a run's error list.
    pub fn kind(&self) -> &'static str {
        match self {
            CleverError::Unauthorized { .. } => "unauthorized",
            CleverError::CursorExpired { .. } => "cursor_expired",
            CleverError::Status { .. } => "http_status",
            CleverError::Transport(_) => "unreachable",
            CleverError::Decode(_) => "unreadable",
            CleverError::ForeignLink(_) => "foreign_link",
        }
    }
}

/// How long to back off and how fast to go: production's defaults; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    pub requests_per_minute: u32,
    /// The first backoff after a transient failure; doubled each time, with full jitter.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            requests_per_minute: REQUESTS_PER_MINUTE,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Requests a token may make: a GCRA that lets a burst of a tenth of the minute's allowance
/// through at once and spaces the rest, so no minute ever sees more than the limit.
struct Limiter {
    spacing: Duration,
    burst: Duration,
    next: Mutex<Instant>,
}

impl Limiter {
    fn new(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        let burst_requests = (per_minute / 10).max(1);
        // Spaced so that the burst and one minute of spaced requests stay within the limit.
        let spaced = (per_minute - burst_requests).max(1);
        let spacing = Duration::from_secs(60) / spaced;
        Self {
            spacing,
            // A request may go this far ahead of its spaced time: `burst_requests` at once.
            burst: spacing * (burst_requests - 1),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn acquire(&self) {
        let wait = {
            let Ok(mut next) = self.next.lock() else {
                return;
            };
            let now = Instant::now();
            let due = (*next).max(now);
            let allowed = if due > now + self.burst {
                due - self.burst
            } else {
                now
            };
            *next = due + self.spacing;
            allowed.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Limiters by the token's SHA-256 (never the token) and the rate.
type Limiters = Mutex<HashMap<(Vec<u8>, u32), Arc<Limiter>>>;

/// One limiter per token for every client in this process.
fn limiter_for(token: &str, per_minute: u32) -> Arc<Limiter> {
    static LIMITERS: LazyLock<Limiters> = LazyLock::new(Default::default);
    let key = (
        ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .to_vec(),
        per_minute,
    );
    match LIMITERS.lock() {
        Ok(mut map) => map
            .entry(key)
            .or_insert_with(|| Arc::new(Limiter::new(per_minute)))
            .clone(),
        Err(_) => Arc::new(Limiter::new(per_minute)),
    }
}

/// The HTTP client every Clever client of the process shares: rustls with ring and the system's
/// roots (HTTP too, for a Clever behind a local proxy or a test's).
fn http() -> Result<Http, CleverError> {
    static HTTP: LazyLock<Result<Http, String>> = LazyLock::new(|| {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            tracing::warn!("no system root certificates: HTTPS to Clever will fail");
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Client::builder(TokioExecutor::new()).build(connector))
    });
    HTTP.clone().map_err(CleverError::Transport)
}

/// One GET: the status, headers and body, or why there was none.
async fn get(
    http: &Http,
    url: &str,
    auth: &HeaderValue,
) -> Result<(StatusCode, hyper::HeaderMap, Bytes), String> {
    let request = hyper::Request::get(url)
        .header(AUTHORIZATION, auth.clone())
        .header(ACCEPT, "application/json")
        .header(
            USER_AGENT,
            concat!("pictureday/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = http.request(request).await.map_err(|e| chain(&e))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
}

/// An error and its causes.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A district's Clever API.
pub struct CleverClient {
    http: Http,
    /// `https://api.clever.com`, without a trailing `/`.
    base: String,
    auth: HeaderValue,
    limiter: Arc<Limiter>,
    pacing: Pacing,
    rng: SystemRandom,
    /// `429`s waited out, for the run's record.
    pub rate_limited: std::sync::atomic::AtomicU64,
    /// Transient failures retried.
    pub retried: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for CleverClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CleverClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl CleverClient {
    pub fn new(base_url: &str, token: &str, pacing: Pacing) -> Result<Self, CleverError> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            CleverError::Unauthorized {
                status: 0,
                message: "the token has characters a header cannot carry".into(),
            }
        })?;
        auth.set_sensitive(true);
        Ok(Self {
            http: http()?,
            base: base_url.trim_end_matches('/').to_owned(),
            auth,
            limiter: limiter_for(token, pacing.requests_per_minute),
            pacing,
            rng: SystemRandom::new(),
            rate_limited: Default::default(),
            retried: Default::default(),
        })
    }

    /// `/v3.1/users?limit=…`, the first page of a list.
    pub fn first(&self, resource: &str, limit: u32, query: &[(&str, &str)]) -> String {
        let mut uri = format!("/v3.1/{resource}?limit={limit}");
        for (name, value) in query {
            uri.push('&');
            uri.push_str(name);
            uri.push('=');
            uri.push_str(&encode(value));
        }
        uri
    }

    /// Fetches a page by its URI: one of [`first`](Self::first)'s, or a `next` link (relative to
    /// the base URL, or absolute on the same base).
    pub async fn page<T: DeserializeOwned>(&self, uri: &str) -> Result<Page<T>, CleverError> {
        let url = self.resolve(uri)?;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            let (status, headers, body) = match get(&self.http, &url, &self.auth).await {
                Ok(answer) => answer,
                Err(message) => {
                    if attempt >= MAX_ATTEMPTS {
                        return Err(CleverError::Transport(message));
                    }
                    self.retried
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let pause = self.backoff(attempt);
                    tracing::info!(error = %message, ?pause, attempt, "Clever unreachable; retrying");
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            if status.is_success() {
                return serde_json::from_slice(&body)
                    .map_err(|e| CleverError::Decode(e.to_string()));
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let pause =
                    retry_after(headers.get(RETRY_AFTER)).unwrap_or_else(|| self.backoff(attempt));
                if attempt >= MAX_ATTEMPTS {
                    return Err(CleverError::Status {
                        status: 429,
                        message: "still rate limited after every retry".into(),
                    });
                }
                self.rate_limited
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    ?pause,
                    "Clever rate limit reached; waiting as Retry-After says"
                );
                tokio::time::sleep(pause).await;
                continue;
            }
            let message = error_message(&body);
            if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
                if attempt >= MAX_ATTEMPTS {
                    return Err(CleverError::Status {
                        status: status.as_u16(),
                        message,
                    });
                }
                self.retried
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let pause = self.backoff(attempt);
                tracing::info!(
                    status = status.as_u16(),
                    ?pause,
                    attempt,
                    "Clever failed; retrying"
                );
                tokio::time::sleep(pause).await;
                continue;
            }
            let status = status.as_u16();
            return Err(match status {
                401 | 403 => CleverError::Unauthorized { status, message },
                400 | 404 | 410 | 422
                    if uri.contains("/events") && names_a_cursor(uri, &message) =>
                {
                    CleverError::CursorExpired { status, message }
                }
                _ => CleverError::Status { status, message },
            });
        }
    }

    fn resolve(&self, uri: &str) -> Result<String, CleverError> {
        if uri.starts_with('/') {
            return Ok(format!("{}{uri}", self.base));
        }
        if uri.starts_with(&format!("{}/", self.base)) {
            return Ok(uri.to_owned());
        }
        Err(CleverError::ForeignLink(self.base.clone()))
    }

    /// Exponential, capped, with full jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .pacing
            .backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.pacing.max_backoff);
        let mut bytes = [0u8; 4];
        let fraction = match self.rng.fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        };
        ceiling.mul_f64(fraction.max(0.1))
    }
}

/// Whether a 4xx on the events feed is about the cursor: the feed answers `404` for an event
/// it no longer has (the spec's `NotFound`), or an error that says the cursor is too old.
fn names_a_cursor(uri: &str, message: &str) -> bool {
    let message = message.to_lowercase();
    uri.contains("starting_after=")
        && (message.contains("starting_after")
            || message.contains("cursor")
            || message.contains("not found")
            || message.contains("expired")
            || message.contains("too old")
            || message.contains("retention")
            || message.is_empty())
}

/// `Retry-After` as seconds (or an HTTP date), capped.
fn retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let value = value?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

fn error_message(body: &[u8]) -> String {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = parsed
        .message
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    message.chars().take(300).collect()
}

fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(
            retry_after(Some(&HeaderValue::from_static("3"))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(Some(&HeaderValue::from_static("100000"))),
            Some(MAX_RETRY_AFTER)
        );
        let past = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(retry_after(Some(&past)), Some(Duration::ZERO));
        assert_eq!(retry_after(None), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_keeps_a_minute_under_the_limit() {
        let limiter = Limiter::new(1200);
        let start = Instant::now();
        let mut in_first_minute = 0;
        for _ in 0..2000 {
            limiter.acquire().await;
            if start.elapsed() < Duration::from_secs(60) {
                in_first_minute += 1;
            }
        }
        assert!(in_first_minute <= 1200, "{in_first_minute}");
        assert!(in_first_minute >= 1150, "{in_first_minute}");
    }

    #[test]
    fn links_stay_on_the_base() -> Result<(), CleverError> {
        let client = CleverClient::new("https://api.clever.com/", "t", Pacing::default())?;
        assert_eq!(
            client.resolve("/v3.1/users?limit=2&starting_after=a")?,
            "https://api.clever.com/v3.1/users?limit=2&starting_after=a"
        );
        assert!(client.resolve("https://api.clever.com/v3.1/users").is_ok());
        assert!(client.resolve("https://evil.example/v3.1/users").is_err());
        assert_eq!(
            client.first("events", PAGE_SIZE, &[("starting_after", "a b")]),
            "/v3.1/events?limit=1000&starting_after=a%20b"
        );
        Ok(())
    }

    #[test]
    fn cursor_errors_are_told_apart() {
        assert!(names_a_cursor("/v3.1/events?starting_after=x", "Not Found"));
        assert!(names_a_cursor(
            "/v3.1/events?starting_after=x",
            "cursor is too old"
        ));
        assert!(!names_a_cursor("/v3.1/events?limit=1", "not found"));
    }
}
