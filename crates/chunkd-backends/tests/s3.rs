//! The S3 store passes the public conformance suites against a real S3 service that
//! checks signatures and the 5 MiB part minimum (s3s-fs, started by
//! `scripts/test-all.sh`; `CHUNKD_TEST_S3_*` name it), and streams large bodies as parts.
#![cfg(feature = "s3")]
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use bytes::Bytes;
use chunkd_backends::s3::MIN_PART_SIZE;
use chunkd_backends::{S3Store, SqliteState, SyncPolicy};
use chunkd_core::DataStore;
use chunkd_core::error::BoxError;
use chunkd_core::memory::MemoryState;
use chunkd_core::testing::direct::{Browser, DirectEngine};
use chunkd_core::testing::engine::EngineParts;
use chunkd_core::testing::{Fixture, body_of, pattern, sample_info};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use support::{env, fresh_store, read_all, sha256, store_on};

async fn s3() -> Fixture<dyn DataStore> {
    Fixture::new(Arc::new(fresh_store().await) as Arc<dyn DataStore>)
}

async fn s3_sqlite() -> Fixture<EngineParts> {
    let dir = tempfile::tempdir().expect("temp dir");
    let parts = EngineParts {
        store: Arc::new(fresh_store().await),
        state: Arc::new(
            SqliteState::open(dir.path().join("state.sqlite3"), SyncPolicy::Never).expect("sqlite"),
        ),
    };
    Fixture::new(Arc::new(parts)).keeping(dir)
}

chunkd_core::data_store_suite!(s3, concat: yes, direct: yes, #[ignore = "needs an S3 service: scripts/test-all.sh starts one"]);
chunkd_core::engine_suite!(s3_sqlite, #[ignore = "needs an S3 service: scripts/test-all.sh starts one"]);
chunkd_core::direct_parts_suite!(s3_direct, #[ignore = "needs an S3 service: scripts/test-all.sh starts one"]);

/// The browser's side of a direct upload: a plain PUT to the presigned URL.
struct HttpBrowser(Client<HttpConnector, Full<Bytes>>);

#[async_trait::async_trait]
impl Browser for HttpBrowser {
    async fn put(&self, url: &str, body: Bytes) -> Result<String, BoxError> {
        let request = http::Request::put(url).body(Full::new(body))?;
        let answer = self.0.request(request).await?;
        let status = answer.status();
        let etag = answer
            .headers()
            .get(http::header::ETAG)
            .map(|v| v.to_str().map(str::to_owned));
        let body = answer.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&body)).into());
        }
        Ok(etag.ok_or("no ETag in the answer")??)
    }
}

async fn s3_direct() -> Fixture<DirectEngine> {
    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    Fixture::new(Arc::new(DirectEngine {
        store: Arc::new(fresh_store().await),
        state: Arc::new(MemoryState::new()),
        browser: Arc::new(HttpBrowser(client)),
    }))
}

#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn large_appends_become_parts_and_tails_carry_over() {
    let store = fresh_store().await;
    let part = MIN_PART_SIZE as usize;
    let data = pattern(2 * part + part / 2 + 17, 7);
    let mut info = sample_info(Some(data.len() as u64));
    info.store = store.create(&info).await.expect("create");
    // Three appends cut at places that are not part boundaries.
    for piece in [
        &data[..part / 3],
        &data[part / 3..part + part / 2],
        &data[part + part / 2..],
    ] {
        let written = store
            .write(&info, body_of(piece, 100_000))
            .await
            .expect("write");
        assert_eq!(written.bytes, piece.len() as u64);
        info.offset += written.bytes;
        info.store = written.store;
    }
    assert_eq!(
        info.store["s3.parts"].split(',').count(),
        2,
        "two whole parts so far"
    );
    info.store = store.finish(&info).await.expect("finish");
    assert_eq!(read_all(&store, &info, 0..data.len() as u64).await, data);
    let mid = part as u64 - 10..part as u64 + 10;
    assert_eq!(
        read_all(&store, &info, mid.clone()).await,
        data[mid.start as usize..mid.end as usize]
    );
}

