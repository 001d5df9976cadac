//! Browser-direct upload scenarios, run for every store with [`DirectParts`]: the engine
//! has the store sign part URLs, a [`Browser`] PUTs the parts to them, and the engine
//! completes the upload from what the store lists.
//!
//! Part sizes follow the store's [`DirectParts::min_part_size`], so the same cases run
//! against the memory store (small parts) and S3 (5 MiB).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{body_of, collect, pattern};
use crate::engine::{Caller, Limits, Uploads, WriteRequest};
use crate::error::{BoxError, Error, Result};
use crate::id::UploadId;
use crate::memory::MemoryStore;
use crate::owner::Owner;
use crate::state::StateStore;
use crate::store::{DataStore, DirectParts};
use crate::upload::NewUpload;

/// An engine's two stores (the data store with direct parts) and the client side.
pub struct DirectEngine {
    /// The data store under test; it must offer [`DirectParts`].
    pub store: Arc<dyn DataStore>,
    /// Where the engine keeps records.
    pub state: Arc<dyn StateStore>,
    /// Puts parts to the URLs the store signs, as a browser would.
    pub browser: Arc<dyn Browser>,
}

/// What a browser does with a part URL: PUT the bytes to it.
#[async_trait]
pub trait Browser: Send + Sync {
    /// PUTs `body` to `url`; the part's ETag as the store answered it, or why the store
    /// refused.
    async fn put(&self, url: &str, body: Bytes) -> Result<String, BoxError>;
}

#[async_trait]
impl Browser for MemoryStore {
    async fn put(&self, url: &str, body: Bytes) -> Result<String, BoxError> {
        Ok(self.put_part(url, body)?)
    }
}

const VALID_FOR: Duration = Duration::from_secs(15 * 60);

fn engine(parts: &DirectEngine, limits: Limits) -> Uploads {
    Uploads::builder(parts.store.clone(), parts.state.clone())
        .limits(limits)
        .build()
}

fn alice(parts: &DirectEngine) -> Caller {
    engine(parts, Limits::default()).for_owner(Owner::named("alice"))
}

fn min_part(parts: &DirectEngine) -> usize {
    let direct: &dyn DirectParts = parts
        .store
        .direct()
        .expect("the direct suite needs a store with direct parts");
    direct.min_part_size() as usize
}

async fn create(caller: &Caller, length: Option<u64>) -> UploadId {
    let new = NewUpload {
        length,
        direct: true,
        ..Default::default()
    };
    caller.create(new).await.expect("create").id
}

/// Signs part `number` and PUTs `data` to it, as the browser does.
async fn put(
    parts: &DirectEngine,
    caller: &Caller,
    id: &UploadId,
    number: u16,
    data: &[u8],
) -> String {
    let url = caller
        .sign_part(id, number, VALID_FOR)
        .await
        .expect("sign part");
    parts
        .browser
        .put(&url, Bytes::copy_from_slice(data))
        .await
        .expect("put part")
}

/// Two parts of the minimum size and a short last one.
fn three_parts(parts: &DirectEngine, seed: u64) -> Vec<Vec<u8>> {
    let min = min_part(parts);
    vec![
        pattern(min, seed),
        pattern(min, seed + 1),
        pattern(min / 3 + 1, seed + 2),
    ]
}

/// Puts `chunks` as parts 1, 2, ... and answers what completion names.
async fn put_all(
    parts: &DirectEngine,
    caller: &Caller,
    id: &UploadId,
    chunks: &[Vec<u8>],
) -> Vec<(u16, String)> {
    let mut named = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let number = i as u16 + 1;
        named.push((number, put(parts, caller, id, number, chunk).await));
    }
    named
}

async fn stored(caller: &Caller, id: &UploadId) -> Vec<u8> {
    let (_, stream) = caller.read(id, None).await.expect("read");
    collect(stream).await
}

fn unquote(etag: &str) -> &str {
    etag.trim_matches('"')
}

/// Parts put to signed URLs are listed with their sizes and tags, and completing joins
/// them into the upload.
pub async fn direct_upload_round_trips(parts: Arc<DirectEngine>) {
    let alice = alice(&parts);
    let chunks = three_parts(&parts, 41);
    let data = chunks.concat();
    let id = create(&alice, None).await;
    let named = put_all(&parts, &alice, &id, &chunks).await;
    let listed = alice.direct_parts(&id).await.expect("list parts");
    assert_eq!(listed.len(), 3);
    for ((part, (number, etag)), chunk) in listed.iter().zip(&named).zip(&chunks) {
        assert_eq!(part.number, *number);
        assert_eq!(part.size, chunk.len() as u64);
        // Some S3-compatible services list no ETags.
        assert!(part.etag.is_empty() || unquote(&part.etag) == unquote(etag));
    }
    let info = alice.complete_direct(&id, &named).await.expect("complete");
    assert!(info.is_finished());
    assert_eq!(info.offset, data.len() as u64);
    assert_eq!(info.length, Some(data.len() as u64));
    assert_eq!(stored(&alice, &id).await, data);
}

