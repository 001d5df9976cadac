//! A pre-create hook chooses where an upload's bytes go: a path under the file store's
//! directory, a key under the S3 prefix. Unsafe or taken places fail the creation and
//! are never followed. The S3 cases need the test service (`scripts/test-all.sh`).
#![cfg(all(feature = "sqlite", feature = "s3"))]
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chunkd_backends::{FsStore, SyncPolicy};
use chunkd_core::memory::MemoryState;
use chunkd_core::testing::{body_of, collect};
use chunkd_core::{
    Changes, DataStore, Error, HookEvent, Hooks, Location, NewUpload, Owner, Placement, UploadInfo,
    Uploads, Verdict, WriteRequest,
};
use support::{fresh_store, sha256};

/// Places each upload where its metadata says (`path`, `key`, `bucket`).
struct PlaceByMetadata;

#[async_trait]
impl Hooks for PlaceByMetadata {
    async fn pre_create(&self, event: &HookEvent) -> Verdict {
        let meta = &event.upload.metadata;
        let placement = Placement {
            path: meta.text("path").map(str::to_owned),
            key: meta.text("key").map(str::to_owned),
            bucket: meta.text("bucket").map(str::to_owned),
        };
        Verdict::Change(Changes {
            placement: Some(placement),
            ..Changes::default()
        })
    }
}

fn engine(store: Arc<dyn DataStore>) -> Uploads {
    Uploads::builder(store, Arc::new(MemoryState::new()))
        .hooks(Arc::new(PlaceByMetadata))
        .build()
}

async fn upload(
    uploads: &Uploads,
    place: &[(&str, &str)],
    data: &[u8],
) -> chunkd_core::Result<UploadInfo> {
    let caller = uploads.for_owner(Owner::anonymous());
    let mut new = NewUpload {
        length: Some(data.len() as u64),
        ..Default::default()
    };
    for (k, v) in place {
        new.metadata.insert(*k, *v);
    }
    let info = caller.create(new).await?;
    let written = caller
        .write(&info.id, WriteRequest::default(), body_of(data, 7))
        .await?;
    assert!(written.info.is_finished());
    let (_, stream) = caller.read(&info.id, None).await?;
    assert_eq!(sha256(&collect(stream).await), sha256(data));
    Ok(written.info)
}

fn refused(result: chunkd_core::Result<UploadInfo>) {
    assert!(
        matches!(result, Err(Error::Backend { .. })),
        "an unsafe place was followed: {result:?}"
    );
}

#[tokio::test]
async fn the_file_store_keeps_an_upload_at_the_path_a_hook_chose() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("files");
    let uploads = engine(Arc::new(FsStore::new(&root, SyncPolicy::Always).unwrap()));
    let data = b"placed bytes, kept where the application wants them";
    let info = upload(&uploads, &[("path", "alice/2026/report.bin")], data)
        .await
        .expect("placed upload");
    let placed = root.join("alice/2026/report.bin");
    assert_eq!(sha256(&std::fs::read(&placed).unwrap()), sha256(data));
    assert!(!root.join(info.id.as_str()).exists());
    let store = FsStore::new(&root, SyncPolicy::Always).unwrap();
    assert_eq!(store.location(&info), Some(Location::File(placed.clone())));

    // Taken: the second upload is refused and the first's bytes stay.
    refused(upload(&uploads, &[("path", "alice/2026/report.bin")], b"other").await);
    assert_eq!(sha256(&std::fs::read(&placed).unwrap()), sha256(data));
    // Deleting the upload removes its file.
    uploads
        .for_owner(Owner::anonymous())
        .terminate(&info.id)
        .await
        .expect("terminate");
    assert!(!placed.exists());
}

#[tokio::test]
async fn the_file_store_refuses_places_outside_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("files");
    let uploads = engine(Arc::new(FsStore::new(&root, SyncPolicy::Never).unwrap()));
    for path in [
        "../escape",
        "/tmp/abs",
        "a/../../escape",
        "a//b",
        "a/./b",
        "x.part",
        "dir/",
        "",
    ] {
        refused(upload(&uploads, &[("path", path)], b"x").await);
    }
    refused(upload(&uploads, &[("key", "k")], b"x").await);
    assert!(!dir.path().join("escape").exists());
    let left: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
    assert!(left.is_empty(), "refused places left files: {left:?}");
}