#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn an_upload_resumes_on_a_new_store_from_its_record() {
    let part = MIN_PART_SIZE as usize;
    let data = pattern(part + 1000, 9);
    let first = fresh_store().await;
    let mut info = sample_info(Some(data.len() as u64));
    info.store = first.create(&info).await.expect("create");
    let written = first
        .write(&info, body_of(&data[..part + 10], 65_536))
        .await
        .expect("write");
    info.offset += written.bytes;
    info.store = written.store;
    // Another process (same bucket, nothing shared in memory) continues from the record,
    // once it has claimed its part numbers.
    let second = store_on(first.bucket());
    let written = second
        .write(&info, body_of(&data[part + 10..], 4096))
        .await
        .expect("claim");
    assert_eq!(written.bytes, 0, "the first call only claims");
    info.store = written.store;
    let written = second
        .write(&info, body_of(&data[part + 10..], 4096))
        .await
        .expect("write");
    info.offset += written.bytes;
    info.store = written.store;
    info.store = second.finish(&info).await.expect("finish");
    assert_eq!(read_all(&second, &info, 0..data.len() as u64).await, data);
    second.delete(&info).await.expect("delete");
    second.delete(&info).await.expect("delete again");
}

/// The tail objects of `info` as s3s-fs keeps them: plain files
/// `<root>/<bucket>/<key>.tail.*` (and `<key>.tail` from before tails were named).
fn tail_objects(store: &S3Store, info: &chunkd_core::UploadInfo) -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(&env("CHUNKD_TEST_S3_DIR"))
        .join(store.bucket())
        .join("uploads");
    let prefix = format!("{}.tail", info.id);
    std::fs::read_dir(&dir)
        .expect("bucket dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn no_staging_object_outlives_its_upload() {
    let store = fresh_store().await;
    let part = MIN_PART_SIZE as usize;
    let data = pattern(part, 11);
    let mut info = sample_info(Some(data.len() as u64));
    info.store = store.create(&info).await.expect("create");
    // The first append leaves a tail; the second ends on the part boundary, so the
    // upload has no tail any more, but the staging object is still there.
    for piece in [&data[..part / 2], &data[part / 2..]] {
        let written = store
            .write(&info, body_of(piece, 65_536))
            .await
            .expect("write");
        info.offset += written.bytes;
        info.store = written.store;
    }
    assert_eq!(
        tail_objects(&store, &info).len(),
        1,
        "the first append's staging object, and only it"
    );
    info.store = store.finish(&info).await.expect("finish");
    assert!(
        tail_objects(&store, &info).is_empty(),
        "no staging object once the upload is finished"
    );
    assert_eq!(read_all(&store, &info, 0..data.len() as u64).await, data);
}

/// A finish cut off after the multipart upload was completed but before the tail was
/// deleted (the record still says unfinished): the retry finds the tail and a multipart
/// upload the service no longer knows, and finishes with the bytes intact.
#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn a_finish_cut_off_before_the_tail_was_deleted_finishes_again() {
    let store = fresh_store().await;
    let data = pattern(MIN_PART_SIZE as usize + 20_000, 12);
    let mut info = sample_info(Some(data.len() as u64));
    info.store = store.create(&info).await.expect("create");
    let written = store
        .write(&info, body_of(&data, 65_536))
        .await
        .expect("write");
    info.offset = written.bytes;
    info.store = written.store;
    let [tail] = tail_objects(&store, &info)
        .try_into()
        .expect("one tail object");
    let kept = std::fs::read(&tail).expect("tail bytes");
    store.finish(&info).await.expect("finish");
    // What the crash leaves: the completed object, and the tail it did not delete.
    std::fs::write(&tail, &kept).expect("put the tail back");
    let finished = store.finish(&info).await.expect("finish again");
    assert!(
        tail_objects(&store, &info).is_empty(),
        "the tail is deleted by the retry"
    );
    info.store = finished;
    assert!(read_all(&store, &info, 0..data.len() as u64).await == data);
}

