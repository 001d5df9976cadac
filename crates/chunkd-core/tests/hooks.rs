//! Pre-hooks can refuse creation, finishing and termination; post-events report what
//! happened.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use async_trait::async_trait;
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::testing::{body_of, pattern};
use chunkd_core::{
    Caller, Error, Event, HookEvent, Hooks, NewUpload, Owner, Rejection, Uploads, Verdict,
    WriteRequest,
};

/// Refuses uploads named "forbidden", refuses to finish uploads larger than 100 bytes, and
/// refuses to terminate finished uploads.
struct Policy;

fn reject(status: u16, message: &str) -> Verdict {
    Verdict::Reject(Rejection::new(status, message).expect("a refusal status"))
}

#[async_trait]
impl Hooks for Policy {
    async fn pre_create(&self, event: &HookEvent) -> Verdict {
        match event.upload.metadata.text("filename") {
            Some("forbidden") => reject(403, "no such files here"),
            _ => Verdict::Continue,
        }
    }

    async fn pre_finish(&self, event: &HookEvent) -> Verdict {
        match event.upload.length {
            Some(n) if n > 100 => reject(422, "too big to keep"),
            _ => Verdict::Continue,
        }
    }

    async fn pre_terminate(&self, event: &HookEvent) -> Verdict {
        match event.upload.is_finished() {
            true => reject(409, "finished uploads stay"),
            false => Verdict::Continue,
        }
    }
}

fn engine() -> Caller {
    Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .hooks(Arc::new(Policy))
        .build()
        .for_owner(Owner::anonymous())
}

fn named(name: &str, length: u64) -> NewUpload {
    let mut new = NewUpload {
        length: Some(length),
        ..Default::default()
    };
    new.metadata.insert("filename", name);
    new
}

#[tokio::test]
async fn pre_create_can_refuse_an_upload() {
    let err = engine().create(named("forbidden", 10)).await;
    match err {
        Err(Error::Rejected(r)) => {
            assert_eq!((r.status(), r.message()), (403, "no such files here"))
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn pre_finish_refusal_leaves_the_upload_unfinished() {
    let uploads = engine();
    let id = uploads.create(named("big", 200)).await.expect("create").id;
    let err = uploads
        .write(&id, WriteRequest::default(), body_of(&pattern(200, 1), 50))
        .await;
    assert!(
        matches!(err, Err(Error::Rejected(ref r)) if r.status() == 422),
        "{err:?}"
    );
    let info = uploads.info(&id).await.expect("info");
    assert!(!info.is_finished());
    assert!(matches!(
        uploads.read(&id, None).await,
        Err(Error::NotFinished)
    ));
}

#[tokio::test]
async fn pre_terminate_can_keep_an_upload() {
    let uploads = engine();
    let id = uploads.create(named("small", 3)).await.expect("create").id;
    let _ = uploads
        .write(&id, WriteRequest::default(), body_of(b"abc", 3))
        .await
        .expect("write");
    assert!(matches!(
        uploads.terminate(&id).await,
        Err(Error::Rejected(_))
    ));
    assert!(uploads.info(&id).await.expect("still there").is_finished());
}

#[tokio::test]
async fn events_report_the_lifecycle() {
    let uploads = engine();
    let mut events = uploads.engine().events();
    let id = uploads.create(named("a", 4)).await.expect("create").id;
    let _ = uploads
        .write(&id, WriteRequest::default(), body_of(b"ab", 2))
        .await
        .expect("write");
    let other = uploads.create(named("b", 4)).await.expect("create").id;
    uploads.terminate(&other).await.expect("terminate");
    let _ = uploads
        .write(
            &id,
            WriteRequest {
                offset: 2,
                ..Default::default()
            },
            body_of(b"cd", 2),
        )
        .await
        .expect("write");
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(match event {
            Event::Created(i) => format!("created {}", i.metadata.text("filename").unwrap_or("?")),
            Event::Progress(info) => format!("progress {}", info.offset),
            Event::Finished(i) => format!("finished {}", i.offset),
            Event::Terminated(_) => "terminated".to_owned(),
            Event::Expired(_) => "expired".to_owned(),
            Event::Refused(_, why) => format!("refused {why}"),
        });
    }
    assert_eq!(
        seen,
        [
            "created a",
            "progress 2",
            "created b",
            "terminated",
            "progress 4",
            "finished 4"
        ]
    );
}

#[test]
fn a_refusal_cannot_carry_a_success_status() {
    for status in [0, 200, 204, 302, 399, 600] {
        assert!(Rejection::new(status, "no").is_err(), "{status} accepted");
    }
    for status in [400, 403, 460, 503, 599] {
        assert_eq!(
            Rejection::new(status, "no").expect("refusal").status(),
            status
        );
    }
}
