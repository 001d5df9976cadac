//! The records seam: where upload state lives, with the outbox of post-events that
//! describe its changes.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::error::Result;
use crate::hooks::HookEvent;
use crate::id::UploadId;
use crate::upload::UploadInfo;

/// A post-event waiting in the outbox, as [`StateStore::claim_events`] hands it out.
#[derive(Clone, Debug)]
pub struct OutboxEvent {
    /// Its place in the outbox: each upload's events are handed out in this order.
    pub seq: u64,
    /// Stable across every attempt, for the receiver to spot a repeat.
    pub key: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The event.
    pub event: HookEvent,
}

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
///
/// ## The outbox
///
/// - The `_with_event` forms save a post-event in the same commit as the change: both
///   or neither. A post-receive is folded into the upload's waiting post-receive when
///   one has never been handed out (progress is coalesced); anything else is appended.
/// - [`claim_events`](StateStore::claim_events) hands out, oldest first, only the
///   oldest unparked event of each upload, and only when it is due and not held; it
///   holds each for `hold`, so several instances never deliver one event at once, and
///   one that died holding an event frees it when the hold runs out.
/// - [`event_delivered`](StateStore::event_delivered) removes the event;
///   [`event_failed`](StateStore::event_failed) counts the attempt and releases the
///   event to be due again at `retry_at`, or parks it: it stays, counted by
///   [`parked_events`](StateStore::parked_events), and no longer holds back the
///   upload's later events.
#[async_trait]
pub trait StateStore: fmt::Debug + Send + Sync + 'static {
    /// A short name for logs and errors (`sqlite`, `memory`, `postgres`).
    fn name(&self) -> &'static str;
    /// Whether the store takes a write now, for readiness probes; the error says what
    /// is wrong.
    async fn check(&self) -> Result<()> {
        Ok(())
    }
    /// Saves a new record, and `event` with it.
    async fn insert_with_event(&self, info: &UploadInfo, event: Option<&HookEvent>) -> Result<()>;
    /// The current record of upload `id`.
    async fn get(&self, id: &UploadId) -> Result<UploadInfo>;
    /// Replaces the record if nobody changed it since `info` was read, and saves
    /// `event` with it; the stored record.
    async fn update_with_event(
        &self,
        info: &UploadInfo,
        event: Option<&HookEvent>,
    ) -> Result<UploadInfo>;
    /// Removes the record (only at `revision`, when given), and saves `event`.
    async fn remove_with_event(
        &self,
        id: &UploadId,
        revision: Option<u64>,
        event: Option<&HookEvent>,
    ) -> Result<()>;
    /// Up to `limit` open uploads that expired by `now`, for the collector to purge.
    async fn expired(&self, now: SystemTime, limit: usize) -> Result<Vec<UploadId>>;

    /// The finished uploads `owner` created, newest first, at most `limit`; pieces of a
    /// concatenation (tus partials, Resumable.js chunks) are not listed.
    async fn finished_of(&self, owner: &str, limit: usize) -> Result<Vec<UploadInfo>>;

    /// Up to `limit` events due by `now`, each held for `hold`.
    async fn claim_events(
        &self,
        now: SystemTime,
        hold: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>>;
    /// Event `seq` arrived: it leaves the outbox.
    async fn event_delivered(&self, seq: u64) -> Result<()>;
    /// Event `seq` failed once more: due again at `retry_at`, or parked.
    async fn event_failed(&self, seq: u64, retry_at: SystemTime, park: bool) -> Result<()>;
    /// How many events are parked.
    async fn parked_events(&self) -> Result<u64>;
    /// Unparks every parked event: each is due at `now` with its attempts counted from
    /// zero again. Returns how many.
    async fn replay_parked(&self, now: SystemTime) -> Result<u64>;

    /// Saves a new record.
    async fn insert(&self, info: &UploadInfo) -> Result<()> {
        self.insert_with_event(info, None).await
    }
    /// [`update_with_event`](StateStore::update_with_event) without an event.
    async fn update(&self, info: &UploadInfo) -> Result<UploadInfo> {
        self.update_with_event(info, None).await
    }
    /// Removes the record (only at `revision`, when given).
    async fn remove(&self, id: &UploadId, revision: Option<u64>) -> Result<()> {
        self.remove_with_event(id, revision, None).await
    }
}

/// A new outbox key: random, so no two events ever share one.
pub fn outbox_key() -> String {
    UploadId::generate().to_string()
}

/// Milliseconds since the epoch, for stores that keep times as numbers.
pub fn epoch_millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
