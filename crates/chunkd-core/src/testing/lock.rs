//! [`Locker`] contract cases.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::id::UploadId;
use crate::lock::Locker;

const LONG: Duration = Duration::from_secs(10);

/// A second request for a held lock signals the holder, and gets the lease once it is
/// dropped.
pub async fn second_request_signals_holder_and_gets_lease(locker: Arc<dyn Locker>) {
    let id = UploadId::generate();
    let mut first = locker.lock(&id, LONG).await.expect("first lock");
    let contended = first.take_contended();
    let l2 = locker.clone();
    let id2 = id.clone();
    let second = tokio::spawn(async move { l2.lock(&id2, LONG).await });
    // The holder is told (no timing assumption: this awaits the signal itself).
    tokio::time::timeout(LONG, contended)
        .await
        .expect("holder was never asked to let go");
    drop(first);
    let second = tokio::time::timeout(LONG, second)
        .await
        .expect("second request never got the lease")
        .expect("join");
    assert!(second.is_ok());
}

/// A lock held for longer than the waiter's timeout is `Locked`.
pub async fn lock_times_out_while_held(locker: Arc<dyn Locker>) {
    let id = UploadId::generate();
    let _held = locker.lock(&id, LONG).await.expect("lock");
    let err = locker.lock(&id, Duration::from_millis(50)).await;
    assert!(matches!(err, Err(Error::Locked)));
}

/// Dropping a lease frees the lock.
pub async fn dropping_lease_releases(locker: Arc<dyn Locker>) {
    let id = UploadId::generate();
    drop(locker.lock(&id, LONG).await.expect("lock"));
    let again = locker.lock(&id, Duration::from_millis(500)).await;
    assert!(again.is_ok());
}

/// Holding one upload's lock does not block another's.
pub async fn locks_are_per_upload(locker: Arc<dyn Locker>) {
    let _a = locker.lock(&UploadId::generate(), LONG).await.expect("a");
    let b = locker
        .lock(&UploadId::generate(), Duration::from_millis(500))
        .await;
    assert!(b.is_ok());
}

/// `try_lock` on a held lock gets nothing and leaves the holder alone.
pub async fn try_lock_never_signals_the_holder(locker: Arc<dyn Locker>) {
    let id = UploadId::generate();
    let mut held = locker.lock(&id, LONG).await.expect("lock");
    let mut contended = held.take_contended();
    let second = locker.try_lock(&id).await.expect("try_lock");
    assert!(second.is_none(), "a held lease was granted twice");
    // The holder was not asked to let go: its signal is still pending.
    assert!(
        futures::poll!(&mut contended).is_pending(),
        "try_lock interrupted the holder"
    );
    drop(held);
    assert!(locker.lock(&id, Duration::from_millis(500)).await.is_ok());
    // A lease never taken is granted, and held like any other. (Right after a release
    // it may not be yet: a shared locker lets go in the background.)
    let other = UploadId::generate();
    let free = locker.try_lock(&other).await.expect("try_lock");
    assert!(free.is_some(), "a free lease was declined");
    assert!(locker.try_lock(&other).await.expect("try_lock").is_none());
}
