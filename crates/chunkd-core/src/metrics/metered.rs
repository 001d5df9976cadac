//! The store seams with every call timed: the engine wraps the stores it is given, so
//! each backend is measured the same way without knowing of metrics.
//!
//! Every method of the traits is forwarded here, defaults included: a default left to
//! itself would answer for the wrapped store.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use metrics::histogram;

use super::STORE_DURATION;
use crate::body::ByteStream;
use crate::error::Result;
use crate::hooks::{HookEvent, Location, Placement};
use crate::id::UploadId;
use crate::state::{OutboxEvent, StateStore};
use crate::store::{Concat, DataStore, DirectParts, Written};
use crate::upload::{StoreState, UploadInfo};

async fn timed<T>(
    store: &'static str,
    backend: &'static str,
    operation: &'static str,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let started = Instant::now();
    let result = call.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    histogram!(STORE_DURATION, "store" => store, "backend" => backend, "operation" => operation, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

/// A [`DataStore`] whose calls are timed (capabilities are handed through untimed).
#[derive(Debug)]
pub(crate) struct MeteredData(pub Arc<dyn DataStore>);

impl MeteredData {
    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        timed("data", self.0.name(), operation, call).await
    }
}

#[async_trait]
impl DataStore for MeteredData {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn create(&self, info: &UploadInfo) -> Result<StoreState> {
        self.timed("create", self.0.create(info)).await
    }
    async fn write(&self, info: &UploadInfo, body: ByteStream<'_>) -> Result<Written> {
        self.timed("write", self.0.write(info, body)).await
    }
    async fn finish(&self, info: &UploadInfo) -> Result<StoreState> {
        self.timed("finish", self.0.finish(info)).await
    }
    async fn read(&self, info: &UploadInfo, range: Range<u64>) -> Result<ByteStream<'static>> {
        self.timed("read", self.0.read(info, range)).await
    }
    async fn delete(&self, info: &UploadInfo) -> Result<()> {
        self.timed("delete", self.0.delete(info)).await
    }
    async fn check(&self) -> Result<()> {
        self.timed("check", self.0.check()).await
    }
    fn concat(&self) -> Option<&dyn Concat> {
        self.0.concat()
    }
    fn direct(&self) -> Option<&dyn DirectParts> {
        self.0.direct()
    }
    fn location(&self, info: &UploadInfo) -> Option<Location> {
        self.0.location(info)
    }
    fn place(&self, info: &UploadInfo, wanted: &Placement) -> Result<StoreState> {
        self.0.place(info, wanted)
    }
}

/// A [`StateStore`] whose calls are timed.
#[derive(Debug)]
pub(crate) struct MeteredState(pub Arc<dyn StateStore>);

impl MeteredState {
    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        timed("state", self.0.name(), operation, call).await
    }
}

#[async_trait]
impl StateStore for MeteredState {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn check(&self) -> Result<()> {
        self.timed("check", self.0.check()).await
    }
    async fn insert_with_event(&self, info: &UploadInfo, event: Option<&HookEvent>) -> Result<()> {
        self.timed("insert", self.0.insert_with_event(info, event))
            .await
    }
    async fn get(&self, id: &UploadId) -> Result<UploadInfo> {
        self.timed("get", self.0.get(id)).await
    }
    async fn finished_of(&self, owner: &str, limit: usize) -> Result<Vec<UploadInfo>> {
        self.timed("finished_of", self.0.finished_of(owner, limit))
            .await
    }
    async fn update_with_event(
        &self,
        info: &UploadInfo,
        event: Option<&HookEvent>,
    ) -> Result<UploadInfo> {
        self.timed("update", self.0.update_with_event(info, event))
            .await
    }
    async fn remove_with_event(
        &self,
        id: &UploadId,
        revision: Option<u64>,
        event: Option<&HookEvent>,
    ) -> Result<()> {
        self.timed("remove", self.0.remove_with_event(id, revision, event))
            .await
    }
    async fn expired(&self, now: SystemTime, limit: usize) -> Result<Vec<UploadId>> {
        self.timed("expired", self.0.expired(now, limit)).await
    }
    async fn claim_events(
        &self,
        now: SystemTime,
        hold: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        self.timed("claim_events", self.0.claim_events(now, hold, limit))
            .await
    }
    async fn event_delivered(&self, seq: u64) -> Result<()> {
        self.timed("event_delivered", self.0.event_delivered(seq))
            .await
    }
    async fn event_failed(&self, seq: u64, retry_at: SystemTime, park: bool) -> Result<()> {
        self.timed("event_failed", self.0.event_failed(seq, retry_at, park))
            .await
    }
    async fn parked_events(&self) -> Result<u64> {
        self.timed("parked_events", self.0.parked_events()).await
    }
    async fn replay_parked(&self, now: SystemTime) -> Result<u64> {
        self.timed("replay_parked", self.0.replay_parked(now)).await
    }
    async fn insert(&self, info: &UploadInfo) -> Result<()> {
        self.timed("insert", self.0.insert(info)).await
    }
    async fn update(&self, info: &UploadInfo) -> Result<UploadInfo> {
        self.timed("update", self.0.update(info)).await
    }
    async fn remove(&self, id: &UploadId, revision: Option<u64>) -> Result<()> {
        self.timed("remove", self.0.remove(id, revision)).await
    }
}
