//! The records this process last wrote or read, so that a read (a HEAD above all) needs
//! no query, no lock on the reader connection and no JSON decoding.
//!
//! It stays coherent because every change to a record goes through this process's writer
//! connection, which tells the cache while it still holds that connection: the cache
//! learns of commits in commit order. A record read from the database is kept only if no
//! commit happened while it was being read, so an older copy never replaces a newer one,
//! nor brings back a removed one. The one change another process makes is `chunkd gc`
//! purging an expired upload, which a cached copy answers as expired too. Several
//! processes writing one database need [`super::SqliteState::uncached`].

use std::sync::{Arc, Mutex};

use chunkd_core::{UploadId, UploadInfo};
use quick_cache::Weighter;

/// The memory the cached records may take, counted as their JSON's length: about 8,000
/// typical records, a small share of the server's footprint.
const CAPACITY_BYTES: u64 = 8 << 20;
/// A guess of the typical record's length, for sizing the cache's tables.
const TYPICAL_RECORD_BYTES: u64 = 512;

#[derive(Clone)]
struct Cached {
    info: Arc<UploadInfo>,
    weight: u64,
}

#[derive(Clone)]
struct ByLength;

impl Weighter<UploadId, Cached> for ByLength {
    fn weight(&self, _: &UploadId, cached: &Cached) -> u64 {
        cached.weight
    }
}

pub(super) struct RecordCache {
    records: quick_cache::sync::Cache<UploadId, Cached, ByLength>,
    /// Commits seen so far; held while a commit or a fill changes `records`.
    commits: Mutex<u64>,
}

impl std::fmt::Debug for RecordCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCache")
            .field("records", &self.records.len())
            .finish()
    }
}

/// What a reader notes before it queries: the commits seen so far.
#[derive(Clone, Copy)]
pub(super) struct Ticket(u64);

impl RecordCache {
    pub(super) fn new() -> Self {
        RecordCache {
            records: quick_cache::sync::Cache::with_weighter(
                (CAPACITY_BYTES / TYPICAL_RECORD_BYTES) as usize,
                CAPACITY_BYTES,
                ByLength,
            ),
            commits: Mutex::new(0),
        }
    }

    pub(super) fn get(&self, id: &UploadId) -> Option<UploadInfo> {
        self.records.get(id).map(|cached| (*cached.info).clone())
    }

    /// To be taken before reading a record from the database, for [`Self::fill`].
    pub(super) fn ticket(&self) -> Ticket {
        Ticket(*self.lock())
    }

    /// Keeps a record read from the database, unless a commit happened since `ticket`
    /// (it may be older than that commit's record) or another reader kept one already.
    pub(super) fn fill(&self, ticket: Ticket, info: &UploadInfo, json_len: usize) {
        let commits = self.lock();
        if *commits == ticket.0 && self.records.peek(&info.id).is_none() {
            self.records.insert(info.id.clone(), cached(info, json_len));
        }
    }

    /// A committed insert or update. Called with the writer connection held.
    pub(super) fn committed(&self, info: &UploadInfo, json_len: usize) {
        let mut commits = self.lock();
        *commits += 1;
        self.records.insert(info.id.clone(), cached(info, json_len));
    }

    /// A committed removal, or a write refused because the database's record is not the
    /// one cached. Called with the writer connection held.
    pub(super) fn forget(&self, id: &UploadId) {
        let mut commits = self.lock();
        *commits += 1;
        self.records.remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        // The guarded counter is always whole: a panic elsewhere leaves it usable.
        self.commits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn cached(info: &UploadInfo, json_len: usize) -> Cached {
    Cached {
        info: Arc::new(info.clone()),
        weight: json_len as u64,
    }
}
