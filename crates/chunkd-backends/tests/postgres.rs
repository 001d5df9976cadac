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

/// Two instances (each its own pool) claiming from one outbox at once: every event goes
/// to exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test-all.sh starts it"]
async fn two_instances_hand_out_each_outbox_event_once() {
    use chunkd_core::testing::sample_info;
    use chunkd_core::{HookEvent, HookKind};

    let config = PgConfig {
        url: url(),
        schema: format!("t{}", UploadId::generate()),
        pool_size: 4,
        ..PgConfig::default()
    };
    let a = PgState::new(Pg::connect(&config).await.expect("pg a"));
    let b = PgState::new(Pg::connect(&config).await.expect("pg b"));
    let mut expected = Vec::new();
    for _ in 0..60 {
        let info = sample_info(Some(1));
        let event = HookEvent {
            kind: HookKind::PostCreate,
            upload: info.clone(),
            access: None,
            location: None,
            request: None,
        };
        a.insert_with_event(&info, Some(&event))
            .await
            .expect("insert");
        expected.push(info.id.to_string());
    }
    let drain = |state: PgState| async move {
        let mut got = Vec::new();
        // Bounded: 60 events, a few at a time; an empty claim means the rest is held
        // by the other instance or gone.
        for _ in 0..100 {
            let claimed = state
                .claim_events(std::time::SystemTime::now(), Duration::from_secs(60), 3)
                .await
                .expect("claim");
            if claimed.is_empty() {
                break;
            }
            for event in claimed {
                got.push(event.event.upload.id.to_string());
                state.event_delivered(event.seq).await.expect("delivered");
            }
        }
        got
    };
    let (from_a, from_b) = tokio::join!(tokio::spawn(drain(a)), tokio::spawn(drain(b)));
    let (from_a, from_b) = (from_a.expect("a"), from_b.expect("b"));
    let mut all: Vec<String> = from_a.iter().chain(&from_b).cloned().collect();
    all.sort();
    expected.sort();
    assert_eq!(all, expected, "a: {}, b: {}", from_a.len(), from_b.len());
}
