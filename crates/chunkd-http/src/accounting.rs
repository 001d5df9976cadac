//! Per-request accounting for every front end at once: Prometheus-style counts (through
//! the [`metrics`] facade, like the engine's) and one access-log event per request.
//!
//! The access log is a `tracing` event with target `chunkd::access`, at info level,
//! written when the answer has been sent (or the client went away): method, path (never
//! the query, which may carry a token), status, bytes in and out, duration, protocol,
//! identity, remote address and the upload the engine says the request was about.
//! Silence it with a filter such as `info,chunkd::access=off`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use bytes::Bytes;
use chunkd_core::noted::NotedUpload;
use http::Method;
use http_body::{Frame, SizeHint};
use metrics::{
    Counter, Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram,
};

/// Requests answered, by `protocol`, `method` and `status` class (`2xx`, `4xx`, …).
pub const REQUESTS: &str = "chunkd_requests_total";
/// Time from a request's arrival until its answer was sent, by `protocol` and `method`.
pub const REQUEST_DURATION: &str = "chunkd_request_duration_seconds";
/// Request body bytes received, by `protocol`.
pub const BYTES_RECEIVED: &str = "chunkd_bytes_received_total";
/// Response body bytes sent, by `protocol`.
pub const BYTES_SERVED: &str = "chunkd_bytes_served_total";
/// Requests refused or failed, by tusd's error `code` (`ERR_MISMATCHED_OFFSET`, …).
pub const ERRORS: &str = "chunkd_errors_total";
/// Client connections open now.
pub const CONNECTIONS_OPEN: &str = "chunkd_connections_open";
/// Client connections accepted.
pub const CONNECTIONS: &str = "chunkd_connections_total";

/// Gives each front-end metric its help text and unit; call once after installing a
/// recorder.
pub fn describe() {
    describe_counter!(
        REQUESTS,
        "Requests answered, by protocol, method and status class"
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time from a request's arrival until its answer was sent"
    );
    describe_counter!(BYTES_RECEIVED, Unit::Bytes, "Request body bytes received");
    describe_counter!(BYTES_SERVED, Unit::Bytes, "Response body bytes sent");
    describe_counter!(ERRORS, "Requests refused or failed, by error code");
    describe_gauge!(CONNECTIONS_OPEN, "Client connections open");
    describe_counter!(CONNECTIONS, "Client connections accepted");
}

/// Accounts for every request `router` routes, as `protocol`'s.
pub fn account<S>(router: Router<S>, protocol: &'static str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(middleware::from_fn(move |req: Request, next: Next| {
        accounted(protocol, req, next)
    }))
}

async fn accounted(protocol: &'static str, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let head = req.method() == Method::HEAD;
    let received = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let exchange = Exchange {
        protocol,
        method,
        path: req.uri().path().to_owned(),
        identity: crate::identity::logged_identity(req.extensions()),
        remote: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer),
        noted: NotedUpload::default(),
        started,
        received: received.clone(),
        status: 0,
        sent: sent.clone(),
        head,
    };
    let req = req.map(|body| {
        Body::new(Counted {
            inner: body,
            count: received,
            counter: counter!(BYTES_RECEIVED, "protocol" => protocol),
        })
    });
    let response = exchange.noted.clone().scope(next.run(req)).await;
    let status = response.status();
    counter!(REQUESTS, "protocol" => protocol, "method" => method, "status" => status_class(status))
        .increment(1);
    let exchange = Exchange {
        status: status.as_u16(),
        ..exchange
    };
    response.map(|body| {
        Body::new(Served {
            inner: Counted {
                inner: body,
                count: sent,
                counter: counter!(BYTES_SERVED, "protocol" => protocol),
            },
            exchange: Some(exchange),
        })
    })
}

/// A method as a label: the standard ones by name, anything else as `other`, so a
/// client inventing methods cannot grow the metrics without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// One request as the access log tells it.
struct Exchange {
    protocol: &'static str,
    method: &'static str,
    path: String,
    identity: Option<String>,
    remote: Option<SocketAddr>,
    noted: NotedUpload,
    started: Instant,
    received: Arc<AtomicU64>,
    status: u16,
    sent: Arc<AtomicU64>,
    /// A HEAD's answer is its head: complete once sent, whatever body was dropped.
    head: bool,
}

impl Exchange {
    /// The answer went out in full (`complete`) or the client left before.
    fn done(self, complete: bool) {
        let elapsed = self.started.elapsed();
        histogram!(REQUEST_DURATION, "protocol" => self.protocol, "method" => self.method)
            .record(elapsed.as_secs_f64());
        let upload = self.noted.get();
        tracing::info!(
            target: "chunkd::access",
            protocol = self.protocol,
            method = self.method,
            path = %self.path,
            status = self.status,
            bytes_in = self.received.load(Ordering::Relaxed),
            bytes_out = self.sent.load(Ordering::Relaxed),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            upload.id = upload.as_ref().map(|id| id.as_str()),
            identity = self.identity.as_deref(),
            remote = self.remote.map(tracing::field::display),
            complete,
            "request"
        );
    }
}

/// A body that counts what passes through it, for the exchange and for the metric.
struct Counted {
    inner: Body,
    count: Arc<AtomicU64>,
    counter: Counter,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let n = data.len() as u64;
            self.count.fetch_add(n, Ordering::Relaxed);
            self.counter.increment(n);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body, counted, that logs the exchange when it ends, or when it is
/// dropped unfinished (the client went away).
struct Served {
    inner: Counted,
    exchange: Option<Exchange>,
}

impl http_body::Body for Served {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled
            && let Some(exchange) = self.exchange.take()
        {
            exchange.done(true);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(exchange) = self.exchange.take() {
            // An empty body may be dropped unpolled once the head went out: that is a
            // complete answer too.
            let complete = exchange.head || http_body::Body::is_end_stream(&self.inner);
            exchange.done(complete);
        }
    }
}

/// Counts a client connection while it is open.
pub(crate) struct OpenConnection(());

impl OpenConnection {
    pub(crate) fn counted() -> Self {
        counter!(CONNECTIONS).increment(1);
        metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
        OpenConnection(())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
    }
}

#[cfg(test)]
mod tests;
