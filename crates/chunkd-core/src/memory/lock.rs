use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{OwnedMutexGuard, watch};

use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::lock::{Lease, Locker};

/// Per-upload locks within one process; newest request wins.
#[derive(Debug, Default)]
pub struct MemoryLocker {
    entries: Arc<Mutex<HashMap<UploadId, Arc<Entry>>>>,
}

#[derive(Debug)]
struct Entry {
    mutex: Arc<tokio::sync::Mutex<()>>,
    /// Bumped by every request that has to wait; the holder watches it.
    requests: watch::Sender<u64>,
    waiting: Arc<AtomicUsize>,
}

/// Releases the lock, then forgets the entry if nobody else holds or wants it.
struct Held {
    guard: Option<OwnedMutexGuard<()>>,
    entry: Arc<Entry>,
    id: UploadId,
    entries: Arc<Mutex<HashMap<UploadId, Arc<Entry>>>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Ok(mut entries) = self.entries.lock() {
            // Ours and the map's are the only references: nobody waits.
            if Arc::strong_count(&self.entry) == 2 {
                entries.remove(&self.id);
            }
        }
    }
}

impl MemoryLocker {
    /// An empty locker; its locks hold within this process only.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&self, id: &UploadId) -> Result<Arc<Entry>> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| Error::backend("memory", "poisoned lock"))?;
        Ok(entries
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(Entry {
                    mutex: Arc::new(tokio::sync::Mutex::new(())),
                    requests: watch::channel(0).0,
                    waiting: Arc::new(AtomicUsize::new(0)),
                })
            })
            .clone())
    }
}

impl MemoryLocker {
    fn lease(&self, id: &UploadId, entry: Arc<Entry>, guard: OwnedMutexGuard<()>) -> Lease {
        let mut requests = entry.requests.subscribe();
        let waiting = entry.waiting.clone();
        let contended = async move {
            // Someone queued behind the previous holder is newer than us, too.
            if waiting.load(Ordering::SeqCst) > 0 {
                return;
            }
            if requests.changed().await.is_err() {
                futures::future::pending::<()>().await;
            }
        };
        let held = Held {
            guard: Some(guard),
            entry,
            id: id.clone(),
            entries: self.entries.clone(),
        };
        Lease::new(held, contended)
    }
}

#[async_trait]
impl Locker for MemoryLocker {
    async fn lock(&self, id: &UploadId, timeout: Duration) -> Result<Lease> {
        let entry = self.entry(id)?;
        let guard = match entry.mutex.clone().try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => {
                entry.waiting.fetch_add(1, Ordering::SeqCst);
                entry.requests.send_modify(|n| *n += 1);
                let acquired =
                    tokio::time::timeout(timeout, entry.mutex.clone().lock_owned()).await;
                entry.waiting.fetch_sub(1, Ordering::SeqCst);
                acquired.map_err(|_| Error::Locked)?
            }
        };
        Ok(self.lease(id, entry, guard))
    }

    async fn try_lock(&self, id: &UploadId) -> Result<Option<Lease>> {
        let entry = self.entry(id)?;
        let Ok(guard) = entry.mutex.clone().try_lock_owned() else {
            return Ok(None);
        };
        Ok(Some(self.lease(id, entry, guard)))
    }
}
