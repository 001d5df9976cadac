//! Engine cases of an upload's end: gc of what nobody finishes or joins, and the repair
//! of a crash between the store's finish and the record's.

use std::sync::Arc;
use std::time::Duration;

use super::body_of;
use super::engine::{EngineParts, at, default_engine, engine, partial, sized, stored, write};
use super::pattern;
use crate::engine::{Limits, Uploads};
use crate::error::Error;
use crate::upload::UploadInfo;

/// What the engine had done when a process died between the store's finish and the
/// record's update: every byte stored and the file finished, the record saved at the
/// last checkpoint (offset = length) but not as finished. Returns that record.
async fn finished_but_unrecorded(
    parts: &EngineParts,
    uploads: &crate::engine::Caller,
    data: &[u8],
) -> UploadInfo {
    let info = uploads
        .create(sized(data.len() as u64))
        .await
        .expect("create");
    let written = parts
        .store
        .write(&info, body_of(data, 4096))
        .await
        .expect("store write");
    let mut whole = UploadInfo {
        offset: written.bytes,
        store: written.store,
        ..info
    };
    whole.store = parts.store.finish(&whole).await.expect("store finish");
    let whole = parts
        .state
        .update(&whole)
        .await
        .expect("record at the checkpoint");
    assert!(!whole.is_finished());
    whole
}

/// A whole, unfinished record left by such a crash is finished at the next look at it
/// (HEAD), and gc does not take it for an abandoned upload.
pub async fn a_whole_upload_left_unfinished_is_finished_when_seen(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let data = pattern(30_000, 9);
    let whole = finished_but_unrecorded(&parts, &uploads, &data).await;
    let seen = uploads.settled_info(&whole.id).await.expect("HEAD");
    assert!(seen.is_finished(), "{seen:?}");
    assert_eq!(stored(&uploads, &whole.id).await, data);

    // The same window, then the upload's expiry passes before anyone looks: gc finishes
    // it instead of deleting it.
    let late = finished_but_unrecorded(&parts, &uploads, &data).await;
    let expired = UploadInfo {
        expires_at: Some(std::time::SystemTime::UNIX_EPOCH),
        ..late.clone()
    };
    parts.state.update(&expired).await.expect("expired record");
    let gc = Uploads::builder(parts.store.clone(), parts.state.clone()).build();
    assert_eq!(gc.purge_expired().await.expect("gc"), 0, "nothing purged");
    let kept = uploads.info(&late.id).await.expect("still there");
    assert!(kept.is_finished());
    assert_eq!(stored(&uploads, &late.id).await, data);
}

/// Expired uploads are `Expired`, then purged; fresh and finished ones stay.
pub async fn expired_uploads_are_purged(parts: Arc<EngineParts>) {
    let short = engine(
        &parts,
        Limits {
            expire_after: Some(Duration::ZERO),
            ..Limits::default()
        },
    );
    let stale = short.create(sized(10)).await.expect("create").id;
    let long = default_engine(&parts);
    let fresh = long.create(sized(10)).await.expect("create").id;
    let done = long.create(sized(0)).await.expect("create").id;
    assert!(matches!(long.info(&stale).await, Err(Error::Expired(_))));
    let purged = long.engine().purge_expired().await.expect("purge");
    assert!(purged >= 1);
    assert!(matches!(
        parts.state.get(&stale).await,
        Err(Error::NotFound(_))
    ));
    assert!(long.info(&fresh).await.is_ok());
    assert!(long.info(&done).await.is_ok());
}

/// A finished partial upload still expires, unlike a finished file: tus partials never
/// joined and Resumable.js/Flow.js chunk sets never assembled would otherwise stay
/// forever. A finished upload of its own does not.
pub async fn finished_partials_expire(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let joinable = partial(&uploads, &pattern(100, 30), true).await;
    let file = uploads.create(sized(3)).await.expect("create").id;
    write(&uploads, &file, at(0), body_of(b"abc", 3))
        .await
        .expect("write");
    for id in [&joinable, &file] {
        let info = uploads.info(id).await.expect("finished");
        assert!(info.is_finished());
        // As if its expiry had passed since it finished.
        let past = UploadInfo {
            expires_at: Some(std::time::SystemTime::UNIX_EPOCH),
            ..info
        };
        parts.state.update(&past).await.expect("backdate");
    }
    let purged = uploads.engine().purge_expired().await.expect("gc");
    assert_eq!(purged, 1, "the partial, and only it");
    assert!(matches!(
        parts.state.get(&joinable).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(stored(&uploads, &file).await, b"abc");
}