/// A write killed between putting its tail and saving the record leaves a tail object no
/// record names. Finishing (and deleting) the upload still removes it.
#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn a_tail_no_record_names_is_removed_with_its_upload() {
    let store = fresh_store().await;
    for finish in [true, false] {
        let data = pattern(30_000, 13);
        let mut info = sample_info(Some(data.len() as u64));
        info.store = store.create(&info).await.expect("create");
        let recorded = info.clone();
        // The lost write: its tail is put, its record never saved.
        store
            .write(&info, body_of(&data[..10_000], 4096))
            .await
            .expect("lost write");
        let written = store
            .write(&recorded, body_of(&data, 4096))
            .await
            .expect("write");
        info.offset = written.bytes;
        info.store = written.store;
        if finish {
            info.store = store.finish(&info).await.expect("finish");
            info.status = chunkd_core::Status::Finished;
            assert!(read_all(&store, &info, 0..data.len() as u64).await == data);
        } else {
            store.delete(&info).await.expect("delete");
        }
        let left = tail_objects(&store, &info);
        assert!(left.is_empty(), "finish {finish}: tails left: {left:?}");
    }
}

/// A finished upload holding `data`, as a partial of a concatenation is.
async fn finished(store: &S3Store, data: &[u8]) -> chunkd_core::UploadInfo {
    let mut info = sample_info(Some(data.len() as u64));
    info.store = store.create(&info).await.expect("create");
    let written = store
        .write(&info, body_of(data, 65_536))
        .await
        .expect("write");
    info.offset = written.bytes;
    info.store = written.store;
    info.store = store.finish(&info).await.expect("finish");
    info.status = chunkd_core::Status::Finished;
    info
}

/// Joins `parts` as the engine does: the store's own concatenation, then finish.
async fn concatenated(
    store: &S3Store,
    parts: &[chunkd_core::UploadInfo],
) -> Option<chunkd_core::UploadInfo> {
    let total = parts.iter().map(|p| p.offset).sum();
    let mut target = sample_info(Some(total));
    target.store = store.create(&target).await.expect("create final");
    let native = store.concat().expect("S3 concatenates");
    target.store = native.concat(&target, parts).await.expect("concat")?;
    target.offset = total;
    target.store = store.finish(&target).await.expect("finish final");
    Some(target)
}

#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn concatenation_copies_partials_inside_s3() {
    let store = fresh_store().await;
    let part = MIN_PART_SIZE as usize;
    // Sizes that appends would cut differently (5 MiB parts): 6 + 6 + 0.5 MiB joined by
    // copying is three parts; streamed it would be 5 + 5 + 2.5.
    let data = [
        pattern(part + part / 5, 31),
        pattern(part + part / 5, 32),
        pattern(part / 10, 33),
    ];
    let mut parts = Vec::new();
    for d in &data {
        parts.push(finished(&store, d).await);
    }
    let target = concatenated(&store, &parts).await.expect("copied in S3");
    assert_eq!(target.store["s3.parts"].split(',').count(), 3);
    let expected = data.concat();
    assert_eq!(
        target.store["s3.parts_bytes"],
        expected.len().to_string(),
        "every byte is in copied parts"
    );
    let stored = read_all(&store, &target, 0..expected.len() as u64).await;
    assert_eq!(sha256(&stored), sha256(&expected));
    // The partials are untouched.
    assert_eq!(
        read_all(&store, &parts[1], 0..data[1].len() as u64).await,
        data[1]
    );
}

#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn concatenation_of_a_small_partial_before_the_end_is_left_to_streaming() {
    let store = fresh_store().await;
    let part = MIN_PART_SIZE as usize;
    let parts = [
        finished(&store, &pattern(1000, 34)).await,
        finished(&store, &pattern(part, 35)).await,
    ];
    assert!(
        concatenated(&store, &parts).await.is_none(),
        "S3 cannot copy a 1000-byte part that is not the last"
    );
}
