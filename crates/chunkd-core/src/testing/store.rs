//! [`DataStore`] contract cases.

use std::sync::Arc;
use std::time::Duration;

use super::{Outcome, body_of, broken_body, collect, pattern, sample_info};
use crate::store::DataStore;
use crate::upload::UploadInfo;

async fn created(store: &Arc<dyn DataStore>, length: u64) -> UploadInfo {
    let mut info = sample_info(Some(length));
    info.store = store.create(&info).await.expect("create");
    info
}

async fn append(store: &Arc<dyn DataStore>, info: &mut UploadInfo, data: &[u8]) {
    let w = store.write(info, body_of(data, 7919)).await.expect("write");
    assert_eq!(w.bytes, data.len() as u64, "write reports every byte");
    info.offset += w.bytes;
    info.store = w.store;
}

async fn finished(store: &Arc<dyn DataStore>, data: &[u8]) -> UploadInfo {
    let mut info = created(store, data.len() as u64).await;
    append(store, &mut info, data).await;
    info.store = store.finish(&info).await.expect("finish");
    info
}

/// Every byte of `info`, read back.
async fn whole(store: &Arc<dyn DataStore>, info: &UploadInfo) -> Vec<u8> {
    collect(store.read(info, 0..info.offset).await.expect("read")).await
}

/// A finished upload written in one call reads back whole.
pub async fn create_write_read(store: Arc<dyn DataStore>) {
    let data = pattern(100_000, 1);
    let info = finished(&store, &data).await;
    let got = collect(store.read(&info, 0..data.len() as u64).await.expect("read")).await;
    assert_eq!(got, data);
}

/// Two appends, the second continuing at the first one's end, read back as one.
pub async fn resume_after_short_body(store: Arc<dyn DataStore>) {
    let data = pattern(50_000, 2);
    let mut info = created(&store, data.len() as u64).await;
    append(&store, &mut info, &data[..12_345]).await;
    append(&store, &mut info, &data[12_345..]).await;
    info.store = store.finish(&info).await.expect("finish");
    let got = collect(store.read(&info, 0..data.len() as u64).await.expect("read")).await;
    assert_eq!(got, data);
}

/// Empty chunks are part of ordinary bodies (multipart parsers end a file part with one
/// when the closing boundary arrives in a later read): a body of only empty chunks
/// writes nothing and succeeds, and empty chunks between data are skipped.
pub async fn empty_chunks_write_nothing(store: Arc<dyn DataStore>) {
    use bytes::Bytes;
    use futures::StreamExt;
    let empty = || Ok(Bytes::new());
    let mut info = created(&store, 4).await;
    let nothing = futures::stream::iter(vec![empty(), empty(), empty()]).boxed();
    let w = store
        .write(&info, nothing)
        .await
        .expect("a body of empty chunks");
    assert_eq!(w.bytes, 0);
    info.store = w.store;
    let mixed = vec![
        empty(),
        Ok(Bytes::from_static(b"ab")),
        empty(),
        Ok(Bytes::from_static(b"cd")),
        empty(),
    ];
    let w = store
        .write(&info, futures::stream::iter(mixed).boxed())
        .await
        .expect("data between empty chunks");
    assert_eq!(w.bytes, 4);
    info.offset += w.bytes;
    info.store = w.store;
    info.store = store.finish(&info).await.expect("finish");
    assert_eq!(
        collect(store.read(&info, 0..4).await.expect("read")).await,
        b"abcd"
    );
}

/// Finishing is idempotent: a process that died after the store finished an upload but
/// before its record said so retries the last (empty) write and the finish, and both
/// succeed with the bytes intact. Below one part, exactly one 5 MiB part (nothing left
/// to send at the finish), and a part with a remainder.
pub async fn finish_survives_a_retry(store: Arc<dyn DataStore>) {
    for (seed, len) in [(6, 20_000), (7, 5 << 20), (8, (5 << 20) + 20_000)] {
        let data = pattern(len, seed);
        let mut info = created(&store, data.len() as u64).await;
        append(&store, &mut info, &data).await;
        store.finish(&info).await.expect("finish");
        // The record was never saved: the retry starts from the unfinished one.
        let w = store
            .write(&info, body_of(&[], 1))
            .await
            .expect("an empty write at the end, after the finish");
        assert_eq!(w.bytes, 0);
        info.store = store
            .finish(&info)
            .await
            .unwrap_or_else(|e| panic!("finish again ({len} bytes): {e}"));
        let got = collect(store.read(&info, 0..data.len() as u64).await.expect("read")).await;
        assert!(got == data, "{len} bytes: stored bytes differ");
    }
}

/// A write whose body fails leaves no bytes behind; the next write continues where the
/// last good one ended.
pub async fn failed_body_keeps_nothing(store: Arc<dyn DataStore>) {
    let data = pattern(30_000, 3);
    let mut info = created(&store, data.len() as u64).await;
    append(&store, &mut info, &data[..10_000]).await;
    let err = store.write(&info, broken_body(&pattern(5_000, 99))).await;
    assert!(err.is_err(), "a failing body must fail the write");
    append(&store, &mut info, &data[10_000..]).await;
    info.store = store.finish(&info).await.expect("finish");
    let got = collect(store.read(&info, 0..data.len() as u64).await.expect("read")).await;
    assert_eq!(got, data, "bytes of the failed write must not remain");
}

