//! A flock held by a real second process, killed with SIGKILL: the kernel releases it.
//! Alone in its test binary, since the child it forks shares, until its exec, every lock
//! file another test thread has open.
#![cfg(unix)]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chunkd_backends::FlockLocker;
use chunkd_core::{Error, Locker, UploadId};

const LONG: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(300);

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
