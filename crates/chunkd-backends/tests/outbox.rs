//! The outbox through the engine on the embedded state store: post-events saved with
//! the changes outlive a process that died while delivering them, and an event that
//! fails every attempt is parked and counted.
#![cfg(feature = "sqlite")]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chunkd_backends::{FsStore, SqliteState, SyncPolicy};
use chunkd_core::testing::body_of;
use chunkd_core::{
    BodyEnd, Delivered, Delivery, DeliveryError, Error, HookEvent, HookKind, Hooks, Limits,
    NewUpload, Owner, Uploads, WriteRequest,
};
use futures::StreamExt;
use tokio::sync::mpsc;

/// Long enough for any step here; reaching it fails the test instead of hanging it.
const LONG: Duration = Duration::from_secs(20);

/// Reports each delivery (its hook's name and key), then answers as told: `Ok`, an
/// error, or never (a process stuck, then killed, mid-delivery).
struct Receiver {
    seen: mpsc::UnboundedSender<(String, String)>,
    answer: Answer,
}

#[derive(Clone, Copy)]
enum Answer {
    Ok,
    Fail,
    Never,
    /// `StopUpload` to post-receive.
    Stop,
}

#[async_trait]
impl Hooks for Receiver {
    async fn deliver(&self, event: &HookEvent, key: &str) -> Result<Delivered, DeliveryError> {
        let _ = self
            .seen
            .send((event.kind.name().to_owned(), key.to_owned()));
        match self.answer {
            Answer::Ok => Ok(Delivered::Noted),
            Answer::Stop if event.kind == HookKind::PostReceive => Ok(Delivered::StopUpload),
            Answer::Stop => Ok(Delivered::Noted),
            Answer::Fail => Err(DeliveryError("receiver down".into())),
            Answer::Never => std::future::pending().await,
        }
    }
}

fn engine(
    dir: &Path,
    answer: Answer,
    delivery: Delivery,
) -> (Uploads, mpsc::UnboundedReceiver<(String, String)>) {
    let (seen, deliveries) = mpsc::unbounded_channel();
    let store = FsStore::new(dir.join("files"), SyncPolicy::Always).expect("fs");
    let state = SqliteState::open(dir.join("state.sqlite3"), SyncPolicy::Always).expect("sqlite");
    let uploads = Uploads::builder(Arc::new(store), Arc::new(state))
        .hooks(Arc::new(Receiver { seen, answer }))
        .delivery(delivery)
        .limits(Limits {
            checkpoint_bytes: 4096,
            ..Limits::default()
        })
        .build();
    (uploads, deliveries)
}

fn quick() -> Delivery {
    Delivery {
        hold: Duration::from_millis(300),
        first_retry: Duration::from_millis(10),
        max_retry: Duration::from_millis(40),
        poll: Duration::from_millis(20),
        ..Delivery::default()
    }
}

async fn upload_four_bytes(uploads: &Uploads) {
    let caller = uploads.for_owner(Owner::anonymous());
    let info = caller
        .create(NewUpload {
            length: Some(4),
            ..Default::default()
        })
        .await
        .expect("create");
    let written = caller
        .write(&info.id, WriteRequest::default(), body_of(b"abcd", 2))
        .await
        .expect("write");
    assert!(written.info.is_finished());
}

async fn next(deliveries: &mut mpsc::UnboundedReceiver<(String, String)>) -> (String, String) {
    tokio::time::timeout(LONG, deliveries.recv())
        .await
        .expect("no delivery in time")
        .expect("receiver gone")
}

#[tokio::test]
async fn events_held_by_a_process_that_died_are_delivered_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (first, mut stuck) = engine(dir.path(), Answer::Never, quick());
    upload_four_bytes(&first).await;
    let delivering = tokio::spawn({
        let first = first.clone();
        async move { first.deliver_events().await }
    });
    let (kind, held_key) = next(&mut stuck).await;
    assert_eq!(kind, "post-create");
    // The process dies mid-delivery: its task and engine are gone, the event still held.
    delivering.abort();
    let _ = delivering.await;
    drop(first);

    let (second, mut deliveries) = engine(dir.path(), Answer::Ok, quick());
    let delivering = tokio::spawn({
        let second = second.clone();
        async move { second.deliver_events().await }
    });
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next(&mut deliveries).await);
    }
    let kinds: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["post-create", "post-receive", "post-finish"]);
    assert_eq!(got[0].1, held_key, "the retry keeps the event's key");
    second.shutdown();
    delivering.await.unwrap();
    assert!(deliveries.try_recv().is_err(), "an event went out twice");
}

#[tokio::test]
async fn an_event_failing_every_attempt_is_parked_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (uploads, mut deliveries) = engine(
        dir.path(),
        Answer::Fail,
        Delivery {
            attempts: 3,
            ..quick()
        },
    );
    upload_four_bytes(&uploads).await;
    let delivering = tokio::spawn({
        let uploads = uploads.clone();
        async move { uploads.deliver_events().await }
    });
    // Each event: three attempts with one key, then parked, and the next goes.
    let mut attempts: Vec<(String, String)> = Vec::new();
    for _ in 0..9 {
        attempts.push(next(&mut deliveries).await);
    }
    uploads.shutdown();
    delivering.await.unwrap();
    let kinds: Vec<&str> = attempts.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "post-create",
            "post-create",
            "post-create",
            "post-receive",
            "post-receive",
            "post-receive",
            "post-finish",
            "post-finish",
            "post-finish"
        ]
    );
    for attempt in attempts.chunks(3) {
        assert!(attempt.iter().all(|(_, key)| *key == attempt[0].1));
    }
    assert_eq!(uploads.parked_events().await.unwrap(), 3);
    let mut distinct: Vec<&String> = attempts.iter().map(|(_, k)| k).collect();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "each event has its own key");
}

/// tusd's `StopUpload`: the application answers a post-receive by stopping the upload,
/// while its request still sends.
#[tokio::test]
async fn stop_upload_interrupts_the_running_request_and_removes_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    let (uploads, mut deliveries) = engine(dir.path(), Answer::Stop, quick());
    let caller = uploads.for_owner(Owner::anonymous());
    let info = caller
        .create(NewUpload {
            length: Some(100_000),
            ..Default::default()
        })
        .await
        .expect("create");
    let delivering = tokio::spawn({
        let uploads = uploads.clone();
        async move { uploads.deliver_events().await }
    });
    // Past the first checkpoint, then the client stalls: only the stop can end it.
    let first = bytes::Bytes::from(vec![7u8; 8000]);
    let body = futures::stream::iter([Ok(first)])
        .chain(futures::stream::pending())
        .boxed();
    let written = tokio::time::timeout(LONG, caller.write(&info.id, WriteRequest::default(), body))
        .await
        .expect("the stopped request ended");
    let end = written
        .expect("the bytes before the stop are committed")
        .end;
    assert_eq!(end, BodyEnd::Interrupted);
    let kinds: Vec<String> = [
        next(&mut deliveries).await,
        next(&mut deliveries).await,
        next(&mut deliveries).await,
    ]
    .into_iter()
    .map(|(kind, _)| kind)
    .collect();
    assert_eq!(kinds, ["post-create", "post-receive", "post-terminate"]);
    assert!(matches!(
        caller.info(&info.id).await,
        Err(Error::NotFound(_))
    ));
    let left: Vec<_> = std::fs::read_dir(dir.path().join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "bytes left behind: {left:?}");
    uploads.shutdown();
    delivering.await.unwrap();
}
