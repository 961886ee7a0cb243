//! The one HTTP server of every listener (each service's API and the gateway): an accept loop
//! with a connection cap and load shedding, per-connection header and idle timeouts, a minimum
//! rate for request bodies, the response hardening of [`crate::http_responses`], and graceful
//! shutdown. `axum::serve` offers none of the limits, so connections are driven by hyper here.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::http_limits::HttpLimits;
use crate::http_responses::{error_response, harden};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting, closes
/// idle connections and waits for requests in flight.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // A burst of connections beyond the default backlog (1024) has SYNs dropped, and a dropped
    // SYN — a health probe's among them — is only sent again a second later. Listening again
    // on a bound socket only changes its backlog (the kernel caps it at somaxconn).
    let backlog = i32::try_from(limits.max_connections.max(1024)).unwrap_or(i32::MAX);
    if let Err(error) = socket2::SockRef::from(&listener).listen(backlog) {
        tracing::warn!(%error, "cannot lengthen the listen backlog");
    }
    let limits = Arc::new(limits);
    let served = Arc::new(Semaphore::new(limits.max_connections));
    let shed = Arc::new(Semaphore::new(limits.shed_connections()));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors (or a connection reset before it was accepted): wait
                // a moment rather than spin; the timeouts free descriptors soon.
                tracing::warn!(%error, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = if let Ok(permit) = served.clone().try_acquire_owned() {
            Slot {
                _permit: permit,
                shed: false,
            }
        } else if let Ok(permit) = shed.clone().try_acquire_owned() {
            Slot {
                _permit: permit,
                shed: true,
            }
        } else {
            // Far over the cap: closing now is the cheapest refusal there is.
            tracing::debug!("connection closed at accept: over the connection cap");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            router.clone(),
            limits.clone(),
            slot,
            shutdown.clone(),
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// A connection's place under the cap: served normally, or (`shed`) only to be told to come
/// back later. The place is given back when it is dropped.
struct Slot {
    _permit: OwnedSemaphorePermit,
    shed: bool,
}

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Arc<HttpLimits>,
    slot: Slot,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let shedding = slot.shed;
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        let limits = limits.clone();
        hyper::service::service_fn(move |request| {
            handle(
                request,
                router.clone(),
                limits.clone(),
                activity.clone(),
                shedding,
            )
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Head and idle timeouts are kept by the watchdog below: hyper's own header timeout
        // also runs through the idle time between requests, so it cannot tell the two apart.
        .header_read_timeout(None)
        // Heads up to hyper's own caps reach `handle`, which refuses those over ours with the
        // JSON error; only heads beyond these get hyper's bare `431`.
        .max_headers(HYPER_MAX_HEADERS)
        .keep_alive(!shedding);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let tick = (limits.header_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "HTTP connection ended with an error");
                }
                break;
            }
            _ = shutdown.cancelled(), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = ticker.tick() => {
                if shutting_down && activity.in_flight() == 0 {
                    break;
                }
                if let Some(reason) = activity.expired(&limits) {
                    tracing::debug!(reason, "closing HTTP connection");
                    break;
                }
            }
        }
    }
    drop(slot);
}

async fn handle(
    request: Request<Incoming>,
    router: Router,
    limits: Arc<HttpLimits>,
    activity: Arc<Activity>,
    shedding: bool,
) -> Result<Response, Infallible> {
    let in_flight = activity.begin();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = if let Some(refusal) = oversized_head(&request) {
        refusal
    } else if shedding && !matches!(path.as_str(), "/healthz" | "/readyz") {
        let mut response = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the server is at its limit of {} connections; try again shortly",
                limits.max_connections
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    } else {
        let too_slow = Arc::new(AtomicBool::new(false));
        let request = request.map(|body| Body::new(RateGuarded::new(body, &limits, &too_slow)));
        let response = match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if too_slow.load(Ordering::Relaxed) {
            let mut response = error_response(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the request body arrived slower than {} bytes/s over {} s",
                    limits.body_min_rate,
                    limits.body_timeout.as_secs()
                ),
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        } else {
            response
        }
    };
    let response = harden(response, &method, &path).await;
    // The request counts as in flight until its response body is sent (or dropped).
    Ok(response.map(|body| {
        Body::new(Tracked {
            inner: body,
            _in_flight: in_flight,
        })
    }))
}

