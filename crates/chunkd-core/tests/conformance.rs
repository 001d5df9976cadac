//! The in-memory implementations pass the public conformance suites.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use chunkd_core::memory::{MemoryLocker, MemoryState, MemoryStore};
use chunkd_core::testing::Fixture;
use chunkd_core::testing::direct::DirectEngine;
use chunkd_core::testing::engine::EngineParts;
use chunkd_core::{DataStore, Locker, StateStore};

async fn memory_store() -> Fixture<dyn DataStore> {
    Fixture::new(Arc::new(MemoryStore::new()))
}

async fn memory_direct_store() -> Fixture<dyn DataStore> {
    Fixture::new(Arc::new(MemoryStore::with_direct_parts(1024)))
}

async fn memory_state() -> Fixture<dyn StateStore> {
    Fixture::new(Arc::new(MemoryState::new()))
}

async fn memory_locker() -> Fixture<dyn Locker> {
    Fixture::new(Arc::new(MemoryLocker::new()))
}

async fn memory_engine() -> Fixture<EngineParts> {
    Fixture::new(Arc::new(EngineParts {
        store: Arc::new(MemoryStore::new()),
        state: Arc::new(MemoryState::new()),
    }))
}

async fn memory_direct_engine() -> Fixture<DirectEngine> {
    let store = Arc::new(MemoryStore::with_direct_parts(1024));
    Fixture::new(Arc::new(DirectEngine {
        store: store.clone(),
        state: Arc::new(MemoryState::new()),
        browser: store,
    }))
}

chunkd_core::data_store_suite!(memory_store, concat: no, direct: no);
chunkd_core::data_store_suite!(memory_direct_store, concat: no, direct: yes);
chunkd_core::state_store_suite!(memory_state);
chunkd_core::locker_suite!(memory_locker);
chunkd_core::engine_suite!(memory_engine);
chunkd_core::direct_parts_suite!(memory_direct_engine);
