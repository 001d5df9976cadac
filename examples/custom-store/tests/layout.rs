//! What the store leaves on disk: one file per append, nothing of a failed one; and
//! reads across chunk boundaries.
#![allow(clippy::expect_used)]

use std::path::Path;

use chunkd_core::DataStore;
use chunkd_core::testing::{body_of, broken_body, collect, pattern, sample_info};
use custom_store::ChunkDirStore;

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn every_append_is_a_chunk_file_and_a_failed_one_leaves_none() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = ChunkDirStore::new(tmp.path()).expect("store");
    let data = pattern(3_000, 1);
    let mut info = sample_info(Some(data.len() as u64));
    info.store = store.create(&info).await.expect("create");
    let dir = tmp.path().join(info.id.as_str());

    for part in [&data[..1_000], &data[1_000..2_500]] {
        let written = store.write(&info, body_of(part, 300)).await.expect("write");
        info.offset += written.bytes;
    }
    let failed = store.write(&info, broken_body(&data[2_500..2_700])).await;
    assert!(failed.is_err(), "a failed body fails the write");
    assert_eq!(
        names(&dir),
        ["00000000000000000000.chunk", "00000000000000001000.chunk"],
        "two appends, two chunks, nothing of the failed one"
    );

    let written = store
        .write(&info, body_of(&data[2_500..], 500))
        .await
        .expect("write");
    info.offset += written.bytes;
    store.finish(&info).await.expect("finish");
    assert_eq!(names(&dir).len(), 3);
    // A range across all three chunks.
    let got = collect(store.read(&info, 900..2_600).await.expect("read")).await;
    assert_eq!(got, &data[900..2_600]);

    store.delete(&info).await.expect("delete");
    assert!(!dir.exists(), "delete removes the upload's directory");
}
