//! The records this process last wrote or read, so that a read (a HEAD above all) needs
//! no query, no lock on the reader connection and no JSON decoding.
//!
//! It stays coherent because every change to a record goes through this process's writer
//! connection, which tells the cache while it still holds that connection: the cache
//! learns of commits in commit order. A commit is announced before it becomes visible
//! and settled after (a sequence lock: the count is odd in between), and a record read
//! from the database is kept only if no commit began or was under way while it was being
//! read, so an older copy never replaces a newer one, nor brings back a removed one.
//! While a record's commit is under way its cached copy is not answered either: the
//! database's may already be newer, and a reader that saw that must not go back.
//!
//! The one change another process makes is `chunkd gc` purging an expired upload: a
//! cached copy that has expired is therefore never answered from here but read again,
//! and a quiet read that finds no record drops the copy. Several processes writing one
//! database need [`super::SqliteState::uncached`].

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

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
    /// The [key](Self::key) of the record whose commit is under way, or [`NONE`]: once
    /// visible, the database's copy is newer than the cached one until the commit
    /// settles, so a reader that saw the new one must not be answered the old one next.
    committing: AtomicU64,
    keys: RandomState,
}

const NONE: u64 = 0;

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
        self.cache.committing.store(NONE, Ordering::Release);
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
            committing: AtomicU64::new(NONE),
            keys: RandomState::new(),
        }
    }

    /// The cached record, unless a commit of it is under way or it has expired by `now`
    /// (another process may have purged it since).
    pub(super) fn get(&self, id: &UploadId, now: SystemTime) -> Option<UploadInfo> {
        if self.committing.load(Ordering::Acquire) == self.key(id) {
            return None;
        }
        self.records
            .get(id)
            .filter(|cached| !cached.info.is_expired(now))
            .map(|cached| (*cached.info).clone())
    }

    /// To be taken before reading a record from the database, for [`Self::fill`].
    pub(super) fn ticket(&self) -> Ticket {
        Ticket(*self.lock())
    }

    /// Keeps what a read from the database found of `id` (`None`: no record), unless a
    /// commit was under way at `ticket` or began since (the read may be older than that
    /// commit).
    pub(super) fn fill(&self, ticket: Ticket, id: &UploadId, found: Option<(&UploadInfo, usize)>) {
        let commits = self.lock();
        if !ticket.0.is_multiple_of(2) || *commits != ticket.0 {
            return;
        }
        match found {
            Some((info, json_len)) => self.records.insert(id.clone(), cached(info, json_len)),
            None => {
                self.records.remove(id);
            }
        }
    }

    /// Announces a commit that changes `id`'s record; to be called with the writer
    /// connection held, just before the commit makes the change visible.
    pub(super) fn commit(&self, id: &UploadId) -> Commit<'_> {
        let mut commits = self.lock();
        *commits += 1;
        self.committing.store(self.key(id), Ordering::Release);
        drop(commits);
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

    /// A hash of `id`, never [`NONE`]; two ids sharing one only cost a query.
    fn key(&self, id: &UploadId) -> u64 {
        self.keys.hash_one(id) | 1
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
