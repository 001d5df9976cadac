//! Probes for load balancers and orchestrators: `/healthz` says the process serves,
//! `/readyz` that the state store takes a write and the data store answers. A readiness
//! result is kept for a moment and worked out by one probe at a time, so a flood of
//! probes costs the stores one check per `cache` interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chunkd_core::Uploads;
use http::StatusCode;
use serde::Serialize;
use tokio::sync::Mutex;

/// Settings of the probes.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Answers 200 while the process serves.
    pub health_path: String,
    /// Answers 200 when the stores answer, else 503 naming the one that does not.
    pub ready_path: String,
    /// How long a readiness result is reused.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub cache: Duration,
    /// A store that takes longer than this to answer is not ready.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            health_path: "/healthz".to_owned(),
            ready_path: "/readyz".to_owned(),
            cache: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        }
    }
}

/// What `/readyz` says for each store: `ok`, `failed` or `no answer within …`. The
/// error itself (hosts, paths, database names) goes to the log, not to whoever probes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct Readiness {
    ready: bool,
    state: String,
    store: String,
}

type Check = tokio::task::JoinHandle<chunkd_core::Result<()>>;

/// The last result, and the checks still under way: a check that outlives its timeout
/// (a hung disk) is waited for by the next probe instead of joined by another, so a
/// store that never answers holds one task, not one per probe.
#[derive(Default)]
struct Checks {
    last: Option<(Instant, Readiness)>,
    state: Option<Check>,
    store: Option<Check>,
}

struct Probes {
    uploads: Uploads,
    config: Config,
    checks: Mutex<Checks>,
}

/// The probes at their paths.
pub fn router<S>(uploads: Uploads, config: Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let health = config.health_path.clone();
    let ready = config.ready_path.clone();
    let probes = Arc::new(Probes {
        uploads,
        config,
        checks: Mutex::new(Checks::default()),
    });
    let router = Router::new()
        .route(&health, get(|| async { "ok\n" }))
        .route(&ready, get(readiness))
        .with_state(probes);
    crate::accounting::account(router, "health")
}

async fn readiness(State(probes): State<Arc<Probes>>) -> Response {
    // One probe checks while the others wait for its result.
    let mut checks = probes.checks.lock().await;
    let fresh = checks
        .last
        .as_ref()
        .filter(|(at, _)| at.elapsed() < probes.config.cache)
        .map(|(_, readiness)| readiness.clone());
    let readiness = match fresh {
        Some(readiness) => readiness,
        None => {
            let readiness = probes.check(&mut checks).await;
            checks.last = Some((Instant::now(), readiness.clone()));
            readiness
        }
    };
    drop(checks);
    let status = match readiness.ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(readiness)).into_response()
}

impl Probes {
    async fn check(&self, checks: &mut Checks) -> Readiness {
        let uploads = self.uploads.clone();
        let state = checks
            .state
            .get_or_insert_with(|| tokio::spawn(async move { uploads.check_state().await }));
        let uploads = self.uploads.clone();
        let store = checks
            .store
            .get_or_insert_with(|| tokio::spawn(async move { uploads.check_store().await }));
        let timeout = self.config.timeout;
        let (state_done, store_done) = tokio::join!(
            tokio::time::timeout(timeout, state),
            tokio::time::timeout(timeout, store),
        );
        let state = said("state", &mut checks.state, state_done, timeout);
        let store = said("store", &mut checks.store, store_done, timeout);
        Readiness {
            ready: state == "ok" && store == "ok",
            state,
            store,
        }
    }
}

/// One store's word, logged when it is not `ok`; a finished check is let go.
fn said(
    part: &str,
    running: &mut Option<Check>,
    done: Result<
        Result<chunkd_core::Result<()>, tokio::task::JoinError>,
        tokio::time::error::Elapsed,
    >,
    timeout: Duration,
) -> String {
    let Ok(finished) = done else {
        tracing::warn!(part, "not ready: no answer within {timeout:?}");
        return format!("no answer within {timeout:?}");
    };
    *running = None;
    match finished {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => {
            tracing::warn!(part, error = %chunkd_core::error::with_causes(&e), "not ready");
            "failed".to_owned()
        }
        Err(e) => {
            tracing::warn!(part, error = %e, "not ready: the check ended abnormally");
            "failed".to_owned()
        }
    }
}

#[cfg(test)]
mod tests;
