//! The representation: digests, metadata, and the engine's hooks and events.

use std::sync::Arc;

use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::{Event, HookEvent, Hooks, Rejection, Uploads, Verdict};
use http::StatusCode;
use serde_json::Value;

use super::{app, app_on, append, call, create, problem, sha256_field, v};

#[tokio::test]
async fn digests_are_checked_and_reported() {
    let app = app();
    // Content-Digest: a mismatching body is not appended.
    let path = create(&app, &[v("8")]).await;
    let wrong = sha256_field(b"other");
    let r = append(
        &app,
        &path,
        0,
        false,
        &[("content-digest", &wrong)],
        b"data",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(&app, "HEAD", &path, &[v("8")], "").await;
    assert_eq!(r.header("upload-offset"), Some("0"));
    let right = sha256_field(b"data");
    let r = append(
        &app,
        &path,
        0,
        false,
        &[("content-digest", &right)],
        b"data",
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Unknown algorithms are ignored.
    let r = append(
        &app,
        &path,
        4,
        false,
        &[("content-digest", "md5=:AAAA:")],
        b"more",
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Want-Repr-Digest on the completing request gets the stored representation's.
    let r = append(
        &app,
        &path,
        8,
        true,
        &[("want-repr-digest", "sha-256=3, sha-512=1")],
        b"!",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("repr-digest"),
        Some(sha256_field(b"datamore!").as_str())
    );

    // Repr-Digest from the creation request is checked at completion.
    let bad = sha256_field(b"not it");
    let r = call(
        &app,
        "POST",
        "/uploads",
        &[
            v("8"),
            ("upload-complete", "?1"),
            ("repr-digest", &bad),
            ("content-length", "5"),
        ],
        "hello",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.header("upload-complete"), Some("?1"), "do not resume");
    let good = sha256_field(b"hello");
    let r = call(
        &app,
        "POST",
        "/uploads",
        &[
            v("8"),
            ("upload-complete", "?1"),
            ("repr-digest", &good),
            ("content-length", "5"),
        ],
        "hello",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_failed_representation_digest_discards_the_upload() {
    let app = app();
    let bad = sha256_field(b"not it");
    let path = create(&app, &[v("8"), ("repr-digest", &bad)]).await;
    let r = append(&app, &path, 0, true, &[], b"hello").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(&app, "HEAD", &path, &[v("8")], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metadata_comes_from_the_creation_request() {
    let app = app();
    let r = call(
        &app,
        "POST",
        "/uploads",
        &[
            v("8"),
            ("upload-complete", "?1"),
            ("content-type", "image/png"),
            (
                "content-disposition",
                "inline; filename=\"x.png\"; filename*=UTF-8''%C3%A9t%C3%A9.png",
            ),
            ("content-length", "3"),
        ],
        "png",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let file: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(file["filename"], "été.png");
    assert_eq!(file["content_type"], "image/png");
    let r = call(
        &app,
        "POST",
        "/uploads",
        &[
            v("8"),
            ("upload-complete", "?1"),
            (
                "content-disposition",
                "inline; filename=\"../../etc/passwd\"",
            ),
            ("content-length", "1"),
        ],
        "x",
    )
    .await;
    let file: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(file["filename"], "passwd");
}

/// Refuses executables, as an application's hook might.
struct NoExecutables;

#[async_trait::async_trait]
impl Hooks for NoExecutables {
    async fn pre_create(&self, event: &HookEvent) -> Verdict {
        match event.upload.metadata.text("filename") {
            Some(name) if name.ends_with(".exe") => {
                Verdict::Reject(Rejection::forbidden("no executables"))
            }
            _ => Verdict::Continue,
        }
    }
}

#[tokio::test]
async fn hooks_and_events_apply_as_for_every_front_end() {
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .hooks(Arc::new(NoExecutables))
        .build();
    let mut events = uploads.events();
    let app = app_on(uploads);
    let upload = |name: &'static str| {
        let disposition = format!("inline; filename=\"{name}\"");
        let app = app.clone();
        async move {
            call(
                &app,
                "POST",
                "/uploads",
                &[
                    v("8"),
                    ("upload-complete", "?1"),
                    ("content-disposition", &disposition),
                    ("content-length", "2"),
                ],
                "hi",
            )
            .await
        }
    };
    let r = upload("setup.exe").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(problem(&r)["detail"], "no executables");
    let r = upload("notes.txt").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(match event {
            Event::Created(_) => "created",
            Event::Progress(_) => "progress",
            Event::Finished(_) => "finished",
            Event::Terminated(_) => "terminated",
            Event::Expired(_) => "expired",
            Event::Refused(..) => "refused",
        });
    }
    assert_eq!(seen, ["created", "progress", "finished"]);
}

/// A store that counts reads, to see what a request costs.
#[derive(Debug)]
struct CountingReads(MemoryStore, std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl chunkd_core::DataStore for CountingReads {
    fn name(&self) -> &'static str {
        "counting"
    }
    async fn create(
        &self,
        info: &chunkd_core::UploadInfo,
    ) -> chunkd_core::Result<chunkd_core::StoreState> {
        self.0.create(info).await
    }
    async fn write(
        &self,
        info: &chunkd_core::UploadInfo,
        body: chunkd_core::ByteStream<'_>,
    ) -> chunkd_core::Result<chunkd_core::Written> {
        self.0.write(info, body).await
    }
    async fn finish(
        &self,
        info: &chunkd_core::UploadInfo,
    ) -> chunkd_core::Result<chunkd_core::StoreState> {
        self.0.finish(info).await
    }
    async fn read(
        &self,
        info: &chunkd_core::UploadInfo,
        range: std::ops::Range<u64>,
    ) -> chunkd_core::Result<chunkd_core::ByteStream<'static>> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.read(info, range).await
    }
    async fn delete(&self, info: &chunkd_core::UploadInfo) -> chunkd_core::Result<()> {
        self.0.delete(info).await
    }
}

/// A client asking again for a completion it lost gets the answer, but the application
/// is not told of the file a second time, and the digest checked when the upload
/// finished is not read back again.
#[tokio::test]
async fn a_repeated_completion_is_answered_not_told_or_rehashed() {
    let store = Arc::new(CountingReads(MemoryStore::new(), Default::default()));
    let uploads = Uploads::builder(store.clone(), Arc::new(MemoryState::new())).build();
    let app = app_on(uploads);
    let digest = sha256_field(b"data");
    let path = create(&app, &[v("8"), ("repr-digest", &digest)]).await;
    let done = append(&app, &path, 0, true, &[], b"data").await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert!(done.told, "the finishing request tells the application");
    let reads = store.1.load(std::sync::atomic::Ordering::SeqCst);
    assert!(reads >= 1, "the recorded digest was checked");
    for _ in 0..3 {
        let again = append(&app, &path, 4, true, &[], b"").await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.header("upload-complete"), Some("?1"));
        assert!(!again.told, "told of the same file twice");
    }
    assert_eq!(store.1.load(std::sync::atomic::Ordering::SeqCst), reads);
}
