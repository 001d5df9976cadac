use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::state::StateStore;
use crate::upload::UploadInfo;

/// Keeps upload records in memory.
#[derive(Debug, Default)]
pub struct MemoryState {
    records: Mutex<HashMap<UploadId, UploadInfo>>,
}

impl MemoryState {
    /// An empty state store, lost when the process exits.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<UploadId, UploadInfo>) -> Result<T>,
    ) -> Result<T> {
        let mut records = self
            .records
            .lock()
            .map_err(|_| Error::backend("memory", "poisoned lock"))?;
        f(&mut records)
    }
}

#[async_trait]
impl StateStore for MemoryState {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn insert(&self, info: &UploadInfo) -> Result<()> {
        self.with(|r| {
            if r.contains_key(&info.id) {
                return Err(Error::AlreadyExists(info.id.clone()));
            }
            r.insert(info.id.clone(), info.clone());
            Ok(())
        })
    }

    async fn get(&self, id: &UploadId) -> Result<UploadInfo> {
        self.with(|r| {
            r.get(id)
                .cloned()
                .ok_or_else(|| Error::NotFound(id.clone()))
        })
    }

    async fn update(&self, info: &UploadInfo) -> Result<UploadInfo> {
        self.with(|r| {
            let stored = r
                .get_mut(&info.id)
                .ok_or_else(|| Error::NotFound(info.id.clone()))?;
            if stored.revision != info.revision {
                return Err(Error::Conflict);
            }
            let mut next = info.clone();
            next.revision += 1;
            *stored = next.clone();
            Ok(next)
        })
    }

    async fn remove(&self, id: &UploadId, revision: Option<u64>) -> Result<()> {
        self.with(|r| {
            match (r.get(id), revision) {
                (Some(stored), Some(rev)) if stored.revision != rev => return Err(Error::Conflict),
                _ => {}
            }
            r.remove(id);
            Ok(())
        })
    }

    async fn expired(&self, now: SystemTime, limit: usize) -> Result<Vec<UploadId>> {
        self.with(|r| {
            Ok(r.values()
                .filter(|i| i.is_expired(now))
                .take(limit)
                .map(|i| i.id.clone())
                .collect())
        })
    }
}
