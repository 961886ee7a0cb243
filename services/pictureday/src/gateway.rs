//! One address for a distributed deployment: the public API is served by three services
//! (imports and resumable uploads, a new photo for one person and retention by ingest; jobs, except applying or
//! undoing one, events and webhooks by reporting; the rest by roster), and the
//! gateway sends each request to the one that serves it. It serves the console itself. Bodies stream both ways, so a gigabyte
//! upload or a photo download holds no more than a buffer in memory here. Authorisation stays
//! with the services.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use pictureday_platform::http_limits::HttpLimits;
use pictureday_platform::http_responses::error_response;
use pictureday_platform::http_server::serve_router;

/// The three services behind the public API, as base URLs (`http://ingest:8080`).
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub ingest: String,
    pub roster: String,
    pub reporting: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Ingest,
    Roster,
    Reporting,
}

impl Service {
    /// The service that serves `method` on `path` (see each service's router).
    fn for_request(method: &Method, path: &str) -> Self {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            // Uploads, in one request or in resumable pieces.
            ["v1", "districts", _, "imports" | "uploads", ..] => Service::Ingest,
            // A new photo for one person is an import of one file; reading or deleting it is
            // roster's.
            ["v1", "districts", _, "people", _, "photo"] if method == Method::PUT => {
                Service::Ingest
            }
            // How long originals are kept: ingest keeps them.
            ["v1", "districts", _, "retention"] => Service::Ingest,
            // The SFTP server runs inside ingest, and its accounts are ingest's.
            ["v1", "sftp"] | ["v1", "districts", _, "sftp-accounts", ..] => Service::Ingest,
            // Applying a preview places photos on people: roster's work, under a job's path.
            ["v1", "districts", _, "jobs", _, "apply"] => Service::Roster,
            // Undoing a job puts people's earlier photos back: roster's work too.
            ["v1", "districts", _, "jobs", _, "undo"] => Service::Roster,
            ["v1", "districts", _, "jobs", ..] => Service::Reporting,
            // Job status pushed to dashboards: reporting keeps it.
            ["v1", "districts", _, "events"] => Service::Reporting,
            ["v1", "districts", _, "webhooks", ..] => Service::Reporting,
            _ => Service::Roster,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Service::Ingest => "ingest",
            Service::Roster => "roster",
            Service::Reporting => "reporting",
        }
    }
}

#[derive(Clone)]
struct Gateway {
    upstreams: Upstreams,
    http: reqwest::Client,
}

impl Gateway {
    fn base(&self, service: Service) -> &str {
        let base = match service {
            Service::Ingest => &self.upstreams.ingest,
            Service::Roster => &self.upstreams.roster,
            Service::Reporting => &self.upstreams.reporting,
        };
        base.trim_end_matches('/')
    }
}

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1), and `host`, which names
/// the gateway.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for name in HOP_BY_HOP.iter().chain([&header::HOST, &header::TRAILER]) {
        out.remove(name);
    }
    out
}

#[derive(Debug, thiserror::Error)]
#[error("{setting} is invalid: {value:?} is not an http:// or https:// URL")]
pub struct BadUpstream {
    setting: &'static str,
    value: String,
}

fn check(setting: &'static str, value: &str) -> Result<(), BadUpstream> {
    match reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(()),
        _ => Err(BadUpstream {
            setting,
            value: value.to_owned(),
        }),
    }
}

pub fn router(upstreams: Upstreams) -> anyhow::Result<Router> {
    router_with_console(upstreams, None)
}

/// The gateway, serving the console itself when given one (it calls the API through the
/// gateway, as a browser would).
pub fn router_with_console(
    upstreams: Upstreams,
    console: Option<pictureday_console::Console>,
) -> anyhow::Result<Router> {
    check("PICTUREDAY_INGEST_URL", &upstreams.ingest)?;
    check("PICTUREDAY_ROSTER_URL", &upstreams.roster)?;
    check("PICTUREDAY_REPORTING_URL", &upstreams.reporting)?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        // Requests stream; the services bound their own time. Idle pooled connections are
        // dropped before a typical upstream keep-alive ends.
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?;
    let gateway = Gateway { upstreams, http };
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(forward)
        .with_state(gateway)
        // The API's document and reference page: the gateway holds them whole, as the
        // embedded default does.
        .merge(crate::openapi::router());
    Ok(match console {
        Some(console) => router.merge(pictureday_console::router(console)),
        None => router,
    })
}

/// Serves the gateway on `listener` with the default HTTP limits until `shutdown` is
/// cancelled, letting requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    upstreams: Upstreams,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    serve_with_limits(listener, upstreams, HttpLimits::default(), shutdown).await
}

/// As [`serve`], with the connection cap and timeouts of `limits`.
pub async fn serve_with_limits(
    listener: tokio::net::TcpListener,
    upstreams: Upstreams,
    limits: HttpLimits,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    serve_with_console(listener, upstreams, limits, None, shutdown).await
}

