//! A full disk, as every front end answers it: 507 in the protocol's own terms, so a
//! client knows to retry later rather than give up on a server error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::Range;
use std::sync::Arc;

use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::{ByteStream, DataStore, Error, StoreState, UploadInfo, Uploads, Written};
use http::StatusCode;

use crate::test_support::send;

/// A store whose disk is full: uploads can be created, no byte can be written.
#[derive(Debug)]
struct FullStore(MemoryStore);

#[async_trait::async_trait]
impl DataStore for FullStore {
    fn name(&self) -> &'static str {
        "full"
    }
    async fn create(&self, info: &UploadInfo) -> chunkd_core::Result<StoreState> {
        self.0.create(info).await
    }
    async fn write(&self, _: &UploadInfo, _: ByteStream<'_>) -> chunkd_core::Result<Written> {
        Err(Error::StorageFull)
    }
    async fn finish(&self, info: &UploadInfo) -> chunkd_core::Result<StoreState> {
        self.0.finish(info).await
    }
    async fn read(
        &self,
        info: &UploadInfo,
        range: Range<u64>,
    ) -> chunkd_core::Result<ByteStream<'static>> {
        self.0.read(info, range).await
    }
    async fn delete(&self, info: &UploadInfo) -> chunkd_core::Result<()> {
        self.0.delete(info).await
    }
}

#[tokio::test]
async fn a_full_disk_is_507_in_every_protocol() {
    let store = Arc::new(FullStore(MemoryStore::new()));
    let uploads = Uploads::builder(store, Arc::new(MemoryState::new())).build();
    let app = crate::test_support::every_front_end(&uploads);
    for creation in crate::test_support::creating_requests() {
        let protocol = creation.0;
        let r = send(&app, "POST", creation).await;
        assert_eq!(
            r.status,
            StatusCode::INSUFFICIENT_STORAGE,
            "{protocol}: {:?}",
            r.body
        );
        if protocol == "tus" {
            assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
        }
        if protocol == "ietf" {
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
        }
    }
}
