#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::{ByteStream, DataStore, Error, StoreState, UploadInfo, Uploads, Written};
use http::StatusCode;
use serde_json::Value;

use super::Config;
use crate::test_support::call;

/// A store whose bucket can vanish (fault injection), counting the checks it answers.
#[derive(Debug, Default)]
struct Vanishing {
    inner: MemoryStore,
    gone: AtomicBool,
    hangs: AtomicBool,
    checks: AtomicUsize,
}

#[async_trait::async_trait]
impl DataStore for Vanishing {
    fn name(&self) -> &'static str {
        "vanishing"
    }
    async fn create(&self, info: &UploadInfo) -> chunkd_core::Result<StoreState> {
        self.inner.create(info).await
    }
    async fn write(&self, info: &UploadInfo, body: ByteStream<'_>) -> chunkd_core::Result<Written> {
        self.inner.write(info, body).await
    }
    async fn finish(&self, info: &UploadInfo) -> chunkd_core::Result<StoreState> {
        self.inner.finish(info).await
    }
    async fn read(
        &self,
        info: &UploadInfo,
        range: Range<u64>,
    ) -> chunkd_core::Result<ByteStream<'static>> {
        self.inner.read(info, range).await
    }
    async fn delete(&self, info: &UploadInfo) -> chunkd_core::Result<()> {
        self.inner.delete(info).await
    }
    async fn check(&self) -> chunkd_core::Result<()> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        // A hung disk: no answer while `hangs` is set.
        while self.hangs.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match self.gone.load(Ordering::SeqCst) {
            true => Err(Error::backend("vanishing", "NoSuchBucket")),
            false => Ok(()),
        }
    }
}

fn app(store: Arc<Vanishing>, config: Config) -> axum::Router {
    let uploads = Uploads::builder(store, Arc::new(MemoryState::new())).build();
    super::router(uploads, config)
}

async fn ready(app: &axum::Router) -> (StatusCode, Value) {
    let r = call(app, "GET", "/readyz", &[], Body::empty()).await;
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

#[tokio::test]
async fn readiness_names_the_store_that_does_not_answer_and_comes_back() {
    let store = Arc::new(Vanishing::default());
    let app = app(
        store.clone(),
        Config {
            cache: Duration::ZERO,
            timeout: Duration::from_millis(200),
            ..Config::default()
        },
    );
    assert_eq!(
        call(&app, "GET", "/healthz", &[], Body::empty())
            .await
            .status,
        StatusCode::OK
    );
    let (status, said) = ready(&app).await;
    assert_eq!(
        (status, &said["state"], &said["store"]),
        (StatusCode::OK, &"ok".into(), &"ok".into())
    );

    store.gone.store(true, Ordering::SeqCst);
    let (status, said) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(said["state"], "ok");
    // What is wrong goes to the log; the prober learns which part.
    assert_eq!(said["store"], "failed", "{said}");

    store.gone.store(false, Ordering::SeqCst);
    store.hangs.store(true, Ordering::SeqCst);
    let (status, said) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        said["store"].as_str().unwrap().contains("no answer within"),
        "{said}"
    );

    // Still hung: the next probe waits for the same check instead of starting another.
    let (status, _) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(store.checks.load(Ordering::SeqCst), 3);

    store.hangs.store(false, Ordering::SeqCst);
    assert_eq!(ready(&app).await.0, StatusCode::OK);
    // The hung check answered at last; the healthz probe never asks the stores.
    assert_eq!(store.checks.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_probe_flood_checks_the_stores_once_per_interval() {
    let store = Arc::new(Vanishing::default());
    let app = app(
        store.clone(),
        Config {
            cache: Duration::from_secs(60),
            ..Config::default()
        },
    );
    let probes: Vec<_> = (0..200).map(|_| ready(&app)).collect();
    for (status, _) in futures::future::join_all(probes).await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(store.checks.load(Ordering::SeqCst), 1);
}
