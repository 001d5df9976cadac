//! A full disk is the client's 507 (`Error::StorageFull`), not a 500, and the upload
//! stays where it was: once space returns, the same write succeeds.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use chunkd_backends::{FsStore, SyncPolicy};
use chunkd_core::testing::{body_of, collect, pattern, sample_info};
use chunkd_core::{DataStore, Error};

/// `/dev/full` answers every write with ENOSPC, as a full disk does.
#[tokio::test]
async fn a_full_disk_is_storage_full_and_the_upload_resumes_after() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    let store = FsStore::new(&files, SyncPolicy::Always).unwrap();
    let data = pattern(100_000, 7);
    let mut info = sample_info(Some(data.len() as u64));
    info.store = store.create(&info).await.unwrap();
    let part = files.join(format!("{}.part", info.id));
    let kept = std::fs::read(&part).unwrap();
    std::fs::remove_file(&part).unwrap();
    std::os::unix::fs::symlink("/dev/full", &part).unwrap();

    let err = store.write(&info, body_of(&data, 8192)).await.err();
    assert!(matches!(err, Some(Error::StorageFull)), "{err:?}");

    // Space returns: the upload file is back, and the same write goes through.
    std::fs::remove_file(&part).unwrap();
    std::fs::write(&part, kept).unwrap();
    let written = store.write(&info, body_of(&data, 8192)).await.unwrap();
    assert_eq!(written.bytes, data.len() as u64);
    info.offset = written.bytes;
    info.store = written.store;
    info.store = store.finish(&info).await.unwrap();
    let got = collect(store.read(&info, 0..data.len() as u64).await.unwrap()).await;
    assert_eq!(got, data);
}
