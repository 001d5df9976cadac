//! Engine cases around a running write: the newest request wins, another identity
//! never reaches it, and a completing body settles the length.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc;

use super::engine::{EngineParts, at, default_engine, sized, stored, write};
use super::{body_of, broken_body, pattern};
use crate::engine::{BodyEnd, Caller, WriteOutcome, WriteRequest};
use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::owner::Owner;
use crate::upload::{ConcatKind, NewUpload};

/// A write of `data` whose body delivers the first `first` bytes, then waits for the
/// rest as a half-dead connection does. Resolves the second value once the writer has
/// taken those bytes.
fn stalled_write(
    uploads: &Caller,
    id: &UploadId,
    data: &[u8],
    first: usize,
) -> (
    mpsc::UnboundedSender<std::io::Result<Bytes>>,
    tokio::task::JoinHandle<Result<WriteOutcome>>,
    impl Future<Output = ()>,
) {
    let (tx, rx) = mpsc::unbounded::<std::io::Result<Bytes>>();
    tx.unbounded_send(Ok(Bytes::copy_from_slice(&data[..first])))
        .expect("send");
    let (taken_tx, taken_rx) = tokio::sync::oneshot::channel::<()>();
    let mut taken_tx = Some(taken_tx);
    let body = rx.inspect(move |_| {
        if let Some(t) = taken_tx.take() {
            let _ = t.send(());
        }
    });
    let running = {
        let uploads = uploads.clone();
        let id = id.clone();
        tokio::spawn(async move { uploads.write(&id, at(0), body.boxed()).await })
    };
    let taken = async move {
        tokio::time::timeout(Duration::from_secs(10), taken_rx)
            .await
            .expect("writer never read its body")
            .expect("body dropped");
    };
    (tx, running, taken)
}

/// Sends `rest` to a [`stalled_write`] and ends its body; the write's outcome.
async fn send_the_rest(
    tx: mpsc::UnboundedSender<std::io::Result<Bytes>>,
    running: tokio::task::JoinHandle<Result<WriteOutcome>>,
    rest: &[u8],
) -> WriteOutcome {
    tx.unbounded_send(Ok(Bytes::copy_from_slice(rest)))
        .expect("send");
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the write never ended")
        .expect("join")
        .expect("write")
}

/// A newer request on an upload stops the running one, which keeps what it received.
pub async fn newest_request_wins(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let data = pattern(64_000, 22);
    let id = uploads
        .create(sized(data.len() as u64))
        .await
        .expect("create")
        .id;
    let (tx, first, taken) = stalled_write(&uploads, &id, &data, 10_000);
    // Once the stalled request has consumed its bytes, a newer request asks for the
    // upload: the stalled one must let go and keep them.
    taken.await;
    let settled = tokio::time::timeout(Duration::from_secs(10), uploads.settled_info(&id))
        .await
        .expect("newer request was starved")
        .expect("info");
    let result = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("older request never stopped")
        .expect("join");
    let outcome = result.expect("the interrupted write keeps what it has");
    assert_eq!(outcome.end, BodyEnd::Interrupted);
    assert_eq!(outcome.info.offset, 10_000);
    assert_eq!(settled.offset, 10_000);
    drop(tx);
    write(&uploads, &id, at(10_000), body_of(&data[10_000..], 5000))
        .await
        .expect("resume");
    assert_eq!(stored(&uploads, &id).await, data);
}

fn not_found<T>(r: &Result<T>) -> bool {
    matches!(r, Err(Error::NotFound(_)))
}

