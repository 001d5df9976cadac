//! A store may return once without reading its body, to have bookkeeping saved before
//! it writes (the S3 store claims part numbers so); the engine saves it and calls again.
//! A store that keeps doing so is an error, not a request that never ends.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::testing::{body_of, pattern};
use chunkd_core::{
    ByteStream, Caller, DataStore, NewUpload, Owner, Result, StoreState, UploadInfo, Uploads,
    WriteRequest, Written,
};
use futures::StreamExt;

/// A memory store whose writes first claim, each time with news: once per upload, or
/// (`forever`) on every call.
#[derive(Debug)]
struct Claiming {
    inner: MemoryStore,
    forever: bool,
}

#[async_trait]
impl DataStore for Claiming {
    fn name(&self) -> &'static str {
        "claiming"
    }
    async fn create(&self, info: &UploadInfo) -> Result<StoreState> {
        self.inner.create(info).await
    }
    async fn write(&self, info: &UploadInfo, body: ByteStream<'_>) -> Result<Written> {
        let claims: u32 = info.store.get("claims").map_or(0, |c| c.parse().unwrap());
        if claims == 0 || self.forever {
            let mut store = info.store.clone();
            store.insert("claims".into(), (claims + 1).to_string());
            return Ok(Written { bytes: 0, store });
        }
        let written = self.inner.write(info, body).await?;
        let mut store = written.store;
        store.insert("claims".into(), claims.to_string());
        Ok(Written {
            bytes: written.bytes,
            store,
        })
    }
    async fn finish(&self, info: &UploadInfo) -> Result<StoreState> {
        self.inner.finish(info).await
    }
    async fn read(&self, info: &UploadInfo, range: Range<u64>) -> Result<ByteStream<'static>> {
        self.inner.read(info, range).await
    }
    async fn delete(&self, info: &UploadInfo) -> Result<()> {
        self.inner.delete(info).await
    }
}

fn engine(forever: bool) -> Caller {
    let store = Claiming {
        inner: MemoryStore::new(),
        forever,
    };
    Uploads::builder(Arc::new(store), Arc::new(MemoryState::new()))
        .build()
        .for_owner(Owner::anonymous())
}

async fn upload(uploads: &Caller, data: &[u8]) -> Result<UploadInfo> {
    let info = uploads
        .create(NewUpload {
            length: Some(data.len() as u64),
            ..Default::default()
        })
        .await?;
    uploads
        .write(&info.id, WriteRequest::default(), body_of(data, 1000))
        .await
        .map(|outcome| outcome.info)
}

#[tokio::test]
async fn a_claim_is_saved_and_the_write_goes_on() {
    let uploads = engine(false);
    let data = pattern(10_000, 61);
    let info = upload(&uploads, &data).await.expect("upload");
    assert!(info.is_finished());
    assert_eq!(info.store["claims"], "1", "claimed once, and saved");
    let (_, mut stream) = uploads.read(&info.id, None).await.expect("read");
    let mut stored = Vec::new();
    while let Some(chunk) = stream.next().await {
        stored.extend_from_slice(&chunk.expect("chunk"));
    }
    assert!(stored == data, "stored bytes differ");
}

#[tokio::test]
async fn a_store_that_only_claims_is_an_error() {
    let uploads = engine(true);
    let err = upload(&uploads, &pattern(100, 62))
        .await
        .expect_err("a store that never reads");
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(
        source.as_deref(),
        Some("the store returned without reading the body"),
        "{err:?}"
    );
}
