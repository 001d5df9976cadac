//! The server: listen, serve, collect expired uploads, shut down gracefully.

use std::time::Duration;

use anyhow::Context as _;
use chunkd_core::Uploads;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::assemble;
use crate::config::Config;
use crate::shutdown::Shutdown;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let uploads = assemble::uploads(&config).await?;
    match uploads.parked_events().await {
        Ok(0) => {}
        Ok(parked) => tracing::warn!(
            parked,
            "post-events are parked after failing every attempt; `chunkd parked --replay` sends them again"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot count parked post-events"),
    }
    let app = assemble::router(&config, uploads.clone())?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let metrics = start_metrics(&config.metrics).await?;
    let addr = listener.local_addr()?;
    let origin = match &config.public_url.base {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => format!("http://{addr}"),
    };
    tracing::info!(data_dir = %config.data_dir.display(), "chunkd listening on {addr}");
    // Scripts and tests read this line to find the server.
    println!(
        "chunkd: tus uploads at {origin}{}/",
        config.tus.path.trim_end_matches('/')
    );

    let (stop_tx, stop) = Shutdown::new();
    let collector = tokio::spawn(collect_expired(
        uploads.clone(),
        config.gc_interval,
        stop.clone(),
    ));
    // Post-events go out from the outbox; they stop with the engine, and what is left
    // goes out after the next start.
    let deliverer = tokio::spawn({
        let uploads = uploads.clone();
        async move { uploads.deliver_events().await }
    });
    // Other instances' upload events, for this instance's event streams.
    let relay = tokio::spawn({
        let uploads = uploads.clone();
        async move { uploads.relay_events().await }
    });
    let signals = tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });

    let draining = {
        let uploads = uploads.clone();
        let stop = stop.clone();
        async move {
            stop.wait().await;
            tracing::info!("shutting down: in-flight uploads keep what they received");
            uploads.shutdown();
        }
    };
    // chunkd's own accept loop: it lets handlers send 104 interim responses.
    let served = tokio::spawn(chunkd_http::interim::serve_with(
        listener,
        app,
        config.connections,
        draining,
    ));
    stop.clone().wait().await;
    match tokio::time::timeout(config.shutdown_timeout, served).await {
        Ok(result) => result??,
        Err(_) => tracing::warn!("shutdown timeout: closing remaining connections"),
    }
    // A delivery under way finishes (each is bounded by the hook timeout).
    if tokio::time::timeout(config.shutdown_timeout, deliverer)
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout: post-events in delivery go out after the next start");
    }
    collector.abort();
    relay.abort();
    for task in metrics {
        task.abort();
    }
    signals.abort();
    tracing::info!("chunkd stopped");
    Ok(())
}

/// The metrics recorder's upkeep and, with `metrics.listen`, the listener of its own.
async fn start_metrics(
    config: &crate::metrics::Config,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    if !config.enabled {
        return Ok(Vec::new());
    }
    let handle = crate::metrics::recorder()?;
    let mut tasks = vec![tokio::spawn(crate::metrics::upkeep(handle.clone()))];
    if let Some(addr) = config.listen {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("metrics.listen: cannot listen on {addr}"))?;
        tracing::info!(
            "metrics at http://{}{}",
            listener.local_addr()?,
            config.path
        );
        let app = crate::metrics::router(handle, &config.path);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        }));
    }
    Ok(tasks)
}

async fn wait_for_signal() {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::warn!("cannot install signal handlers; stop with kill -9");
            std::future::pending::<()>().await;
        }
    }
}

async fn collect_expired(uploads: Uploads, every: Duration, stop: Shutdown) {
    if uploads.limits().expire_after.is_none() || every.is_zero() {
        return;
    }
    let mut ticker = tokio::time::interval(every);
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                match uploads.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired uploads deleted"),
                    Err(e) => tracing::error!(error = %e, "expiry collection failed"),
                }
            }
            () = &mut stopped => return,
        }
    }
}
