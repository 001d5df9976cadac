//! The records seam: where upload state lives.

use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::Result;
use crate::id::UploadId;
use crate::upload::UploadInfo;

/// Where upload records are kept.
///
/// # Contract
///
/// - [`insert`](StateStore::insert) fails with `AlreadyExists` for a known id.
/// - [`get`](StateStore::get) fails with `NotFound` for an unknown id.
/// - [`update`](StateStore::update) is a compare-and-swap on `revision`: it stores the
///   record only if the stored revision equals `info.revision`, and returns the record
///   with the revision bumped. A stale revision gives `Conflict`; a missing record
///   `NotFound`. A successful update is durable when it returns.
/// - [`remove`](StateStore::remove) is idempotent; with `Some(revision)` it removes only
///   that revision (else `Conflict`), so a collector never deletes a record a writer just
///   changed.
/// - [`expired`](StateStore::expired) lists open uploads whose `expires_at` is at or
///   before `now`, at most `limit` of them.
#[async_trait]
pub trait StateStore: fmt::Debug + Send + Sync + 'static {
    /// A short name for logs and errors (`sqlite`, `memory`, `postgres`).
    fn name(&self) -> &'static str;
    /// Saves a new record.
    async fn insert(&self, info: &UploadInfo) -> Result<()>;
    /// The current record of upload `id`.
    async fn get(&self, id: &UploadId) -> Result<UploadInfo>;
    /// Replaces the record if nobody changed it since `info` was read; the stored record.
    async fn update(&self, info: &UploadInfo) -> Result<UploadInfo>;
    /// Removes the record (only at `revision`, when given).
    async fn remove(&self, id: &UploadId, revision: Option<u64>) -> Result<()>;
    /// Up to `limit` open uploads that expired by `now`, for the collector to purge.
    async fn expired(&self, now: SystemTime, limit: usize) -> Result<Vec<UploadId>>;
}