/// Headers hyper parses before refusing a request itself (its default is 100).
const HYPER_MAX_HEADERS: usize = 500;
/// The most headers a request may have.
const MAX_HEADERS: usize = 100;
/// The most bytes a request's target and headers may take together.
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// The JSON `431` for a request head over the limits, or none.
fn oversized_head<B>(request: &Request<B>) -> Option<Response> {
    let headers = request.headers();
    let bytes = request.uri().to_string().len()
        + headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    if headers.len() <= MAX_HEADERS && bytes <= MAX_HEAD_BYTES {
        return None;
    }
    let mut response = error_response(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        &format!(
            "the request's headers are too large ({} headers, {bytes} bytes with the target); \
             at most {MAX_HEADERS} headers and {MAX_HEAD_BYTES} bytes are accepted",
            headers.len()
        ),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    Some(response)
}

/// What the watchdog knows of a connection, in milliseconds since it was accepted.
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// When the current request head began (+1; 0: none begun). A new connection is waiting
    /// for its first head from the start.
    head_since: AtomicU64,
    /// When the connection last became idle (the last response ended).
    idle_since: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            head_since: AtomicU64::new(1),
            idle_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Release);
        InFlight(self.clone())
    }

    /// Bytes arrived: with no request in progress, they start the next head's clock.
    fn read(&self) {
        if self.in_flight() == 0 {
            let _ = self.head_since.compare_exchange(
                0,
                self.now() + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, limits: &HttpLimits) -> Option<&'static str> {
        if self.in_flight() > 0 {
            // Requests in progress are bounded by the body rate and by their handlers.
            return None;
        }
        let now = self.now();
        match self.head_since.load(Ordering::Acquire) {
            0 => (now.saturating_sub(self.idle_since.load(Ordering::Acquire))
                >= limits.idle_timeout.as_millis() as u64)
                .then_some("idle timeout"),
            since => (now.saturating_sub(since - 1) >= limits.header_timeout.as_millis() as u64)
                .then_some("request head not complete within the header timeout"),
        }
    }
}

/// A request in progress; ends when dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.idle_since.store(activity.now(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The socket, reporting reads to the watchdog.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A response body that keeps its request counted as in flight until it is done.
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub struct BodyTooSlow;

/// A request body that must deliver `min_bytes` in every `window` the handler spends waiting
/// for it. Only waiting counts: a handler busy writing what it read is not the client's fault.
struct RateGuarded {
    inner: Incoming,
    window: Duration,
    min_bytes: u64,
    /// Bytes and waiting time in the current window.
    got: u64,
    waited: Duration,
    waiting_since: Option<Instant>,
    timer: Pin<Box<tokio::time::Sleep>>,
    too_slow: Arc<AtomicBool>,
}

impl RateGuarded {
    fn new(inner: Incoming, limits: &HttpLimits, too_slow: &Arc<AtomicBool>) -> Self {
        Self {
            inner,
            window: limits.body_timeout,
            min_bytes: limits.body_min_bytes(),
            got: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: Box::pin(tokio::time::sleep(limits.body_timeout)),
            too_slow: too_slow.clone(),
        }
    }

    /// Closes the window if it is over: `false` when it fell short of the rate.
    fn window_ok(&mut self, now: Instant) -> bool {
        let waited = self.waited + self.waiting_since.map_or(Duration::ZERO, |s| now - s);
        if waited < self.window {
            return true;
        }
        if self.got < self.min_bytes {
            return false;
        }
        self.got = 0;
        self.waited = Duration::ZERO;
        self.waiting_since = self.waiting_since.map(|_| now);
        true
    }
}

impl http_body::Body for RateGuarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let now = Instant::now();
                if let Some(since) = this.waiting_since.take() {
                    this.waited += now - since;
                }
                if let Some(data) = frame.data_ref() {
                    this.got += data.len() as u64;
                }
                if !this.window_ok(now) {
                    this.too_slow.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(BodyTooSlow.into())));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => loop {
                let now = Instant::now();
                if this.waiting_since.is_none() {
                    this.waiting_since = Some(now);
                    let left = this.window.saturating_sub(this.waited);
                    this.timer.as_mut().reset(now + left);
                }
                if this.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if let Some(since) = this.waiting_since.take() {
                    this.waited += now - since;
                }
                if !this.window_ok(now) {
                    this.too_slow.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(BodyTooSlow.into())));
                }
                // The window was met (or not over yet): arm the timer for what is left of it.
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
