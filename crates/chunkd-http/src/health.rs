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

/// What `/readyz` says: `ok`, or what is wrong, for each store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct Readiness {
    ready: bool,
    state: String,
    store: String,
}

struct Probes {
    uploads: Uploads,
    config: Config,
    last: Mutex<Option<(Instant, Readiness)>>,
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
        last: Mutex::new(None),
    });
    let router = Router::new()
        .route(&health, get(|| async { "ok\n" }))
        .route(&ready, get(readiness))
        .with_state(probes);
    crate::accounting::account(router, "health")
}

async fn readiness(State(probes): State<Arc<Probes>>) -> Response {
    // One probe checks while the others wait for its result.
    let mut last = probes.last.lock().await;
    let fresh = last
        .as_ref()
        .filter(|(at, _)| at.elapsed() < probes.config.cache)
        .map(|(_, readiness)| readiness.clone());
    let readiness = match fresh {
        Some(readiness) => readiness,
        None => {
            let readiness = probes.check().await;
            if !readiness.ready {
                tracing::warn!(state = %readiness.state, store = %readiness.store, "not ready");
            }
            *last = Some((Instant::now(), readiness.clone()));
            readiness
        }
    };
    drop(last);
    let status = match readiness.ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(readiness)).into_response()
}

impl Probes {
    async fn check(&self) -> Readiness {
        let timeout = self.config.timeout;
        let said =
            |result: Result<chunkd_core::Result<()>, tokio::time::error::Elapsed>| match result {
                Ok(Ok(())) => "ok".to_owned(),
                Ok(Err(e)) => chunkd_core::error::with_causes(&e),
                Err(_) => format!("no answer within {timeout:?}"),
            };
        let (state, store) = tokio::join!(
            tokio::time::timeout(timeout, self.uploads.check_state()),
            tokio::time::timeout(timeout, self.uploads.check_store()),
        );
        let (state, store) = (said(state), said(store));
        Readiness {
            ready: state == "ok" && store == "ok",
            state,
            store,
        }
    }
}

#[cfg(test)]
mod tests;