/// Bytes past the recorded offset (a crash before the state was saved) are dropped by the
/// next write.
pub async fn drops_bytes_past_recorded_offset(store: Arc<dyn DataStore>) {
    let data = pattern(20_000, 4);
    let mut info = created(&store, data.len() as u64).await;
    append(&store, &mut info, &pattern(15_000, 5)).await;
    // As after a crash: the state only knew about the first 5000 bytes.
    info.offset = 5_000;
    let mut expected = pattern(15_000, 5)[..5_000].to_vec();
    expected.extend_from_slice(&data[..15_000]);
    info.length = Some(expected.len() as u64);
    append(&store, &mut info, &data[..15_000]).await;
    info.store = store.finish(&info).await.expect("finish");
    let got = whole(&store, &info).await;
    assert_eq!(got, expected);
}

/// The same after a write that crossed a part boundary (5 MiB, the smallest S3 part)
/// and was never recorded: what it left behind (a part, a shorter remainder) is never
/// taken for the recorded bytes, whatever its length.
pub async fn ignores_a_lost_write_across_a_part(store: Arc<dyn DataStore>) {
    let (first, lost, rest) = (
        pattern(100_000, 50),
        pattern((5 << 20) + 200_000, 51),
        pattern((5 << 20) + 300_000, 52),
    );
    let expected = [first.as_slice(), &rest].concat();
    let mut info = created(&store, expected.len() as u64).await;
    append(&store, &mut info, &first).await;
    let recorded = info.clone();
    append(&store, &mut info, &lost).await;
    let mut info = recorded;
    append(&store, &mut info, &rest).await;
    info.store = store.finish(&info).await.expect("finish");
    let got = whole(&store, &info).await;
    assert!(
        got == expected,
        "stored bytes differ from the recorded ones"
    );
}

/// A range reads exactly those bytes; an empty range reads nothing.
pub async fn read_range(store: Arc<dyn DataStore>) {
    let data = pattern(64_000, 6);
    let info = finished(&store, &data).await;
    let got = collect(store.read(&info, 1000..50_001).await.expect("read")).await;
    assert_eq!(got, &data[1000..50_001]);
    let empty = collect(store.read(&info, 7..7).await.expect("read")).await;
    assert!(empty.is_empty());
}

/// Deleting twice, or deleting an upload never written to, succeeds.
pub async fn delete_is_idempotent(store: Arc<dyn DataStore>) {
    let info = finished(&store, &pattern(1000, 7)).await;
    store.delete(&info).await.expect("delete");
    store.delete(&info).await.expect("second delete");
    let never = created(&store, 10).await;
    store.delete(&never).await.expect("delete unwritten");
}

/// Native concatenation joins a 5 MiB part and a small one in order.
pub async fn native_concat_joins_parts(store: Arc<dyn DataStore>) -> Outcome {
    let Some(concat) = store.concat() else {
        // The engine streams the parts instead (engine suite).
        return Outcome::Skipped(format!(
            "{} store has no native concatenation",
            store.name()
        ));
    };
    // A first part of 5 MiB and more: large enough for S3 to copy it as a part.
    let a = pattern((5 << 20) + 10_000, 8);
    let b = pattern(3_333, 9);
    let parts = [finished(&store, &a).await, finished(&store, &b).await];
    let mut target = created(&store, (a.len() + b.len()) as u64).await;
    let Some(joined) = concat.concat(&target, &parts).await.expect("concat") else {
        return Outcome::Skipped(format!(
            "{} store declined to join a 5 MiB part and a small one",
            store.name()
        ));
    };
    target.store = joined;
    target.offset = (a.len() + b.len()) as u64;
    target.store = store.finish(&target).await.expect("finish");
    let got = collect(store.read(&target, 0..target.offset).await.expect("read")).await;
    assert_eq!(got, [a, b].concat());
    Outcome::Ran
}

/// The store side of browser-direct uploads; the whole flow, with a client putting the
/// parts, is the [`super::direct`] suite.
pub async fn direct_parts_are_signed_per_part(store: Arc<dyn DataStore>) -> Outcome {
    let Some(direct) = store.direct() else {
        return Outcome::Skipped(format!("{} store has no direct parts", store.name()));
    };
    assert!(direct.min_part_size() > 0);
    let mut info = sample_info(None);
    info.direct = true;
    info.store = store.create(&info).await.expect("create");
    let session = direct
        .session(&info)
        .expect("a direct upload has a session");
    assert!(!session.is_empty());
    let hour = Duration::from_secs(3600);
    let one = direct.sign_part(&info, 1, hour).expect("sign part 1");
    let two = direct.sign_part(&info, 2, hour).expect("sign part 2");
    assert!(!one.is_empty());
    assert_ne!(one, two, "a URL is for one part");
    let mut other = sample_info(None);
    other.direct = true;
    other.store = store.create(&other).await.expect("create");
    let elsewhere = direct.sign_part(&other, 1, hour).expect("sign");
    assert_ne!(one, elsewhere, "a URL is for one upload");
    assert!(direct.parts(&info).await.expect("parts").is_empty());
    store.delete(&info).await.expect("delete");
    store.delete(&info).await.expect("second delete");
    store.delete(&other).await.expect("delete");
    Outcome::Ran
}
