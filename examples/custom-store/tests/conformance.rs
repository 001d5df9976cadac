//! The chunk-directory store passes chunkd's public conformance suites: the data store
//! contract on its own, and every engine scenario with it underneath.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use chunkd_core::DataStore;
use chunkd_core::memory::MemoryState;
use chunkd_core::testing::Fixture;
use chunkd_core::testing::engine::EngineParts;
use custom_store::ChunkDirStore;

/// A store in a fresh temp dir, which lives as long as the fixture.
fn store() -> (Arc<ChunkDirStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ChunkDirStore::new(dir.path().join("uploads")).expect("store");
    (Arc::new(store), dir)
}

async fn chunk_dir() -> Fixture<dyn DataStore> {
    let (store, dir) = store();
    Fixture::new(store as Arc<dyn DataStore>).keeping(dir)
}

async fn chunk_dir_engine() -> Fixture<EngineParts> {
    let (store, dir) = store();
    let parts = EngineParts {
        store,
        state: Arc::new(MemoryState::new()),
    };
    Fixture::new(Arc::new(parts)).keeping(dir)
}

chunkd_core::data_store_suite!(chunk_dir, concat: no, direct: no);
chunkd_core::engine_suite!(chunk_dir_engine);
