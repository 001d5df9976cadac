//! [`StateStore`] contract cases.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::sample_info;
use crate::error::Error;
use crate::id::UploadId;
use crate::state::StateStore;
use crate::upload::Status;

/// A record comes back as inserted, binary metadata and store bookkeeping included.
pub async fn insert_then_get_round_trips(state: Arc<dyn StateStore>) {
    let mut info = sample_info(Some(42));
    info.metadata.insert("filename", "a b.txt");
    info.metadata.insert("bin", vec![0u8, 255, 10]);
    info.store.insert("path".into(), "x".into());
    state.insert(&info).await.expect("insert");
    let got = state.get(&info.id).await.expect("get");
    // Timestamps may lose sub-microsecond precision in a store; compare the rest exactly.
    assert_eq!(got.metadata, info.metadata);
    assert_eq!(got.store, info.store);
    assert_eq!((got.length, got.offset, got.revision), (Some(42), 0, 0));
}

/// Inserting a known id is `AlreadyExists`.
pub async fn insert_twice_is_already_exists(state: Arc<dyn StateStore>) {
    let info = sample_info(None);
    state.insert(&info).await.expect("insert");
    assert!(matches!(
        state.insert(&info).await,
        Err(Error::AlreadyExists(_))
    ));
}

/// An unknown id is `NotFound`.
pub async fn get_unknown_is_not_found(state: Arc<dyn StateStore>) {
    let id = UploadId::generate();
    assert!(matches!(state.get(&id).await, Err(Error::NotFound(_))));
}

/// An update bumps the revision; a stale revision is `Conflict` and changes nothing; a
/// missing record is `NotFound`.
pub async fn update_is_compare_and_swap(state: Arc<dyn StateStore>) {
    let mut info = sample_info(Some(10));
    state.insert(&info).await.expect("insert");
    info.offset = 5;
    let updated = state.update(&info).await.expect("update");
    assert_eq!(updated.revision, info.revision + 1);
    assert_eq!(state.get(&info.id).await.expect("get").offset, 5);
    // `info` still carries the old revision: a stale writer.
    info.offset = 7;
    assert!(matches!(state.update(&info).await, Err(Error::Conflict)));
    assert_eq!(state.get(&info.id).await.expect("get").offset, 5);
    let missing = sample_info(None);
    assert!(matches!(
        state.update(&missing).await,
        Err(Error::NotFound(_))
    ));
}

/// Removing at a stale revision is `Conflict`; at the current one it removes, and again
/// it still succeeds.
pub async fn remove_is_idempotent_and_conditional(state: Arc<dyn StateStore>) {
    let info = sample_info(Some(1));
    state.insert(&info).await.expect("insert");
    let updated = state.update(&info).await.expect("update");
    assert!(matches!(
        state.remove(&info.id, Some(info.revision)).await,
        Err(Error::Conflict)
    ));
    state
        .remove(&info.id, Some(updated.revision))
        .await
        .expect("remove");
    state.remove(&info.id, None).await.expect("remove again");
    assert!(matches!(state.get(&info.id).await, Err(Error::NotFound(_))));
}

/// Only open uploads past their expiry are listed: not fresh, never-expiring or finished
/// ones.
pub async fn expired_lists_only_expired_open_uploads(state: Arc<dyn StateStore>) {
    let now = SystemTime::now();
    let mut old = sample_info(Some(1));
    old.expires_at = Some(now - Duration::from_secs(10));
    let mut fresh = sample_info(Some(1));
    fresh.expires_at = Some(now + Duration::from_secs(3600));
    let mut never = sample_info(Some(1));
    never.expires_at = None;
    let mut done = sample_info(Some(1));
    done.expires_at = Some(now - Duration::from_secs(10));
    done.status = Status::Finished;
    for i in [&old, &fresh, &never, &done] {
        state.insert(i).await.expect("insert");
    }
    let expired = state.expired(now, 100).await.expect("expired");
    assert!(expired.contains(&old.id));
    assert!(!expired.contains(&fresh.id));
    assert!(!expired.contains(&never.id));
    assert!(!expired.contains(&done.id));
}

/// An owner's finished uploads come newest first, without their unfinished ones, pieces
/// of concatenations, or anybody else's.
pub async fn finished_of_lists_an_owners_finished_uploads_newest_first(state: Arc<dyn StateStore>) {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let upload = |owner: Option<&str>, finished: bool, age_secs: u64| {
        let mut info = sample_info(Some(10));
        info.owner = owner.map(str::to_owned);
        info.created_at = start - Duration::from_secs(age_secs);
        if finished {
            info.status = Status::Finished;
            info.offset = 10;
        }
        info
    };
    let older = upload(Some("alice"), true, 20);
    let newer = upload(Some("alice"), true, 10);
    let unfinished = upload(Some("alice"), false, 0);
    let mut piece = upload(Some("alice"), true, 0);
    piece.concat = crate::upload::ConcatKind::Partial;
    let bobs = upload(Some("bob"), true, 0);
    let anonymous = upload(None, true, 0);
    for info in [&older, &newer, &unfinished, &piece, &bobs, &anonymous] {
        state.insert(info).await.expect("insert");
    }
    let ids = |list: Vec<crate::upload::UploadInfo>| -> Vec<UploadId> {
        list.into_iter().map(|u| u.id).collect()
    };
    assert_eq!(
        ids(state.finished_of("alice", 10).await.expect("list")),
        vec![newer.id.clone(), older.id.clone()]
    );
    assert_eq!(
        ids(state.finished_of("alice", 1).await.expect("list")),
        vec![newer.id]
    );
    assert!(
        state
            .finished_of("carol", 10)
            .await
            .expect("list")
            .is_empty()
    );
}
