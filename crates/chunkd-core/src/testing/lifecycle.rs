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

/// The same window, then the client repeats its last request: an empty append at the
/// end finishes the upload (it must not wait forever on a store that has nothing to
/// write).
pub async fn a_repeated_last_request_after_the_crash_finishes(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let data = pattern(20_000, 10);
    let whole = finished_but_unrecorded(&parts, &uploads, &data).await;
    let retry = uploads.write(&whole.id, at(whole.offset), body_of(&[], 1));
    let outcome = tokio::time::timeout(Duration::from_secs(20), retry)
        .await
        .expect("the retry returns")
        .expect("the retry is accepted");
    assert!(outcome.info.is_finished(), "{:?}", outcome.info);
    assert!(
        stored(&uploads, &whole.id).await == data,
        "stored bytes differ"
    );
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

/// Partials of `a` (written) and `b` (not yet), and a final of both, waiting for `b`.
async fn waiting_final(
    uploads: &crate::engine::Caller,
    a: &[u8],
    b: &[u8],
) -> (crate::id::UploadId, crate::id::UploadId, UploadInfo) {
    let ida = partial(uploads, a, true).await;
    let idb = partial(uploads, b, false).await;
    let new = crate::upload::NewUpload {
        concat: crate::upload::ConcatKind::Final(vec![ida.clone(), idb.clone()]),
        ..Default::default()
    };
    let fin = uploads.create(new).await.expect("final");
    (ida, idb, fin)
}

/// Sets `id`'s expiry in the past, as if its time had run out.
async fn backdate(parts: &EngineParts, id: &crate::id::UploadId) {
    let info = parts.state.get(id).await.expect("record");
    let past = UploadInfo {
        expires_at: Some(std::time::SystemTime::UNIX_EPOCH),
        ..info
    };
    parts.state.update(&past).await.expect("backdate");
}

/// A final waiting for a partial that is still being written keeps itself and its
/// finished partials past their expiry: gc would otherwise delete a part the final needs
/// (or the final) while a client still uploads. Once the unfinished partial is abandoned
/// too, all three go.
pub async fn a_waiting_final_and_its_parts_outlive_their_expiry(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let (a, b) = (pattern(3_000, 42), pattern(4_000, 43));
    let (ida, idb, fin) = waiting_final(&uploads, &a, &b).await;
    let fin = fin.id;
    let expiry = |id| {
        let parts = parts.clone();
        async move { parts.state.get(id).await.expect("record").expires_at }
    };
    assert!(
        expiry(&ida).await > expiry(&fin).await,
        "a finished part outlives the final waiting for it"
    );
    // The final was made long ago; b is being written now.
    backdate(&parts, &fin).await;
    let purged = uploads.engine().purge_expired().await.expect("gc");
    assert_eq!(purged, 0, "nothing of a concatenation still in progress");
    let now = Some(std::time::SystemTime::now());
    assert!(expiry(&fin).await > now, "the final's expiry moved on");
    assert!(expiry(&ida).await > expiry(&fin).await, "and a's with it");
    write(&uploads, &idb, at(0), body_of(&b, 1000))
        .await
        .expect("write b");
    assert_eq!(
        stored(&uploads, &fin).await,
        [a.clone(), b.clone()].concat()
    );

    // The same, but b is abandoned: its expiry passes as well.
    let (ida, idb, fin) = waiting_final(&uploads, &a, &b).await;
    let fin = fin.id;
    for id in [&ida, &idb, &fin] {
        backdate(&parts, id).await;
    }
    let purged = uploads.engine().purge_expired().await.expect("gc");
    assert_eq!(purged, 3, "the final and both partials");
}

/// A final whose partials are all finished but which was never joined: the last
/// partial's finish was recorded, then the process died before the join. Returns the
/// final's record.
async fn join_cut_off(
    parts: &EngineParts,
    uploads: &crate::engine::Caller,
    a: &[u8],
    b: &[u8],
) -> UploadInfo {
    let (_, idb, fin) = waiting_final(uploads, a, b).await;
    assert!(!fin.is_finished());
    // b finishes while it does not know the final waits (the crash's effect), then its
    // record is put back as the crash left it: finished, the final still listed.
    let waiting = parts.state.get(&idb).await.expect("b");
    assert_eq!(waiting.pending_finals, vec![fin.id.clone()]);
    let unaware = UploadInfo {
        pending_finals: Vec::new(),
        ..waiting
    };
    parts.state.update(&unaware).await.expect("forget");
    write(uploads, &idb, at(0), body_of(b, 1000))
        .await
        .expect("write b");
    let finished_b = parts.state.get(&idb).await.expect("b");
    let crashed = UploadInfo {
        pending_finals: vec![fin.id.clone()],
        ..finished_b
    };
    parts
        .state
        .update(&crashed)
        .await
        .expect("as the crash left it");
    parts.state.get(&fin.id).await.expect("final")
}

/// The same window later on: the join was done and recorded (offset = length) and the
/// store had finished the final, but the record never said finished. The next look
/// finishes it without joining again (on disk the joined `.part` is gone by then).
pub async fn a_joined_final_the_store_finished_is_finished_when_seen(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let (a, b) = (pattern(5_000, 44), pattern(7_000, 45));
    let fin = join_cut_off(&parts, &uploads, &a, &b).await;
    let joined = [a, b].concat();
    let written = parts
        .store
        .write(&fin, body_of(&joined, 4096))
        .await
        .expect("the join");
    let mut whole = UploadInfo {
        offset: written.bytes,
        store: written.store,
        ..fin
    };
    whole = parts.state.update(&whole).await.expect("record the join");
    parts
        .store
        .finish(&whole)
        .await
        .expect("the store's finish");
    let seen = uploads.settled_info(&whole.id).await.expect("HEAD");
    assert!(seen.is_finished(), "{seen:?}");
    assert_eq!(stored(&uploads, &whole.id).await, joined);
}

/// A concatenation cut off by a crash: the last partial's finish was recorded, then the
/// process died before (or while) the waiting final was joined, so no later write will
/// start it again. The next look at the final (HEAD) joins it, continuing after what
/// was already copied rather than copying it twice.
pub async fn a_concatenation_cut_off_is_completed_when_seen(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let (a, b) = (pattern(5_000, 40), pattern(7_000, 41));
    let fin = join_cut_off(&parts, &uploads, &a, &b).await;

    // The join had copied a's bytes and recorded them before the crash.
    let copied = parts
        .store
        .write(&fin, body_of(&a, 4096))
        .await
        .expect("copy a");
    let halfway = UploadInfo {
        offset: copied.bytes,
        store: copied.store,
        ..fin
    };
    parts.state.update(&halfway).await.expect("record a");
    assert!(matches!(
        uploads.read(&halfway.id, None).await,
        Err(Error::NotFinished)
    ));

    let seen = uploads.settled_info(&halfway.id).await.expect("HEAD");
    assert!(seen.is_finished(), "{seen:?}");
    assert_eq!(stored(&uploads, &halfway.id).await, [a, b].concat());
}

/// A crash between the store's create and the record's leaves the store holding an id
/// nobody has a record of. An id a front end derives (Resumable.js chunks and files)
/// comes back with the client's retry, and must not be blocked for good.
pub async fn an_id_the_store_kept_without_a_record_is_created_again(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let id = crate::id::UploadId::generate();
    let template = uploads.create(sized(4)).await.expect("create");
    let orphan = UploadInfo {
        id: id.clone(),
        ..template
    };
    parts.store.create(&orphan).await.expect("the store's half");
    let new = crate::upload::NewUpload {
        id: Some(id.clone()),
        ..sized(4)
    };
    let created = uploads.create(new.clone()).await.expect("created again");
    assert_eq!(created.id, id);
    write(&uploads, &id, at(0), body_of(b"abcd", 2))
        .await
        .expect("write");
    assert_eq!(stored(&uploads, &id).await, b"abcd");
    // With its record in place, the id is taken.
    assert!(matches!(
        uploads.create(new).await,
        Err(Error::AlreadyExists(_))
    ));
}
