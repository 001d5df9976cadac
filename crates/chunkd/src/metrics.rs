//! `/metrics` in Prometheus text format: the engine and the front ends count through the
//! `metrics` facade, and this installs its Prometheus recorder and serves what it holds,
//! on the main listener or on one of its own (docs/decisions/0008-metrics.md).

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use http::header;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

/// `[metrics]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Where the text is served.
    pub path: String,
    /// Serve it on this address instead of the main listener (e.g. `127.0.0.1:9100`,
    /// where only the scraper reaches it).
    pub listen: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            path: "/metrics".to_owned(),
            listen: None,
        }
    }
}

/// Latency buckets, in seconds: a fast disk write to a slow upload body.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// The process's recorder, installed on first use (one per process: tests start several
/// servers in one).
pub fn recorder() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| install().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)
        .context("metric buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    chunkd_core::metrics::describe();
    chunkd_http::accounting::describe();
    Ok(handle)
}

/// Serves `handle`'s metrics at `path`.
pub fn router(handle: PrometheusHandle, path: &str) -> Router {
    let route = get(move || {
        let handle = handle.clone();
        async move {
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                handle.render(),
            )
        }
    });
    Router::new().route(path, route)
}

/// Keeps histograms from growing between scrapes; runs until the process ends.
pub async fn upkeep(handle: PrometheusHandle) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}
