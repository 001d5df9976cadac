//! A hook's refusal, as every front end answers it: the hook's status, its message in
//! the protocol's own body, its extra headers, and the protocol's own headers kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::{HookEvent, Hooks, Rejection, Uploads, Verdict};

use crate::test_support::{creating_requests, send};

/// Refuses every creation: slow down, come back in 30 s; also tries headers it may not set.
struct SlowDown;

#[async_trait::async_trait]
impl Hooks for SlowDown {
    async fn pre_create(&self, _event: &HookEvent) -> Verdict {
        let (rejection, left_out) = Rejection::new(429, "quota reached for today")
            .unwrap()
            .with_headers([
                ("Retry-After".to_owned(), "30".to_owned()),
                ("Content-Type".to_owned(), "text/html".to_owned()),
                ("Tus-Resumable".to_owned(), "0.2.2".to_owned()),
            ]);
        assert_eq!(left_out, ["Content-Type", "Tus-Resumable"]);
        Verdict::Reject(rejection)
    }
}

#[tokio::test]
async fn a_hooks_refusal_keeps_its_status_message_and_headers_in_every_protocol() {
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .hooks(Arc::new(SlowDown))
        .build();
    let app = crate::test_support::every_front_end(&uploads);
    for creation in creating_requests() {
        let protocol = creation.0;
        let r = send(&app, "POST", creation).await;
        assert_eq!(r.status.as_u16(), 429, "{protocol}: {:?}", r.body);
        assert_eq!(r.header("retry-after"), Some("30"), "{protocol}");
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            body.contains("quota reached for today"),
            "{protocol}: {body}"
        );
        assert_ne!(r.header("content-type"), Some("text/html"), "{protocol}");
        if protocol == "tus" {
            assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
        }
    }
}
