//! Engine scenarios, run for every (data store, state store) pair. They check the
//! engine's answers and the stored bytes.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;

use super::{body_of, broken_body, collect, pattern};
use crate::body::ByteStream;
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::engine::{Caller, ExpectedChecksum, Limits, Uploads, WriteRequest};
use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::owner::Owner;
use crate::state::StateStore;
use crate::store::DataStore;
use crate::upload::{ConcatKind, NewUpload, UploadInfo};

pub use super::lifecycle::{
    a_concatenation_cut_off_is_completed_when_seen,
    a_joined_final_the_store_finished_is_finished_when_seen,
    a_repeated_last_request_after_the_crash_finishes,
    a_waiting_final_and_its_parts_outlive_their_expiry,
    a_whole_upload_left_unfinished_is_finished_when_seen,
    an_id_the_store_kept_without_a_record_is_created_again, expired_uploads_are_purged,
    finished_partials_expire,
};
pub use super::running::{
    another_owner_never_reaches_an_upload, completing_bodies_settle_the_length,
    gc_leaves_a_running_upload_alone, newest_request_wins,
};

/// The two stores an engine is built from.
pub struct EngineParts {
    /// Where the engine keeps bytes.
    pub store: Arc<dyn DataStore>,
    /// Where the engine keeps records.
    pub state: Arc<dyn StateStore>,
}

/// An engine as an anonymous caller sees it.
pub(super) fn engine(parts: &EngineParts, limits: Limits) -> Caller {
    Uploads::builder(parts.store.clone(), parts.state.clone())
        .limits(limits)
        .build()
        .for_owner(Owner::anonymous())
}

pub(super) fn default_engine(parts: &EngineParts) -> Caller {
    engine(parts, Limits::default())
}

/// A write whose stop by a newer request or by shutdown is an error, as most cases
/// expect.
pub(super) async fn write(
    uploads: &Caller,
    id: &UploadId,
    req: WriteRequest,
    body: ByteStream<'_>,
) -> Result<UploadInfo> {
    uploads.write(id, req, body).await?.stopped()
}

pub(super) fn sized(length: u64) -> NewUpload {
    NewUpload {
        length: Some(length),
        ..Default::default()
    }
}

pub(super) fn at(offset: u64) -> WriteRequest {
    WriteRequest {
        offset,
        ..Default::default()
    }
}

pub(super) async fn stored(uploads: &Caller, id: &UploadId) -> Vec<u8> {
    let (_, stream) = uploads.read(id, None).await.expect("read");
    collect(stream).await
}

fn digest(algorithm: ChecksumAlgorithm, data: &[u8]) -> Checksum {
    let mut h = algorithm.hasher();
    h.update(data);
    Checksum {
        algorithm,
        digest: h.finalize(),
    }
}

/// An upload sent in one write finishes and reads back whole.
pub async fn single_request_upload(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let data = pattern(300_000, 11);
    let info = uploads
        .create(sized(data.len() as u64))
        .await
        .expect("create");
    let info = write(&uploads, &info.id, at(0), body_of(&data, 65_536))
        .await
        .expect("write");
    assert!(info.is_finished());
    assert_eq!(stored(&uploads, &info.id).await, data);
}

/// An upload sent in several writes, each at the last one's offset, reads back whole.
pub async fn chunked_upload(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let data = pattern(250_000, 12);
    let id = uploads
        .create(sized(data.len() as u64))
        .await
        .expect("create")
        .id;
    let mut offset = 0;
    for chunk in data.chunks(60_000) {
        let info = write(&uploads, &id, at(offset), body_of(chunk, 4096))
            .await
            .expect("write");
        offset = info.offset;
    }
    assert_eq!(offset, data.len() as u64);
    assert_eq!(stored(&uploads, &id).await, data);
}

/// A body cut off midway keeps every byte before the cut, and the upload resumes there.
pub async fn interrupted_body_keeps_received_bytes(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let data = pattern(100_000, 13);
    let id = uploads
        .create(sized(data.len() as u64))
        .await
        .expect("create")
        .id;
    let info = write(&uploads, &id, at(0), broken_body(&data[..40_000]))
        .await
        .expect("write");
    assert_eq!(
        info.offset, 40_000,
        "every byte before the disconnect is kept"
    );
    assert_eq!(uploads.info(&id).await.expect("info").offset, 40_000);
    write(&uploads, &id, at(40_000), body_of(&data[40_000..], 10_000))
        .await
        .expect("resume");
    assert_eq!(stored(&uploads, &id).await, data);
}