/// Another identity (anonymous or named) finds nothing of a running upload by any call,
/// and does not disturb it.
pub async fn another_owner_never_reaches_an_upload(parts: Arc<EngineParts>) {
    let engine = default_engine(&parts).engine().clone();
    let alice = engine.for_owner(Owner::named("alice"));
    let data = pattern(64_000, 25);
    let id = alice
        .create(sized(data.len() as u64))
        .await
        .expect("create")
        .id;
    // Alice's request delivers 10 000 bytes, then waits for more.
    let (tx, running, taken) = stalled_write(&alice, &id, &data, 10_000);
    taken.await;

    for stranger in [Owner::anonymous(), Owner::named("bob")] {
        let other = engine.for_owner(stranger.clone());
        let r = other.info(&id).await;
        assert!(not_found(&r), "{stranger}: info {r:?}");
        let r = other.settled_info(&id).await;
        assert!(not_found(&r), "{stranger}: settled_info {r:?}");
        let r = other.read(&id, None).await.map(|(info, _)| info);
        assert!(not_found(&r), "{stranger}: read {r:?}");
        let r = other.terminate(&id).await;
        assert!(not_found(&r), "{stranger}: terminate {r:?}");
        let r = other
            .write(&id, at(10_000), body_of(b"x", 1))
            .await
            .map(|o| o.info);
        assert!(not_found(&r), "{stranger}: write {r:?}");
        let joined = NewUpload {
            concat: ConcatKind::Final(vec![id.clone()]),
            ..Default::default()
        };
        let r = other.create(joined).await;
        assert!(
            matches!(r, Err(Error::InvalidConcat(_))),
            "{stranger}: concat {r:?}"
        );
    }
    // None of that asked Alice's request to stop: the rest of her body still arrives.
    let outcome = send_the_rest(tx, running, &data[10_000..]).await;
    assert_eq!(outcome.end, BodyEnd::Clean);
    assert!(outcome.info.is_finished());
    assert_eq!(stored(&alice, &id).await, data);
}

/// gc never takes a running upload for an idle one, however its expiry stands: it
/// neither purges it nor asks its request to stop.
pub async fn gc_leaves_a_running_upload_alone(parts: Arc<EngineParts>) {
    let uploads = crate::engine::Uploads::builder(parts.store.clone(), parts.state.clone())
        .limits(crate::engine::Limits {
            // Long enough for the write to start, short enough to pass while it runs.
            expire_after: Some(Duration::from_millis(500)),
            ..Default::default()
        })
        .build();
    let caller = uploads.for_owner(Owner::anonymous());
    let data = pattern(64_000, 26);
    let id = caller
        .create(sized(data.len() as u64))
        .await
        .expect("create")
        .id;
    let (tx, running, taken) = stalled_write(&caller, &id, &data, 10_000);
    taken.await;
    // The record's expiry passes while the request waits for the rest of its body (a
    // slow client between checkpoints). Bounded: 10 s at most.
    let mut polls = 0;
    while parts
        .state
        .expired(std::time::SystemTime::now(), 1)
        .await
        .expect("expired")
        .is_empty()
    {
        polls += 1;
        assert!(polls < 1000, "the expiry never passed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    assert_eq!(uploads.purge_expired().await.expect("gc"), 0);
    let outcome = send_the_rest(tx, running, &data[10_000..]).await;
    assert_eq!(outcome.end, BodyEnd::Clean, "gc interrupted the upload");
    assert!(outcome.info.is_finished());
    assert_eq!(stored(&caller, &id).await, data);
}

/// A body marked as completing sets the length when it ends cleanly; cut off, it keeps
/// what arrived and leaves the length open.
pub async fn completing_bodies_settle_the_length(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let data = pattern(20_000, 26);
    let id = uploads
        .create(NewUpload::default())
        .await
        .expect("create")
        .id;
    let first = uploads
        .write(&id, at(0), body_of(&data[..5_000], 1000))
        .await
        .expect("write");
    assert_eq!((first.end, first.info.length), (BodyEnd::Clean, None));
    // A completing body cut off keeps what arrived and leaves the length open.
    let completing = WriteRequest {
        completes: true,
        ..at(5_000)
    };
    let cut = uploads
        .write(&id, completing.clone(), broken_body(&data[5_000..8_000]))
        .await
        .expect("write");
    assert_eq!(cut.end, BodyEnd::Disconnected);
    assert_eq!((cut.info.offset, cut.info.length), (8_000, None));
    assert!(!cut.info.is_finished());
    let done = uploads
        .write(
            &id,
            WriteRequest {
                offset: 8_000,
                ..completing
            },
            body_of(&data[8_000..], 3000),
        )
        .await
        .expect("write");
    assert_eq!(done.end, BodyEnd::Clean);
    assert!(done.info.is_finished());
    assert_eq!(done.info.length, Some(20_000));
    assert_eq!(stored(&uploads, &id).await, data);
}
