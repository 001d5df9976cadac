//! The embedded state store's record cache stays coherent: readers racing commits never
//! keep an older record than one committed, and an upload another process (`chunkd gc`)
//! purged is unknown to the server too.
#![cfg(feature = "sqlite")]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chunkd_backends::{FsStore, SqliteState, SyncPolicy};
use chunkd_core::testing::sample_info;
use chunkd_core::{Error, Owner, StateStore, Uploads};

fn open(dir: &std::path::Path) -> SqliteState {
    SqliteState::open(dir.join("state.sqlite3"), SyncPolicy::Never).expect("sqlite")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_racing_commits_never_see_a_record_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    let first = sample_info(Some(1 << 20));
    state.insert(&first).await.unwrap();
    let id = first.id.clone();
    const COMMITS: u64 = 300;

    let writer = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut info = first;
            for _ in 0..COMMITS {
                let stale = info.clone();
                info.offset += 1;
                info = state.update(&info).await.unwrap();
                // A writer holding an old record is refused, and the cache drops its
                // copy: the next reads miss and fill from the database while commits go on.
                assert!(matches!(state.update(&stale).await, Err(Error::Conflict)));
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (state, id) = (state.clone(), id.clone());
            tokio::spawn(async move {
                let mut seen = 0;
                let mut reads = 0u64;
                while seen < COMMITS {
                    let got = state.get(&id).await.unwrap();
                    assert!(got.revision >= seen, "{} after {seen}", got.revision);
                    assert_eq!(got.offset, got.revision, "a record as committed");
                    seen = got.revision;
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    writer.await.unwrap();
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
    let uncached = open(dir.path()).uncached();
    assert_eq!(uncached.get(&id).await.unwrap().revision, COMMITS);
    assert_eq!(state.get(&id).await.unwrap().revision, COMMITS);
}

#[tokio::test]
async fn an_upload_purged_by_another_process_is_unknown_to_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let engine = |state: SqliteState| {
        let store = FsStore::new(dir.path().join("files"), SyncPolicy::Never).unwrap();
        Uploads::builder(Arc::new(store), Arc::new(state)).build()
    };
    // An unfinished upload whose expiry has passed, written through the server's state
    // (so the server caches it).
    let mut info = sample_info(Some(10));
    info.expires_at = Some(SystemTime::now() - Duration::from_secs(1));
    let server_state = open(dir.path());
    server_state.insert(&info).await.unwrap();
    let server = engine(server_state);
    let gc = engine(open(dir.path()));
    let uncached = open(dir.path()).uncached();
    let caller = server.for_owner(Owner::anonymous());
    assert!(matches!(
        caller.info(&info.id).await,
        Err(Error::Expired(_))
    ));

    assert_eq!(gc.purge_expired().await.unwrap(), 1);
    assert!(matches!(
        uncached.get(&info.id).await,
        Err(Error::NotFound(_))
    ));
    // The server's cached copy has expired, so the server reads the database again.
    assert!(matches!(
        caller.info(&info.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        caller.info(&info.id).await,
        Err(Error::NotFound(_))
    ));
}