/// A write at the wrong offset is `OffsetMismatch` and changes nothing.
pub async fn offset_mismatch_is_rejected(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let id = uploads.create(sized(100)).await.expect("create").id;
    write(&uploads, &id, at(0), body_of(&[1; 10], 10))
        .await
        .expect("write");
    let err = write(&uploads, &id, at(5), body_of(&[2; 10], 10)).await;
    assert!(
        matches!(
            err,
            Err(Error::OffsetMismatch {
                expected: 10,
                got: 5
            })
        ),
        "{err:?}"
    );
    assert_eq!(uploads.info(&id).await.expect("info").offset, 10);
}

/// A body past the declared length is `LengthExceeded`, announced or found while reading,
/// and keeps nothing.
pub async fn length_exceeded_keeps_nothing(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let id = uploads.create(sized(100)).await.expect("create").id;
    // Refused up front when the size is announced...
    let req = WriteRequest {
        body_len: Some(101),
        ..at(0)
    };
    let err = write(&uploads, &id, req, body_of(&[0; 101], 101)).await;
    assert!(
        matches!(err, Err(Error::LengthExceeded { length: 100 })),
        "{err:?}"
    );
    // ...and while reading when it is not.
    let err = write(&uploads, &id, at(0), body_of(&[0; 150], 50)).await;
    assert!(
        matches!(err, Err(Error::LengthExceeded { length: 100 })),
        "{err:?}"
    );
    assert_eq!(uploads.info(&id).await.expect("info").offset, 0);
    let data = pattern(100, 14);
    write(&uploads, &id, at(0), body_of(&data, 30))
        .await
        .expect("write");
    assert_eq!(stored(&uploads, &id).await, data);
}

/// A body failing its checksum (in every algorithm) keeps nothing; a matching one is kept.
pub async fn checksum_mismatch_discards_chunk(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let data = pattern(20_000, 15);
    let id = uploads
        .create(sized(data.len() as u64))
        .await
        .expect("create")
        .id;
    for algorithm in ChecksumAlgorithm::ALL {
        let req = WriteRequest {
            checksum: Some(ExpectedChecksum::Header(digest(
                algorithm,
                b"something else",
            ))),
            ..at(0)
        };
        let err = write(&uploads, &id, req, body_of(&data[..5_000], 1000)).await;
        assert!(
            matches!(err, Err(Error::ChecksumMismatch)),
            "{algorithm}: {err:?}"
        );
        assert_eq!(uploads.info(&id).await.expect("info").offset, 0);
    }
    let req = WriteRequest {
        checksum: Some(ExpectedChecksum::Header(digest(
            ChecksumAlgorithm::Sha256,
            &data[..5_000],
        ))),
        ..at(0)
    };
    let info = write(&uploads, &id, req, body_of(&data[..5_000], 1000))
        .await
        .expect("write");
    assert_eq!(info.offset, 5_000);
    write(&uploads, &id, at(5_000), body_of(&data[5_000..], 1000))
        .await
        .expect("rest");
    assert_eq!(stored(&uploads, &id).await, data);
}

