//! A writer that lost its lock may still have an UploadPart in flight when the next
//! holder, on another instance, continues the upload. Whenever that part lands, it can
//! never replace one of the new holder's: the upload completes with the new holder's
//! bytes. Against the test S3 service (`scripts/test-all.sh` starts it).
#![cfg(feature = "s3")]
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use chunkd_backends::s3::MIN_PART_SIZE;
use chunkd_backends::{S3Store, SqliteState, SyncPolicy};
use chunkd_core::testing::{body_of, pattern, sample_info};
use chunkd_core::{DataStore, NewUpload, Owner, UploadInfo, Uploads};
use futures::StreamExt;
use support::{fresh_store, read_all, sha256, store_on};

/// Appends `piece` as the engine does: a claim the store returns is saved, and the
/// store asked again.
async fn append(store: &S3Store, info: &mut UploadInfo, piece: &[u8]) {
    for _ in 0..2 {
        let written = store
            .write(info, body_of(piece, 65_536))
            .await
            .expect("write");
        info.store = written.store;
        if written.bytes > 0 {
            assert_eq!(written.bytes, piece.len() as u64);
            info.offset += written.bytes;
            return;
        }
    }
    panic!("the store claimed twice");
}

#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn a_stale_writers_late_part_never_replaces_the_new_holders() {
    let part = MIN_PART_SIZE as usize;
    let data = pattern(3 * part + 500, 41);
    let old = fresh_store().await;
    let mut info = sample_info(Some(data.len() as u64));
    info.store = old.create(&info).await.expect("create");
    append(&old, &mut info, &data[..part]).await;
    // Where the old holder stood when its lease ran out.
    let seen_by_old = info.clone();

    // The new holder, another process, continues from that record and writes part
    // after part.
    let new = store_on(old.bucket());
    append(&new, &mut info, &data[part..3 * part]).await;
    // Then the old holder's part lands (other bytes, as a different client's may be),
    // and a tail of its own; its record is never saved.
    let stale = old
        .write(&seen_by_old, body_of(&pattern(part + 7, 99), 65_536))
        .await
        .expect("the stale write reaches the service");
    assert_eq!(stale.bytes, part as u64 + 7);

    append(&new, &mut info, &data[3 * part..]).await;
    info.store = new.finish(&info).await.expect("finish");
    let stored = read_all(&new, &info, 0..data.len() as u64).await;
    assert_eq!(sha256(&stored), sha256(&data));
}

#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn an_upload_moves_between_instances_through_the_engine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = Arc::new(
        SqliteState::open(dir.path().join("state.sqlite3"), SyncPolicy::Never).expect("sqlite"),
    );
    let first = Arc::new(fresh_store().await);
    let second = Arc::new(store_on(first.bucket()));
    let engine = |store: &Arc<S3Store>| {
        Uploads::builder(store.clone(), state.clone())
            .build()
            .for_owner(Owner::anonymous())
    };
    let (a, b) = (engine(&first), engine(&second));
    let part = MIN_PART_SIZE as usize;
    let data = pattern(4 * part + 321, 42);
    let info = a
        .create(NewUpload {
            length: Some(data.len() as u64),
            ..Default::default()
        })
        .await
        .expect("create");
    // Requests alternate between the instances, each cut where parts do not end.
    let cuts = [0, part / 2, 2 * part + 3, 3 * part, data.len()];
    for (i, w) in cuts.windows(2).enumerate() {
        let caller = if i % 2 == 0 { &a } else { &b };
        let at = chunkd_core::WriteRequest {
            offset: w[0] as u64,
            ..Default::default()
        };
        let outcome = caller
            .write(&info.id, at, body_of(&data[w[0]..w[1]], 65_536))
            .await
            .expect("write");
        assert_eq!(outcome.info.offset, w[1] as u64);
    }
    let (_, mut stream) = b.read(&info.id, None).await.expect("read");
    let mut stored = Vec::new();
    while let Some(chunk) = stream.next().await {
        stored.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(sha256(&stored), sha256(&data));
}
