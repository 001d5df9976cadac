use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use crate::body::ByteStream;
use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::store::{DataStore, DirectParts, Written};
use crate::upload::{StoreState, UploadInfo};

use super::direct::Direct;

/// Keeps upload bytes in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    files: Mutex<HashMap<UploadId, Vec<u8>>>,
    pub(super) direct: Option<Direct>,
}

impl MemoryStore {
    /// An empty store without browser-direct parts, lost when the process exits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that also takes parts straight from clients ([`DirectParts`]), with S3's
    /// rules scaled down: every part but the last at least `min_part_size` bytes. A test
    /// plays the browser with [`MemoryStore::put_part`].
    pub fn with_direct_parts(min_part_size: u64) -> Self {
        MemoryStore {
            files: Mutex::default(),
            direct: Some(Direct::new(min_part_size)),
        }
    }

    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<UploadId, Vec<u8>>) -> T,
    ) -> Result<T> {
        let mut files = self
            .files
            .lock()
            .map_err(|_| Error::backend("memory", "poisoned lock"))?;
        Ok(f(&mut files))
    }
}

#[async_trait]
impl DataStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn create(&self, info: &UploadInfo) -> Result<StoreState> {
        self.with(|f| match f.entry(info.id.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => {
                Err(Error::AlreadyExists(info.id.clone()))
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Vec::new());
                Ok(())
            }
        })??;
        match &self.direct {
            Some(direct) if info.direct => direct.open(&info.id),
            _ => Ok(StoreState::new()),
        }
    }

    async fn write(&self, info: &UploadInfo, mut body: ByteStream<'_>) -> Result<Written> {
        let mut received = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::backend("memory", e))?;
            received.extend_from_slice(&chunk);
        }
        let offset = info.offset as usize;
        self.with(|files| {
            let data = files
                .get_mut(&info.id)
                .ok_or_else(|| Error::NotFound(info.id.clone()))?;
            if data.len() < offset {
                return Err(Error::backend(
                    "memory",
                    "stored data is shorter than the offset",
                ));
            }
            data.truncate(offset);
            data.extend_from_slice(&received);
            Ok(Written {
                bytes: received.len() as u64,
                store: info.store.clone(),
            })
        })?
    }

    async fn finish(&self, info: &UploadInfo) -> Result<StoreState> {
        Ok(info.store.clone())
    }

    async fn read(&self, info: &UploadInfo, range: Range<u64>) -> Result<ByteStream<'static>> {
        let bytes = self.with(|files| {
            files
                .get(&info.id)
                .and_then(|d| d.get(range.start as usize..range.end as usize))
                .map(Bytes::copy_from_slice)
                .ok_or_else(|| Error::NotFound(info.id.clone()))
        })??;
        Ok(futures::stream::iter([Ok(bytes)]).boxed())
    }

    async fn delete(&self, info: &UploadInfo) -> Result<()> {
        self.with(|f| f.remove(&info.id))?;
        if let Some(direct) = &self.direct {
            direct.close(&info.id)?;
        }
        Ok(())
    }

    fn direct(&self) -> Option<&dyn DirectParts> {
        self.direct.as_ref().map(|_| self as &dyn DirectParts)
    }
}