/// A checksum arriving after the body is checked as one sent before it.
pub async fn trailer_checksum_is_verified(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let data = pattern(9_000, 16);
    let id = uploads
        .create(sized(data.len() as u64))
        .await
        .expect("create")
        .id;
    // The slot is filled by the front end when the trailer arrives, i.e. after the body.
    let slot = Arc::new(Mutex::new(None));
    let wrong = digest(ChecksumAlgorithm::Md5, b"nope");
    let filler = slot.clone();
    let body = body_of(&data, 1000).chain(futures::stream::once(async move {
        *filler.lock().expect("slot") = Some(wrong);
        Ok(Bytes::new())
    }));
    let req = WriteRequest {
        checksum: Some(ExpectedChecksum::Trailer(slot)),
        ..at(0)
    };
    let err = write(&uploads, &id, req, body.boxed()).await;
    assert!(matches!(err, Err(Error::ChecksumMismatch)), "{err:?}");
    assert_eq!(uploads.info(&id).await.expect("info").offset, 0);

    let slot = Arc::new(Mutex::new(None));
    let right = digest(ChecksumAlgorithm::Crc32, &data);
    let filler = slot.clone();
    let body = body_of(&data, 1000).chain(futures::stream::once(async move {
        *filler.lock().expect("slot") = Some(right);
        Ok(Bytes::new())
    }));
    let req = WriteRequest {
        checksum: Some(ExpectedChecksum::Trailer(slot)),
        ..at(0)
    };
    write(&uploads, &id, req, body.boxed())
        .await
        .expect("write");
    assert_eq!(stored(&uploads, &id).await, data);
}

/// An upload created without a length takes bytes, refuses a length below its offset, and
/// finishes when the length is declared and reached.
pub async fn deferred_length(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let data = pattern(30_000, 17);
    let id = uploads
        .create(NewUpload::default())
        .await
        .expect("create")
        .id;
    let info = write(&uploads, &id, at(0), body_of(&data[..10_000], 999))
        .await
        .expect("write");
    assert_eq!((info.offset, info.length), (10_000, None));
    let bad = WriteRequest {
        declare_length: Some(5),
        ..at(10_000)
    };
    assert!(matches!(
        write(&uploads, &id, bad, body_of(&[], 1)).await,
        Err(Error::InvalidLength(_))
    ));
    let last = WriteRequest {
        declare_length: Some(data.len() as u64),
        ..at(10_000)
    };
    let info = write(&uploads, &id, last, body_of(&data[10_000..], 999))
        .await
        .expect("last");
    assert!(info.is_finished());
    assert_eq!(stored(&uploads, &id).await, data);
}

/// An empty upload is finished and readable as soon as it is created.
pub async fn zero_length_finishes_at_creation(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let info = uploads.create(sized(0)).await.expect("create");
    assert!(info.is_finished());
    assert!(stored(&uploads, &info.id).await.is_empty());
}

pub(super) async fn partial(uploads: &Caller, data: &[u8], written: bool) -> UploadId {
    let new = NewUpload {
        length: Some(data.len() as u64),
        concat: ConcatKind::Partial,
        ..Default::default()
    };
    let id = uploads.create(new).await.expect("create partial").id;
    if written {
        write(uploads, &id, at(0), body_of(data, 4096))
            .await
            .expect("write partial");
    }
    id
}

/// A final upload of finished parts is their bytes in order, and takes no writes. A
/// partial listed twice in one final is refused: repeats let one short request make the
/// server write a partial thousands of times.
pub async fn concatenation_of_finished_parts(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let (a, b) = (pattern(70_000, 18), pattern(12_345, 19));
    let ida = partial(&uploads, &a, true).await;
    let idb = partial(&uploads, &b, true).await;
    let twice = NewUpload {
        concat: ConcatKind::Final(vec![ida.clone(), idb.clone(), ida.clone()]),
        ..Default::default()
    };
    assert!(matches!(
        uploads.create(twice).await,
        Err(Error::InvalidConcat(_))
    ));
    let new = NewUpload {
        concat: ConcatKind::Final(vec![idb.clone(), ida.clone()]),
        ..Default::default()
    };
    let fin = uploads.create(new).await.expect("final");
    assert!(fin.is_finished());
    assert_eq!(stored(&uploads, &fin.id).await, [b, a].concat());
    let err = write(&uploads, &fin.id, at(0), body_of(&[1], 1)).await;
    assert!(matches!(err, Err(Error::FinalUpload)));
}

/// A final of more parts than `max_concat_parts` is refused before any part is read.
pub async fn concatenation_is_bounded_in_parts(parts: Arc<EngineParts>) {
    let uploads = engine(
        &parts,
        Limits {
            max_concat_parts: 3,
            ..Limits::default()
        },
    );
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(partial(&uploads, &pattern(10, n), true).await);
    }
    let four = NewUpload {
        concat: ConcatKind::Final(ids.clone()),
        ..Default::default()
    };
    assert!(matches!(
        uploads.create(four).await,
        Err(Error::InvalidConcat(_))
    ));
    let three = NewUpload {
        concat: ConcatKind::Final(ids[..3].to_vec()),
        ..Default::default()
    };
    assert!(
        uploads
            .create(three)
            .await
            .expect("three parts")
            .is_finished()
    );
}

