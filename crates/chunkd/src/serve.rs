//! The server: listen, serve, collect expired uploads, shut down gracefully.

use std::time::Duration;

use anyhow::Context as _;
use chunkd_core::Uploads;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::assemble;
use crate::config::Config;
use crate::listeners;
use crate::shutdown::Shutdown;
use chunkd_http::listener::Address;

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
    let listeners::Bound {
        listeners,
        certificates,
        sockets,
    } = listeners::bind(&config).await?;
    let metrics = start_metrics(&config.metrics).await?;
    let addresses: Vec<Address> = listeners.iter().map(|(_, a)| a.clone()).collect();
    let origin = match (&config.public_url.base, &addresses[0]) {
        (Some(base), _) => base.trim_end_matches('/').to_owned(),
        (None, Address::Tcp(addr)) => format!("http://{addr}"),
        (None, Address::Tls(addr)) => format!("https://{addr}"),
        // Behind a proxy, which should set public_url.base.
        (None, Address::Unix(_)) => "http://localhost".to_owned(),
    };
    for address in &addresses {
        tracing::info!(data_dir = %config.data_dir.display(), "chunkd listening on {address}");
    }
    let reloader = tokio::spawn(listeners::reload_on_sighup(certificates));
    let stopped_by_signal = stop_signals();
    // Scripts and tests read this line to find the server.
    println!(
        "chunkd: tus uploads at {origin}{}/",
        config.tus.path.trim_end_matches('/')
    );
    // systemd's Type=notify: serving from here on (nothing happens without NOTIFY_SOCKET).
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "cannot tell systemd the server is ready");
    }

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
        stopped_by_signal.await;
        let _ = stop_tx.send(true);
    });

    let draining = {
        let uploads = uploads.clone();
        let stop = stop.clone();
        async move {
            stop.wait().await;
            tracing::info!("shutting down: in-flight uploads keep what they received");
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
            uploads.shutdown();
        }
    };
    // chunkd's own accept loop: it lets handlers send 104 interim responses. The
    // first listener's shutdown also stops the engine's writes; the others just stop.
    let mut served = Vec::new();
    let mut draining =
        Some(Box::pin(draining) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>);
    for (listener, _) in listeners {
        let shutdown = draining
            .take()
            .unwrap_or_else(|| Box::pin(stop.clone().wait()));
        served.push(tokio::spawn(chunkd_http::interim::serve_with(
            listener,
            app.clone(),
            config.connections,
            shutdown,
        )));
    }
    stop.clone().wait().await;
    let all_served = futures::future::join_all(served);
    match tokio::time::timeout(config.shutdown_timeout, all_served).await {
        Ok(results) => {
            for result in results {
                result??;
            }
        }
        Err(_) => tracing::warn!("shutdown timeout: closing remaining connections"),
    }
    listeners::remove_sockets(&sockets);
    // A delivery under way finishes (each is bounded by the hook timeout).
    if tokio::time::timeout(config.shutdown_timeout, deliverer)
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout: post-events in delivery go out after the next start");
    }
    collector.abort();
    relay.abort();
    reloader.abort();
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

/// SIGTERM and SIGINT, caught from the moment this returns: installed before the
/// server says it is ready, so a stop sent right after is a graceful one.
fn stop_signals() -> impl Future<Output = ()> + Send + 'static {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    wait_for_signal(term, int)
}

async fn wait_for_signal(
    term: std::io::Result<tokio::signal::unix::Signal>,
    int: std::io::Result<tokio::signal::unix::Signal>,
) {
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

pub(crate) async fn collect_expired(uploads: Uploads, every: Duration, stop: Shutdown) {
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
