//! A pre-finish hook's reply, as every front end applies it to the request that
//! completed the upload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::{HookEvent, Hooks, Reply, Uploads, Verdict};

use axum::body::Body;

use crate::test_support::{call, creating_requests, send};

const PROCESSED: &str = r#"{"thumbnail":"/thumbs/f.png"}"#;

/// Answers every finish with where the processed file is.
struct Processed;

#[async_trait::async_trait]
impl Hooks for Processed {
    async fn pre_finish(&self, _event: &HookEvent) -> Verdict {
        let (reply, left_out) = Reply::with_headers([
            ("X-Processed".to_owned(), "yes".to_owned()),
            ("Tus-Resumable".to_owned(), "0.2.2".to_owned()),
        ]);
        assert_eq!(left_out, ["Tus-Resumable"]);
        Verdict::Reply(reply.with_body(PROCESSED.to_owned(), Some("application/json".to_owned())))
    }
}

#[tokio::test]
async fn a_pre_finish_reply_shapes_the_completing_answer_in_every_protocol() {
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .hooks(Arc::new(Processed))
        .build();
    let app = crate::test_support::every_front_end(&uploads);
    let mut seen = Vec::new();
    for creation in creating_requests() {
        let protocol = creation.0;
        let r = send(&app, "POST", creation).await;
        assert!(r.status.is_success(), "{protocol}: {:?}", r.status);
        assert_eq!(r.header("x-processed"), Some("yes"), "{protocol}");
        let replaced = r.body == PROCESSED.as_bytes();
        if replaced {
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
        if protocol == "tus" {
            assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
        }
        seen.push(format!("{protocol} {} {replaced}", r.status.as_u16()));
    }
    assert_eq!(
        seen,
        [
            "tus 201 false",
            "ietf 201 true",
            "resumable 200 true",
            "content-range 200 true",
            "form 200 true",
        ]
    );

    // A request that does not complete its upload is answered as always.
    let created = call(
        &app,
        "POST",
        "/files/",
        &[("tus-resumable", "1.0.0"), ("upload-length", "8")],
        Body::empty(),
    )
    .await;
    assert_eq!(created.header("x-processed"), None);
    let path = created.location_path();
    let patch = |offset: &'static str| {
        [
            ("tus-resumable", "1.0.0"),
            ("upload-offset", offset),
            ("content-type", "application/offset+octet-stream"),
        ]
    };
    let half = call(&app, "PATCH", &path, &patch("0"), "abcd").await;
    assert_eq!(
        (half.status.as_u16(), half.header("x-processed")),
        (204, None)
    );
    let last = call(&app, "PATCH", &path, &patch("4"), "efgh").await;
    assert_eq!(
        (last.status.as_u16(), last.header("x-processed")),
        (204, Some("yes"))
    );
    assert!(last.body.is_empty());
}
