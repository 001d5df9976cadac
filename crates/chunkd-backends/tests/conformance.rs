//! The disk store and the embedded state store pass the public conformance suites.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use chunkd_backends::{FsStore, SqliteState, SyncPolicy};
use chunkd_core::testing::Fixture;
use chunkd_core::testing::engine::EngineParts;
use chunkd_core::{DataStore, StateStore};

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

async fn fs() -> Fixture<dyn DataStore> {
    let dir = temp();
    let store = FsStore::new(dir.path().join("files"), SyncPolicy::Always).expect("fs store");
    Fixture::new(Arc::new(store) as Arc<dyn DataStore>).keeping(dir)
}

async fn sqlite() -> Fixture<dyn StateStore> {
    let dir = temp();
    let state =
        SqliteState::open(dir.path().join("state.sqlite3"), SyncPolicy::Always).expect("sqlite");
    Fixture::new(Arc::new(state) as Arc<dyn StateStore>).keeping(dir)
}

async fn sqlite_uncached() -> Fixture<dyn StateStore> {
    let dir = temp();
    let state = SqliteState::open(dir.path().join("state.sqlite3"), SyncPolicy::Never)
        .expect("sqlite")
        .uncached();
    Fixture::new(Arc::new(state) as Arc<dyn StateStore>).keeping(dir)
}

async fn fs_sqlite() -> Fixture<EngineParts> {
    let dir = temp();
    let parts = EngineParts {
        store: Arc::new(
            FsStore::new(dir.path().join("files"), SyncPolicy::Never).expect("fs store"),
        ),
        state: Arc::new(
            SqliteState::open(dir.path().join("state.sqlite3"), SyncPolicy::Never).expect("sqlite"),
        ),
    };
    Fixture::new(Arc::new(parts)).keeping(dir)
}

chunkd_core::data_store_suite!(fs, concat: yes, direct: no);
chunkd_core::state_store_suite!(sqlite);
chunkd_core::state_store_suite!(sqlite_uncached);
chunkd_core::engine_suite!(fs_sqlite);