/// A final upload of an unfinished part is unreadable until that part finishes.
pub async fn concatenation_waits_for_unfinished_parts(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let (a, b) = (pattern(5_000, 20), pattern(6_000, 21));
    let ida = partial(&uploads, &a, true).await;
    let idb = partial(&uploads, &b, false).await;
    let new = NewUpload {
        concat: ConcatKind::Final(vec![ida, idb.clone()]),
        ..Default::default()
    };
    let fin = uploads.create(new).await.expect("final");
    assert!(!fin.is_finished());
    assert!(matches!(
        uploads.read(&fin.id, None).await,
        Err(Error::NotFinished)
    ));
    write(&uploads, &idb, at(0), body_of(&b, 1000))
        .await
        .expect("write b");
    assert_eq!(stored(&uploads, &fin.id).await, [a, b].concat());
}

/// Termination removes an upload; terminating it again is `NotFound`.
pub async fn terminate_removes_upload(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let id = uploads.create(sized(10)).await.expect("create").id;
    write(&uploads, &id, at(0), body_of(&[1; 4], 4))
        .await
        .expect("write");
    uploads.terminate(&id).await.expect("terminate");
    assert!(matches!(uploads.info(&id).await, Err(Error::NotFound(_))));
    assert!(matches!(
        uploads.terminate(&id).await,
        Err(Error::NotFound(_))
    ));
}

/// A long body is committed every `checkpoint_bytes`, with a progress event each time.
pub async fn checkpoints_commit_long_bodies(parts: Arc<EngineParts>) {
    let uploads = engine(
        &parts,
        Limits {
            checkpoint_bytes: 10_000,
            ..Limits::default()
        },
    );
    let data = pattern(55_555, 23);
    let id = uploads
        .create(sized(data.len() as u64))
        .await
        .expect("create")
        .id;
    let mut events = uploads.engine().events();
    write(&uploads, &id, at(0), body_of(&data, 7_777))
        .await
        .expect("write");
    let mut progress = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let crate::hooks::Event::Progress(info) = event {
            progress.push(info.offset);
        }
    }
    assert_eq!(
        progress,
        vec![10_000, 20_000, 30_000, 40_000, 50_000, 55_555]
    );
    assert_eq!(stored(&uploads, &id).await, data);
}

/// A client-chosen id is used, and choosing it again is `AlreadyExists` without touching
/// the first upload.
pub async fn chosen_ids_are_unique(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let id = UploadId::generate();
    let new = NewUpload {
        id: Some(id.clone()),
        ..sized(3)
    };
    let info = uploads.create(new.clone()).await.expect("create");
    assert_eq!(info.id, id);
    write(&uploads, &id, at(0), body_of(b"abc", 3))
        .await
        .expect("write");
    assert!(matches!(
        uploads.create(new).await,
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(
        stored(&uploads, &id).await,
        b"abc",
        "the first upload is untouched"
    );
}

/// A whole-body upload finishes with the body's length, or, cut off, is removed.
pub async fn whole_bodies_are_all_or_nothing(parts: Arc<EngineParts>) {
    let uploads = default_engine(&parts);
    let data = pattern(30_000, 24);
    let info = uploads
        .create_whole(NewUpload::default(), body_of(&data, 7_000))
        .await
        .expect("whole");
    assert!(info.is_finished());
    assert_eq!(info.length, Some(30_000));
    assert_eq!(stored(&uploads, &info.id).await, data);
    let mut events = uploads.engine().events();
    let err = uploads
        .create_whole(NewUpload::default(), broken_body(&data[..1000]))
        .await;
    assert!(matches!(err, Err(Error::IncompleteBody)), "{err:?}");
    let mut removed = false;
    while let Ok(event) = events.try_recv() {
        removed |= matches!(event, crate::hooks::Event::Terminated(_));
    }
    assert!(removed, "the cut-off upload is removed");
}
