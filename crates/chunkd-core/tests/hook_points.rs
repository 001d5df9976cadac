//! Every hook point: pre-access refuses per request, pre-create changes the id and the
//! metadata, post-events come in order, and each event names the request behind it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::testing::body_of;
use chunkd_core::{
    Access, Caller, Changes, Delivered, DeliveryError, Error, HookEvent, HookKind, Hooks, Metadata,
    NewUpload, Owner, Rejection, RequestInfo, UploadId, Uploads, Verdict, WriteRequest,
};

/// Refuses any access from a request without `x-key: open`; names uploads called
/// "chosen" `chosen-1` and tags their metadata; records every event, the delivered
/// post-events apart (they come from the outbox, in their own time).
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
    delivered: Mutex<Vec<String>>,
    all_delivered: tokio::sync::Notify,
}

fn describe(event: &HookEvent) -> String {
    let request = event
        .request
        .as_ref()
        .map(|r| format!("{} {} {}", r.protocol, r.method, r.uri))
        .unwrap_or_else(|| "-".into());
    let access = event.access.map(Access::name).unwrap_or("");
    format!(
        "{} {access} {} [{request}]",
        event.kind.name(),
        event.upload.offset
    )
    .replace("  ", " ")
}

impl Recorder {
    fn record(&self, event: &HookEvent) {
        self.seen.lock().unwrap().push(describe(event));
    }
}

#[async_trait]
impl Hooks for Recorder {
    async fn pre_access(&self, event: &HookEvent) -> Verdict {
        self.record(event);
        let open = event.request.as_ref().is_some_and(|r| {
            r.headers
                .iter()
                .any(|(n, v)| n == "x-key" && v.iter().any(|v| v == "open"))
        });
        match open {
            true => Verdict::Continue,
            false => Verdict::Reject(Rejection::forbidden("wrong key")),
        }
    }

    async fn pre_create(&self, event: &HookEvent) -> Verdict {
        self.record(event);
        if event.upload.metadata.text("filename") != Some("chosen") {
            return Verdict::Continue;
        }
        let mut metadata = Metadata::default();
        metadata.insert("filename", "renamed");
        Verdict::Change(Changes {
            id: Some("chosen-1".parse().unwrap()),
            metadata: Some(metadata),
            ..Changes::default()
        })
    }

    async fn pre_finish(&self, event: &HookEvent) -> Verdict {
        self.record(event);
        Verdict::Continue
    }

    async fn deliver(&self, event: &HookEvent, _key: &str) -> Result<Delivered, DeliveryError> {
        let mut delivered = self.delivered.lock().unwrap();
        delivered.push(describe(event));
        if delivered.len() == 4 {
            self.all_delivered.notify_one();
        }
        Ok(Delivered::Noted)
    }
}

fn request(method: &str, key: &str) -> RequestInfo {
    RequestInfo {
        protocol: "tus".into(),
        method: method.into(),
        uri: "/files/".into(),
        remote_addr: None,
        headers: vec![("x-key".into(), vec![key.into()])],
    }
}

fn caller(uploads: &Uploads, method: &str, key: &str) -> Caller {
    uploads
        .for_owner(Owner::anonymous())
        .with_request(request(method, key))
}

#[tokio::test]
async fn every_point_is_asked_or_told_with_its_request() {
    let hooks = Arc::new(Recorder::default());
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .hooks(hooks.clone())
        .build();
    let mut new = NewUpload {
        length: Some(4),
        ..Default::default()
    };
    new.metadata.insert("filename", "chosen");
    let created = caller(&uploads, "POST", "open")
        .create(new)
        .await
        .expect("create");
    assert_eq!(created.id, "chosen-1".parse::<UploadId>().unwrap());
    assert_eq!(created.metadata.text("filename"), Some("renamed"));

    let refused = caller(&uploads, "HEAD", "wrong").info(&created.id).await;
    assert!(
        matches!(&refused, Err(Error::Rejected(r)) if r.status() == 403),
        "{refused:?}"
    );
    let refused = caller(&uploads, "PATCH", "wrong")
        .write(&created.id, WriteRequest::default(), body_of(b"abcd", 2))
        .await;
    assert!(matches!(refused, Err(Error::Rejected(_))), "{refused:?}");
    let info = caller(&uploads, "HEAD", "open")
        .info(&created.id)
        .await
        .expect("info");
    assert_eq!(info.offset, 0, "a refused write stores nothing");

    let written = caller(&uploads, "PATCH", "open")
        .write(&created.id, WriteRequest::default(), body_of(b"abcd", 2))
        .await
        .expect("write");
    assert!(written.info.is_finished());
    caller(&uploads, "DELETE", "open")
        .terminate(&created.id)
        .await
        .expect("terminate");

    let seen = hooks.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "pre-create 0 [tus POST /files/]",
            "pre-access info 0 [tus HEAD /files/]",
            "pre-access write 0 [tus PATCH /files/]",
            "pre-access info 0 [tus HEAD /files/]",
            "pre-access write 0 [tus PATCH /files/]",
            "pre-finish 4 [tus PATCH /files/]",
            "pre-access terminate 4 [tus DELETE /files/]",
        ]
    );
    // Post-events were saved with each change, and now go out in order.
    let deliverer = tokio::spawn({
        let uploads = uploads.clone();
        async move { uploads.deliver_events().await }
    });
    hooks.all_delivered.notified().await;
    uploads.shutdown();
    deliverer.await.unwrap();
    assert_eq!(
        *hooks.delivered.lock().unwrap(),
        [
            "post-create 0 [tus POST /files/]",
            "post-receive 4 [tus PATCH /files/]",
            "post-finish 4 [tus PATCH /files/]",
            "post-terminate 4 [tus DELETE /files/]",
        ]
    );
    // The kinds a transport names are tusd's.
    assert_eq!(HookKind::PostFinish.name(), "post-finish");
    assert_eq!("pre-access".parse::<HookKind>(), Ok(HookKind::PreAccess));
}

/// Gives every upload its own limits: at most 3 bytes, and an hour's idle expiry.
struct Tight;

#[async_trait]
impl Hooks for Tight {
    async fn pre_create(&self, _event: &HookEvent) -> Verdict {
        Verdict::Change(Changes {
            max_size: Some(3),
            expire_after: Some(std::time::Duration::from_secs(3600)),
            ..Changes::default()
        })
    }
}

#[tokio::test]
async fn pre_create_sets_an_uploads_own_size_limit_and_expiry() {
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .hooks(Arc::new(Tight))
        .build();
    let caller = uploads.for_owner(Owner::anonymous());
    let declared = caller
        .create(NewUpload {
            length: Some(4),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(declared, Err(Error::TooLarge { max: 3 })),
        "{declared:?}"
    );
    let deferred = caller.create(NewUpload::default()).await.expect("create");
    let expires = deferred.expires_at.expect("an expiry");
    let hour = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    assert!(expires > hour - std::time::Duration::from_secs(60) && expires <= hour);
    let written = caller
        .write(&deferred.id, WriteRequest::default(), body_of(b"abcd", 2))
        .await;
    assert!(
        matches!(written, Err(Error::TooLarge { max: 3 })),
        "{written:?}"
    );
    let stored = caller.info(&deferred.id).await.expect("info");
    assert!(stored.offset <= 3, "{}", stored.offset);
}
