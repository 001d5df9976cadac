//! PostgreSQL state and locks pass the public conformance suites, and hold across
//! instances. Needs a server: `scripts/test-all.sh` starts one and runs these with
//! `--include-ignored`; `CHUNKD_TEST_PG_URL` names it.
#![cfg(feature = "postgres")]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chunkd_backends::{FsStore, Pg, PgConfig, PgLocker, PgState, SyncPolicy};
use chunkd_core::testing::Fixture;
use chunkd_core::testing::engine::EngineParts;
use chunkd_core::{Locker, StateStore, UploadId};

fn url() -> String {
    std::env::var("CHUNKD_TEST_PG_URL")
        .expect("CHUNKD_TEST_PG_URL is not set: run scripts/test-all.sh, or eval \"$(scripts/services.sh start)\"")
}

/// A database connection in a schema of its own, so tests never see each other's rows.
async fn fresh_pg() -> Pg {
    let schema = format!("t{}", UploadId::generate());
    let config = PgConfig {
        url: url(),
        schema,
        pool_size: 8,
        ..PgConfig::default()
    };
    Pg::connect(&config).await.expect("pg")
}

async fn postgres() -> Fixture<dyn StateStore> {
    Fixture::new(Arc::new(PgState::new(fresh_pg().await)) as Arc<dyn StateStore>)
}

async fn pg_locker() -> Fixture<dyn Locker> {
    let locker = PgLocker::new(fresh_pg().await, Duration::from_secs(5));
    Fixture::new(Arc::new(locker) as Arc<dyn Locker>)
}

async fn fs_postgres() -> Fixture<EngineParts> {
    let dir = tempfile::tempdir().expect("temp dir");
    let parts = EngineParts {
        store: Arc::new(FsStore::new(dir.path().join("files"), SyncPolicy::Never).expect("fs")),
        state: Arc::new(PgState::new(fresh_pg().await)),
    };
    Fixture::new(Arc::new(parts)).keeping(dir)
}

chunkd_core::state_store_suite!(postgres, #[ignore = "needs PostgreSQL: scripts/test-all.sh starts it"]);
chunkd_core::locker_suite!(pg_locker, #[ignore = "needs PostgreSQL: scripts/test-all.sh starts it"]);
chunkd_core::engine_suite!(fs_postgres, #[ignore = "needs PostgreSQL: scripts/test-all.sh starts it"]);

const LONG: Duration = Duration::from_secs(20);

/// Two lockers on one database are two instances as far as locking goes.
async fn two_instances(ttl: Duration) -> (PgLocker, PgLocker) {
    let pg = fresh_pg().await;
    (PgLocker::new(pg.clone(), ttl), PgLocker::new(pg, ttl))
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-all.sh starts it"]
async fn a_request_on_another_instance_makes_the_holder_let_go() {
    let (a, b) = two_instances(Duration::from_secs(5)).await;
    let id = UploadId::generate();
    let mut held = a.lock(&id, LONG).await.expect("a locks");
    let contended = held.take_contended();
    let waiting = tokio::spawn(async move { b.lock(&id, LONG).await.map(|_| ()) });
    tokio::time::timeout(LONG, contended)
        .await
        .expect("the holder was never asked to let go");
    drop(held);
    tokio::time::timeout(LONG, waiting)
        .await
        .expect("b never got the lock")
        .unwrap()
        .expect("b locks");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-all.sh starts it"]
async fn a_dead_holder_loses_its_lock_after_the_ttl() {
    let (a, b) = two_instances(Duration::from_millis(600)).await;
    let id = UploadId::generate();
    // The process "dies": its lease is never released and its heartbeats stop.
    std::mem::forget(a.lock(&id, LONG).await.expect("a locks"));
    drop(a);
    assert!(matches!(
        b.lock(&id, Duration::from_millis(50)).await,
        Err(chunkd_core::Error::Locked)
    ));
    b.lock(&id, LONG)
        .await
        .expect("b takes over once the lease expires");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-all.sh starts it"]
async fn a_live_holder_keeps_its_lock_past_the_ttl() {
    let (a, b) = two_instances(Duration::from_millis(600)).await;
    let id = UploadId::generate();
    let _held = a.lock(&id, LONG).await.expect("a locks");
    // Several ttls pass while b waits: the heartbeat keeps the lease a's.
    assert!(matches!(
        b.lock(&id, Duration::from_secs(2)).await,
        Err(chunkd_core::Error::Locked)
    ));
}
