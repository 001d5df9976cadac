//! flock locks pass the locker suite, and hold across processes: two lockers on one
//! directory (each with its own in-process locker, as two processes have). A real second
//! process is `flock_process.rs`: a child forked while a test here holds a lock would
//! keep that lock until its exec.
#![cfg(unix)]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chunkd_backends::FlockLocker;
use chunkd_core::testing::Fixture;
use chunkd_core::{Error, Locker, UploadId};
use tempfile::TempDir;

const LONG: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(300);

async fn flock_locker() -> Fixture<dyn Locker> {
    let dir = tempfile::tempdir().expect("temp dir");
    let locker = FlockLocker::new(dir.path().join("locks")).expect("locker");
    Fixture::new(Arc::new(locker) as Arc<dyn Locker>).keeping(dir)
}

chunkd_core::locker_suite!(flock_locker);

/// Two lockers on one directory are two processes as far as locking goes.
fn two_instances() -> (TempDir, Arc<FlockLocker>, Arc<FlockLocker>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let locks = dir.path().join("locks");
    let a = FlockLocker::new(&locks).expect("a");
    let b = FlockLocker::new(&locks).expect("b");
    (dir, Arc::new(a), Arc::new(b))
}

#[tokio::test]
async fn a_lease_held_by_another_instance_excludes() {
    let (_dir, a, b) = two_instances();
    let id = UploadId::generate();
    let _held = a.lock(&id, LONG).await.expect("a locks");
    assert!(matches!(b.lock(&id, SHORT).await, Err(Error::Locked)));
    assert!(b.try_lock(&id).await.expect("try_lock").is_none());
    // Another upload is free on b all the same.
    assert!(
        b.try_lock(&UploadId::generate())
            .await
            .expect("try_lock")
            .is_some()
    );
}

#[tokio::test]
async fn a_request_on_another_instance_makes_the_holder_let_go() {
    let (_dir, a, b) = two_instances();
    let id = UploadId::generate();
    let mut held = a.lock(&id, LONG).await.expect("a locks");
    let contended = held.take_contended();
    let waiting = tokio::spawn({
        let id = id.clone();
        async move { b.lock(&id, LONG).await.map(|_| ()) }
    });
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
async fn try_lock_on_another_instance_never_signals_the_holder() {
    let (_dir, a, b) = two_instances();
    let id = UploadId::generate();
    let mut held = a.lock(&id, LONG).await.expect("a locks");
    let mut contended = held.take_contended();
    let file = a.dir().join(format!("{}.lock", id.as_str()));
    let before = std::fs::read(&file).expect("lock file");
    for _ in 0..3 {
        assert!(b.try_lock(&id).await.expect("try_lock").is_none());
    }
    assert_eq!(
        std::fs::read(&file).expect("lock file"),
        before,
        "a token was written"
    );
    // The holder reads the file several times over and is still not asked.
    assert!(
        tokio::time::timeout(SHORT, &mut contended).await.is_err(),
        "try_lock interrupted the holder"
    );
}

#[tokio::test]
async fn a_released_lease_lets_the_other_instance_in() {
    let (_dir, a, b) = two_instances();
    let id = UploadId::generate();
    let held = a.lock(&id, LONG).await.expect("a locks");
    assert!(b.try_lock(&id).await.expect("try_lock").is_none());
    drop(held);
    // Closing the file released the lock at once: no waiting needed.
    let taken = b.try_lock(&id).await.expect("try_lock");
    assert!(taken.is_some(), "the released lease stayed held");
    assert!(a.try_lock(&id).await.expect("try_lock").is_none());
    drop(taken);
    a.lock(&id, SHORT).await.expect("a locks again");
}

#[tokio::test]
async fn a_contended_future_outliving_its_lease_does_not_keep_the_lock() {
    let (_dir, a, b) = two_instances();
    let id = UploadId::generate();
    let mut held = a.lock(&id, LONG).await.expect("a locks");
    let contended = held.take_contended();
    drop(held);
    assert!(b.try_lock(&id).await.expect("try_lock").is_some());
    drop(contended);
}