/// A part number put twice keeps the second body.
pub async fn a_part_put_again_replaces_the_first(parts: Arc<DirectEngine>) {
    let alice = alice(&parts);
    let chunks = three_parts(&parts, 42);
    let id = create(&alice, None).await;
    put(&parts, &alice, &id, 2, &pattern(chunks[1].len(), 99)).await;
    let named = put_all(&parts, &alice, &id, &chunks).await;
    alice.complete_direct(&id, &named).await.expect("complete");
    assert_eq!(stored(&alice, &id).await, chunks.concat());
}

/// Completing with a wrong tag is `InvalidPart` (where tags are listed), and the parts
/// stay for a correct completion.
pub async fn wrong_etag_is_refused_and_the_parts_stay(parts: Arc<DirectEngine>) {
    let alice = alice(&parts);
    let chunks = three_parts(&parts, 43);
    let id = create(&alice, None).await;
    let named = put_all(&parts, &alice, &id, &chunks).await;
    let listed = alice.direct_parts(&id).await.expect("list parts");
    let mut wrong = named.clone();
    wrong[1].1 = "\"0123456789abcdef0123456789abcdef\"".to_owned();
    let r = alice.complete_direct(&id, &wrong).await;
    if listed.iter().all(|p| !p.etag.is_empty()) {
        // The engine checks listed ETags itself.
        assert!(matches!(r, Err(Error::InvalidPart(_))), "{r:?}");
    } else {
        // Unlisted, the check is the service's own completion: S3 refuses a wrong ETag,
        // s3s-fs neither lists nor checks them. Either way the stored bytes are joined.
        match r {
            Err(Error::InvalidPart(_)) => {}
            Ok(info) => {
                eprintln!("the S3 service accepted a wrong ETag (it lists none)");
                assert!(info.is_finished());
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    if !alice.info(&id).await.expect("info").is_finished() {
        alice.complete_direct(&id, &named).await.expect("complete");
    }
    assert_eq!(stored(&alice, &id).await, chunks.concat());
}

/// Completing with a gap, a part never put or no parts is `InvalidPart`; the order parts
/// are named in does not matter.
pub async fn gaps_and_missing_parts_are_refused(parts: Arc<DirectEngine>) {
    let alice = alice(&parts);
    let chunks = three_parts(&parts, 44);
    let id = create(&alice, None).await;
    let named = put_all(&parts, &alice, &id, &chunks).await;
    let gap = [named[0].clone(), named[2].clone()];
    let mut never_put = named.clone();
    never_put.push((4, named[2].1.clone()));
    for (name, parts) in [
        ("a gap", &gap[..]),
        ("a part never put", &never_put[..]),
        ("no parts", &[][..]),
    ] {
        let r = alice.complete_direct(&id, parts).await;
        assert!(matches!(r, Err(Error::InvalidPart(_))), "{name}: {r:?}");
    }
    // The order parts are named in does not matter.
    let reversed: Vec<_> = named.iter().rev().cloned().collect();
    alice
        .complete_direct(&id, &reversed)
        .await
        .expect("complete");
    assert_eq!(stored(&alice, &id).await, chunks.concat());
}

/// A part below the store's minimum size before the last is `InvalidPart`.
pub async fn small_parts_before_the_last_are_refused(parts: Arc<DirectEngine>) {
    let alice = alice(&parts);
    let min = min_part(&parts);
    let id = create(&alice, None).await;
    let chunks = [pattern(min / 2, 45), pattern(10, 46)];
    let named = put_all(&parts, &alice, &id, &chunks).await;
    let r = alice.complete_direct(&id, &named).await;
    assert!(matches!(r, Err(Error::InvalidPart(_))), "{r:?}");
}

/// Completing twice gives the same finished upload, which has no parts left to list or
/// sign.
pub async fn completing_again_is_harmless(parts: Arc<DirectEngine>) {
    let alice = alice(&parts);
    let chunks = three_parts(&parts, 47);
    let id = create(&alice, None).await;
    let named = put_all(&parts, &alice, &id, &chunks).await;
    let first = alice.complete_direct(&id, &named).await.expect("complete");
    let again = alice.complete_direct(&id, &named).await.expect("again");
    assert_eq!(again.offset, first.offset);
    assert!(again.is_finished());
    assert_eq!(stored(&alice, &id).await, chunks.concat());
    // A finished upload has no parts left to list or sign.
    assert!(alice.direct_parts(&id).await.expect("list").is_empty());
    let r = alice.sign_part(&id, 4, VALID_FOR).await;
    assert!(matches!(r, Err(Error::InvalidPart(_))), "{r:?}");
}

fn not_found<T: std::fmt::Debug>(what: &str, r: Result<T>) {
    assert!(matches!(r, Err(Error::NotFound(_))), "{what}: {r:?}");
}

/// Another identity cannot sign, list, complete or terminate: `NotFound`.
pub async fn another_owner_is_told_not_found(parts: Arc<DirectEngine>) {
    let engine = engine(&parts, Limits::default());
    let alice = engine.for_owner(Owner::named("alice"));
    let chunks = three_parts(&parts, 48);
    let id = create(&alice, None).await;
    let named = put_all(&parts, &alice, &id, &chunks).await;
    for stranger in [Owner::named("mallory"), Owner::anonymous()] {
        let other = engine.for_owner(stranger.clone());
        not_found(
            &format!("{stranger} signs"),
            other.sign_part(&id, 4, VALID_FOR).await,
        );
        not_found(&format!("{stranger} lists"), other.direct_parts(&id).await);
        not_found(
            &format!("{stranger} completes"),
            other.complete_direct(&id, &named).await,
        );
        not_found(
            &format!("{stranger} terminates"),
            other.terminate(&id).await,
        );
    }
    alice.complete_direct(&id, &named).await.expect("complete");
    assert_eq!(stored(&alice, &id).await, chunks.concat());
}

/// An upload created without `direct` has no parts to sign, list or complete.
pub async fn plain_uploads_have_no_direct_parts(parts: Arc<DirectEngine>) {
    let alice = alice(&parts);
    let new = NewUpload {
        length: Some(10),
        ..Default::default()
    };
    let id = alice.create(new).await.expect("create").id;
    not_found("sign", alice.sign_part(&id, 1, VALID_FOR).await);
    not_found("list", alice.direct_parts(&id).await);
    not_found(
        "complete",
        alice.complete_direct(&id, &[(1, "\"x\"".into())]).await,
    );
}

/// The size limit holds at creation, when signing a part that would start past it, and
/// at completion, which then removes the upload.
pub async fn max_size_is_enforced(parts: Arc<DirectEngine>) {
    let min = min_part(&parts);
    let max = (min + min / 2) as u64;
    let engine = engine(
        &parts,
        Limits {
            max_size: Some(max),
            ..Limits::default()
        },
    );
    let alice = engine.for_owner(Owner::named("alice"));
    let new = NewUpload {
        length: Some(max + 1),
        direct: true,
        ..Default::default()
    };
    let r = alice.create(new).await;
    assert!(
        matches!(r, Err(Error::TooLarge { .. })),
        "declared too large: {r:?}"
    );
    let id = create(&alice, None).await;
    // Part 3 would start past the maximum whatever the sizes of parts 1 and 2.
    let r = alice.sign_part(&id, 3, VALID_FOR).await;
    assert!(matches!(r, Err(Error::TooLarge { .. })), "part 3: {r:?}");
    let chunks = [pattern(min, 49), pattern(min, 50)];
    let named = put_all(&parts, &alice, &id, &chunks).await;
    let r = alice.complete_direct(&id, &named).await;
    assert!(
        matches!(r, Err(Error::TooLarge { .. })),
        "parts too large: {r:?}"
    );
    not_found("nothing of it is kept", alice.info(&id).await);
}

/// Parts adding up to another size than declared are `InvalidLength`.
pub async fn declared_size_must_match_the_parts(parts: Arc<DirectEngine>) {
    let alice = alice(&parts);
    let chunks = three_parts(&parts, 51);
    let total = chunks.concat().len() as u64;
    let id = create(&alice, Some(total + 1)).await;
    let named = put_all(&parts, &alice, &id, &chunks).await;
    let r = alice.complete_direct(&id, &named).await;
    assert!(matches!(r, Err(Error::InvalidLength(_))), "{r:?}");
}

/// A direct upload takes no bytes through the engine: `NotSupported`.
pub async fn appending_through_the_engine_is_not_supported(parts: Arc<DirectEngine>) {
    let alice = alice(&parts);
    let id = create(&alice, Some(100)).await;
    let r = alice
        .write(&id, WriteRequest::default(), body_of(&pattern(100, 52), 10))
        .await
        .map(|o| o.info);
    assert!(matches!(r, Err(Error::NotSupported(_))), "{r:?}");
    assert_eq!(alice.info(&id).await.expect("info").offset, 0);
}

/// Part numbers outside 1..=10000 are `InvalidPart`, as in S3.
pub async fn part_numbers_run_from_1_to_10000(parts: Arc<DirectEngine>) {
    let alice = alice(&parts);
    let id = create(&alice, None).await;
    for number in [0, 10_001, u16::MAX] {
        let r = alice.sign_part(&id, number, VALID_FOR).await;
        assert!(
            matches!(r, Err(Error::InvalidPart(_))),
            "part {number}: {r:?}"
        );
    }
    alice
        .sign_part(&id, 10_000, VALID_FOR)
        .await
        .expect("the last part number");
}

/// After termination, a PUT to an already signed URL is refused.
pub async fn terminated_uploads_take_no_more_parts(parts: Arc<DirectEngine>) {
    let alice = alice(&parts);
    let id = create(&alice, None).await;
    let url = alice.sign_part(&id, 1, VALID_FOR).await.expect("sign");
    put(&parts, &alice, &id, 2, &pattern(100, 53)).await;
    alice.terminate(&id).await.expect("terminate");
    not_found("info", alice.info(&id).await);
    let r = parts.browser.put(&url, Bytes::from_static(b"late")).await;
    assert!(r.is_err(), "a PUT after the abort is refused: {r:?}");
    alice.terminate(&id).await.expect_err("already gone");
}