fn object_key(store: &dyn DataStore, info: &UploadInfo) -> String {
    match store.location(info) {
        Some(Location::Object { key, .. }) => key,
        other => panic!("no object location: {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs the S3 test service: scripts/test-all.sh starts it"]
async fn the_s3_store_keeps_an_upload_at_the_key_a_hook_chose() {
    let s3 = Arc::new(fresh_store().await);
    let bucket = s3.bucket().to_owned();
    let uploads = engine(s3.clone());
    let data = b"an object where the application wants it";
    let info = upload(
        &uploads,
        &[("key", "uploads/alice/a.bin"), ("bucket", &bucket)],
        data,
    )
    .await
    .expect("placed upload");
    assert_eq!(object_key(s3.as_ref(), &info), "uploads/alice/a.bin");
    let dir = Path::new(&support::env("CHUNKD_TEST_S3_DIR")).join(&bucket);
    assert_eq!(
        sha256(&std::fs::read(dir.join("uploads/alice/a.bin")).unwrap()),
        sha256(data)
    );
    // A prefix: the id is appended.
    let info = upload(&uploads, &[("key", "uploads/bob/")], data)
        .await
        .expect("prefixed upload");
    assert_eq!(
        object_key(s3.as_ref(), &info),
        format!("uploads/bob/{}", info.id)
    );

    refused(upload(&uploads, &[("key", "uploads/alice/a.bin")], b"again").await);
    for key in [
        "elsewhere/a.bin",
        "uploads/../x",
        "uploads//x",
        "/uploads/x",
    ] {
        refused(upload(&uploads, &[("key", key)], b"x").await);
    }
    refused(
        upload(
            &uploads,
            &[("key", "uploads/c.bin"), ("bucket", "another")],
            b"x",
        )
        .await,
    );
    refused(upload(&uploads, &[("path", "a.bin")], b"x").await);
}

/// A bucket among the configured ones: the object is kept, read, resumed on and removed
/// there, while staging objects stay in the main bucket.
#[tokio::test]
#[ignore = "needs the S3 test service: scripts/test-all.sh starts it"]
async fn the_s3_store_keeps_an_upload_in_another_configured_bucket() {
    let main = format!("m{}", chunkd_core::UploadId::generate());
    let other = format!("o{}", chunkd_core::UploadId::generate());
    let config = chunkd_backends::S3Config {
        other_buckets: vec![other.clone()],
        ..support::s3_config(&main)
    };
    let s3 = Arc::new(chunkd_backends::S3Store::new(config).expect("store"));
    s3.ensure_bucket().await.expect("both buckets");
    let uploads = engine(s3.clone());
    let caller = uploads.for_owner(Owner::anonymous());
    // Past one part, sent in two requests: a tail is staged in between.
    let data: Vec<u8> = (0..6_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut new = NewUpload {
        length: Some(data.len() as u64),
        ..Default::default()
    };
    new.metadata.insert("key", "uploads/team/");
    new.metadata.insert("bucket", other.as_str());
    let info = caller
        .create(new)
        .await
        .expect("placed in the other bucket");
    let first = caller
        .write(
            &info.id,
            WriteRequest::default(),
            body_of(&data[..1_000_000], 65536),
        )
        .await
        .expect("first request");
    assert!(!first.info.is_finished());
    let done = caller
        .write(
            &info.id,
            WriteRequest {
                offset: 1_000_000,
                ..WriteRequest::default()
            },
            body_of(&data[1_000_000..], 65536),
        )
        .await
        .expect("second request");
    assert!(done.info.is_finished());
    match s3.location(&done.info) {
        Some(Location::Object { bucket, key }) => {
            assert_eq!(
                (bucket.as_str(), key),
                (other.as_str(), format!("uploads/team/{}", info.id))
            );
        }
        other => panic!("no object location: {other:?}"),
    }
    let root = Path::new(&support::env("CHUNKD_TEST_S3_DIR")).to_owned();
    let stored = root.join(&other).join(format!("uploads/team/{}", info.id));
    assert_eq!(sha256(&std::fs::read(&stored).unwrap()), sha256(&data));
    let (_, stream) = caller.read(&info.id, None).await.expect("read");
    assert_eq!(sha256(&collect(stream).await), sha256(&data));
    let staged: Vec<_> = walk(&root.join(&main));
    assert!(staged.is_empty(), "staging objects left: {staged:?}");
    caller.terminate(&info.id).await.expect("terminate");
    assert!(!stored.exists(), "the object is removed from its bucket");
}

/// The files under `dir`, recursively (s3s-fs keeps its own bookkeeping out of them).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
