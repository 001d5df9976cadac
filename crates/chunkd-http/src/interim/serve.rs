//! The accept loop: hyper over each connection's shared socket, with graceful shutdown.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Version};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use super::Interim;
use super::io::InterimIo;
use super::leftover;

/// Serves `app` on `listener` (HTTP/1.1 and h2c) until `shutdown` completes, then stops
/// accepting and waits for open connections to finish their current requests.
pub async fn serve<F>(listener: TcpListener, app: Router, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
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
        // Responses and interim responses are written whole; don't hold them back.
        let _ = stream.set_nodelay(true);
        let (io, sink) = InterimIo::new(stream);
        let interim = Interim { sink };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            if req.version() == Version::HTTP_11 {
                req.extensions_mut().insert(interim.clone());
            }
            // Who is on the other end, as axum's `ConnectInfo` extractor reads it.
            req.extensions_mut().insert(ConnectInfo(peer));
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
        });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
