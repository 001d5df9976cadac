//! Records and locks survive a PostgreSQL restart. In a test binary of its own: the
//! restart would break the connections of tests running beside it.
#![cfg(feature = "postgres")]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use chunkd_backends::{Pg, PgConfig, PgLocker, PgState};
use chunkd_core::testing::sample_info;
use chunkd_core::{Locker, StateStore, UploadId};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test-all.sh"))
}

fn restart_postgres() {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(env("CHUNKD_TEST_PG_RESTART"))
        .status()
        .expect("restart command");
    assert!(status.success(), "PostgreSQL restart failed");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-all.sh starts it"]
async fn records_and_locks_survive_a_database_restart() {
    let config = PgConfig {
        url: env("CHUNKD_TEST_PG_URL"),
        pool_size: 4,
        ..PgConfig::default()
    };
    let pg = Pg::connect(&config).await.expect("pg");
    let state = PgState::new(pg.clone());
    let a = PgLocker::new(pg.clone(), Duration::from_secs(3));
    let b = PgLocker::new(pg, Duration::from_secs(3));
    let info = sample_info(Some(10));
    state.insert(&info).await.expect("insert");
    let id = UploadId::generate();
    let mut held = a.lock(&id, Duration::from_secs(5)).await.expect("a locks");
    let contended = held.take_contended();

    restart_postgres();

    // The pool replaces its broken connections; a request may fail once meanwhile.
    let mut got = state.get(&info.id).await;
    if got.is_err() {
        got = state.get(&info.id).await;
    }
    let got = got.expect("the record after the restart");
    let updated = state.update(&got).await.expect("update after the restart");
    assert_eq!(updated.revision, info.revision + 1);

    // The lease row outlived the restart: another instance still has to ask for it,
    // and the holder still hears the request (notifications reconnect, renewals poll).
    let waiting =
        tokio::spawn(async move { b.lock(&id, Duration::from_secs(30)).await.map(|_| ()) });
    tokio::time::timeout(Duration::from_secs(30), contended)
        .await
        .expect("the holder never heard the request after the restart");
    drop(held);
    tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("b never got the lock")
        .unwrap()
        .expect("b locks");
}
