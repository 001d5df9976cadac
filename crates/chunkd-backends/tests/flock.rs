//! flock locks pass the locker suite, and hold across processes: two lockers on one
//! directory (each with its own in-process locker, as two processes have), and a real
//! second process killed while it holds a lock.
#![cfg(unix)]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
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

/// Kills the child (SIGKILL) if a test fails while it runs.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_holder_killed_with_sigkill_frees_the_lock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let locker = FlockLocker::new(dir.path().join("locks")).expect("locker");
    let id = UploadId::generate();
    let file = locker.dir().join(format!("{}.lock", id.as_str()));
    // util-linux flock(1); --no-fork: sleep itself holds the lock, so killing it is the
    // holder's death.
    let child = Command::new("flock")
        .arg("--no-fork")
        .arg(&file)
        .args(["sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .expect("flock(1) from util-linux is needed");
    let mut child = Killed(child);
    let mut held_elsewhere = false;
    for _ in 0..500 {
        if locker.try_lock(&id).await.expect("try_lock").is_none() {
            held_elsewhere = true;
            break;
        }
        assert!(
            child.0.try_wait().expect("child").is_none(),
            "flock(1) exited before taking the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(held_elsewhere, "the child never took the lock");
    // A waiter asks the other process (a token in the file), then times out.
    assert!(matches!(locker.lock(&id, SHORT).await, Err(Error::Locked)));
    assert_eq!(std::fs::read(&file).expect("lock file").len(), 8);

    child.0.kill().expect("kill -9");
    child.0.wait().expect("wait");
    let lease = locker.lock(&id, LONG).await;
    assert!(lease.is_ok(), "the dead holder's lock was not released");
}
