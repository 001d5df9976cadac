//! The records this process last wrote or read, so that a read (a HEAD above all) needs
//! no query, no lock on the reader connection and no JSON decoding.
//!
//! It stays coherent because every change to a record goes through this process's writer
//! connection, which tells the cache while it still holds that connection: the cache
//! learns of commits in commit order. A commit is announced before it becomes visible
//! and settled after (a sequence lock: the count is odd in between), and a record read
//! from the database is kept only if no commit began or was under way while it was being
//! read, so an older copy never replaces a newer one, nor brings back a removed one. The one change another process makes is `chunkd gc`
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
    /// Commits begun plus commits settled: odd while one is under way. Held while a
    /// commit or a fill changes `records`.
    commits: Mutex<u64>,
}

impl std::fmt::Debug for RecordCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCache")
            .field("records", &self.records.len())
            .finish()
    }
}

/// What a reader notes before it queries: the commit count then.
#[derive(Clone, Copy)]
pub(super) struct Ticket(u64);

/// A commit under way on the writer connection. Dropped without [`Commit::stored`]
/// (a removal, or a commit that failed), it forgets the record.
pub(super) struct Commit<'a> {
    cache: &'a RecordCache,
    id: UploadId,
    stored: Option<Cached>,
}

impl Commit<'_> {
    /// The commit succeeded with `info` as the record.
    pub(super) fn stored(mut self, info: &UploadInfo, json_len: usize) {
        self.stored = Some(cached(info, json_len));
    }
}

impl Drop for Commit<'_> {
    fn drop(&mut self) {
        let mut commits = self.cache.lock();
        *commits += 1;
        match self.stored.take() {
            Some(cached) => self.cache.records.insert(self.id.clone(), cached),
            None => {
                self.cache.records.remove(&self.id);
            }
        }
    }
}

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

    /// Keeps a record read from the database, unless a commit was under way at `ticket`
    /// or began since (the record may be older than that commit's), or another reader
    /// kept one already.
    pub(super) fn fill(&self, ticket: Ticket, info: &UploadInfo, json_len: usize) {
        let commits = self.lock();
        let quiet = ticket.0.is_multiple_of(2) && *commits == ticket.0;
        if quiet && self.records.peek(&info.id).is_none() {
            self.records.insert(info.id.clone(), cached(info, json_len));
        }
    }

    /// Announces a commit that changes `id`'s record; to be called with the writer
    /// connection held, just before the commit makes the change visible.
    pub(super) fn commit(&self, id: &UploadId) -> Commit<'_> {
        *self.lock() += 1;
        Commit {
            cache: self,
            id: id.clone(),
            stored: None,
        }
    }

    /// Drops the copy of a record the database did not hold as the caller thought (a
    /// refused write). Called with the writer connection held.
    pub(super) fn forget(&self, id: &UploadId) {
        let mut commits = self.lock();
        *commits += 2;
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