/// As [`serve_with_limits`], serving the console too.
pub async fn serve_with_console(
    listener: tokio::net::TcpListener,
    upstreams: Upstreams,
    limits: HttpLimits,
    console: Option<pictureday_console::Console>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    serve_router(
        listener,
        router_with_console(upstreams, console)?,
        limits,
        shutdown,
    )
    .await?;
    Ok(())
}

async fn forward(State(gateway): State<Gateway>, request: Request) -> Response {
    let service = Service::for_request(request.method(), request.uri().path());
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let url = format!("{}{path_and_query}", gateway.base(service));
    let (parts, body) = request.into_parts();
    let mut headers = end_to_end(&parts.headers);
    // The address the client used (`host` names the gateway and is not passed on): services
    // that hand out links (photo links) build them from it. A proxy in front has set it already.
    if !headers.contains_key("x-forwarded-host")
        && let Some(host) = parts.headers.get(header::HOST)
    {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    let upstream = gateway
        .http
        .request(parts.method, &url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    match upstream {
        Ok(response) => {
            let status = response.status();
            let headers = end_to_end(response.headers());
            let mut out = Response::new(Body::from_stream(response.bytes_stream()));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            out
        }
        Err(error) => {
            tracing::warn!(%error, service = service.name(), "upstream unavailable");
            unavailable(service)
        }
    }
}

fn unavailable(service: Service) -> Response {
    error_response(
        StatusCode::BAD_GATEWAY,
        &format!(
            "the {} service is unavailable; try again shortly",
            service.name()
        ),
    )
}

/// Ready when every service behind it is.
async fn ready(State(gateway): State<Gateway>) -> (StatusCode, String) {
    let checks = [Service::Ingest, Service::Roster, Service::Reporting].map(|service| {
        let gateway = gateway.clone();
        async move {
            let url = format!("{}/readyz", gateway.base(service));
            let ok = gateway
                .http
                .get(url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            (service, ok)
        }
    });
    let unready: Vec<&str> = futures::future::join_all(checks)
        .await
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(service, _)| service.name())
        .collect();
    if unready.is_empty() {
        (StatusCode::OK, "ready".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", unready.join(", ")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_must_be_http_urls() {
        assert!(check("PICTUREDAY_INGEST_URL", "http://ingest:8080").is_ok());
        let bad = check("PICTUREDAY_INGEST_URL", "ingest:8080").map_err(|e| e.to_string());
        assert_eq!(
            bad,
            Err("PICTUREDAY_INGEST_URL is invalid: \"ingest:8080\" is not an http:// or https:// URL".into())
        );
    }

    #[test]
    fn each_path_goes_to_the_service_that_serves_it() {
        for (path, service) in [
            ("/v1/districts/springfield/imports", Service::Ingest),
            ("/v1/districts/springfield/uploads", Service::Ingest),
            (
                "/v1/districts/springfield/uploads/0123456789abcdef0123456789abcdef/import",
                Service::Ingest,
            ),
            ("/v1/districts/springfield/retention", Service::Ingest),
            ("/v1/districts/springfield/jobs/j1/undo", Service::Roster),
            ("/v1/districts/springfield/events", Service::Reporting),
            ("/v1/districts/springfield/webhooks", Service::Reporting),
            (
                "/v1/districts/springfield/webhooks/w1/deliveries",
                Service::Reporting,
            ),
            ("/v1/districts/springfield/jobs", Service::Reporting),
            ("/v1/districts/springfield/jobs/j1/log", Service::Reporting),
            ("/v1/districts/springfield/jobs/j1/apply", Service::Roster),
            ("/v1/districts/springfield/jobs/apply", Service::Reporting),
            (
                "/v1/districts/springfield/jobs/j1/apply/x",
                Service::Reporting,
            ),
            ("/v1/districts", Service::Roster),
            ("/v1/districts/springfield/tokens", Service::Roster),
            ("/v1/districts/springfield/people/p1/photo", Service::Roster),
            (
                "/v1/districts/springfield/people/p1/photo-url",
                Service::Roster,
            ),
            ("/v1/photo-links/springfield/p1/ph1/small", Service::Roster),
            ("/v1/districts/imports", Service::Roster),
            (
                "/v1/districts/springfield/reports/missing-photos.csv",
                Service::Roster,
            ),
        ] {
            assert_eq!(Service::for_request(&Method::GET, path), service, "{path}");
        }
        let one_photo = "/v1/districts/springfield/people/p1/photo";
        assert_eq!(
            Service::for_request(&Method::PUT, one_photo),
            Service::Ingest
        );
        assert_eq!(
            Service::for_request(&Method::DELETE, one_photo),
            Service::Roster
        );
    }
}
