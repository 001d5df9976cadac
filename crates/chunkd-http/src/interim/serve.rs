//! The accept loop: hyper over each connection's shared socket, with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Version};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use super::Interim;
use super::first_read::FirstRead;
use super::io::InterimIo;
use super::leftover;
use crate::listener::Listener;

/// What one client may hold of the server, whatever it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct ConnectionLimits {
    /// A connection must finish a request's headers this soon after it starts sending
    /// them (or after the previous response, when idle); else it is closed.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Upload requests one client (an identity, or an anonymous address) may have
    /// running at once; more get 429. Enforced by the identity layer
    /// ([`crate::identity::Config::max_uploads_per_client`]); 0: no limit.
    pub max_uploads_per_client: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_uploads_per_client: crate::identity::DEFAULT_MAX_UPLOADS_PER_CLIENT,
        }
    }
}

/// Serves `app` on `listener` (HTTP/1.1 and h2c) until `shutdown` completes, then stops
/// accepting and waits for open connections to finish their current requests.
pub async fn serve<F>(listener: TcpListener, app: Router, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    serve_with(listener, app, ConnectionLimits::default(), shutdown).await
}

/// [`serve`] within `limits`, on any [`Listener`] (TCP, TLS, unix socket).
pub async fn serve_with<F>(
    listener: impl Into<Listener>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let listener = listener.into();
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        // A free slot first: at the limit, new connections wait in the backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = accept(&listener) => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (app, builder, watcher) = (app.clone(), builder.clone(), graceful.watcher());
        let header_read_timeout = limits.header_read_timeout;
        let tls = match &listener {
            Listener::Tls(_, acceptor) => Some(acceptor.clone()),
            _ => None,
        };
        tokio::spawn(async move {
            // hyper's header timeout starts once it reads a request, and telling HTTP/1.1
            // from h2c waits for the first bytes: a silent client is bounded here.
            let connection = Connection {
                app,
                builder,
                watcher,
            };
            match (accepted, tls) {
                (Accepted::Tcp(stream, peer), None) => {
                    // Responses and interim responses are written whole; don't hold them.
                    let _ = stream.set_nodelay(true);
                    // (`readable` may report a fresh socket ready; `peek` waits for a byte.)
                    let mut first = [0];
                    let first_byte =
                        tokio::time::timeout(header_read_timeout, stream.peek(&mut first));
                    if matches!(first_byte.await, Ok(Ok(1))) {
                        connection.serve(stream, Some(peer), false).await;
                    }
                }
                (Accepted::Tcp(stream, peer), Some(tls)) => {
                    let _ = stream.set_nodelay(true);
                    // The handshake is bounded like a request's headers; after it,
                    // rustls may hold the first request already, so the wait for its
                    // first byte is one on reads.
                    match tokio::time::timeout(header_read_timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let stream = FirstRead::within(stream, header_read_timeout);
                            connection.serve(stream, Some(peer), true).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                (Accepted::Unix(stream), _) => {
                    let stream = FirstRead::within(stream, header_read_timeout);
                    connection.serve(stream, None, false).await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

enum Accepted {
    Tcp(TcpStream, SocketAddr),
    Unix(UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Accepted> {
    match listener {
        Listener::Tcp(l) | Listener::Tls(l, _) => {
            let (stream, peer) = l.accept().await?;
            Ok(Accepted::Tcp(stream, peer))
        }
        Listener::Unix(l) => Ok(Accepted::Unix(l.accept().await?.0)),
    }
}

/// What serving one accepted connection needs.
struct Connection {
    app: Router,
    builder: auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
}

impl Connection {
    async fn serve<T>(self, stream: T, peer: Option<SocketAddr>, tls: bool)
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let _open = crate::accounting::OpenConnection::counted();
        let (io, sink) = InterimIo::new(stream);
        let service = request_service(self.app, Interim { sink }, peer, tls);
        let connection = self
            .builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        if let Err(e) = self.watcher.watch(connection).await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// What hyper calls for each request of one connection: the request gets its interim
/// handle (HTTP/1.1) and peer address, and what the handler leaves of an HTTP/1.x body
/// is settled (see [`leftover`]).
fn request_service(
    app: Router,
    interim: Interim,
    peer: Option<SocketAddr>,
    tls: bool,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = http::Response<Body>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<http::Response<Body>, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut req: Request<Incoming>| {
        if req.version() == Version::HTTP_11 {
            req.extensions_mut().insert(interim.clone());
        }
        // Who is on the other end, as axum's `ConnectInfo` extractor reads it.
        if let Some(peer) = peer {
            req.extensions_mut().insert(ConnectInfo(peer));
        }
        if tls {
            req.extensions_mut().insert(crate::listener::OverTls);
        }
        let app = app.clone();
        async move {
            if req.version() > Version::HTTP_11 {
                return app.oneshot(req.map(Body::new)).await;
            }
            let (parts, body) = req.into_parts();
            let (body, leftover) = leftover::track(body);
            let mut response = app
                .oneshot(Request::from_parts(parts, Body::new(body)))
                .await?;
            leftover.settle(&mut response).await;
            Ok(response)
        }
    })
}
