//! Browser-direct uploads: clients send parts straight to the store with URLs the
//! engine has the store sign, and the engine keeps the record, so limits, owners,
//! hooks and expiry apply as to any upload.

use std::time::Duration;

use tracing::{Instrument, info_span};

use super::{Finish, Uploads};
use crate::error::{Error, Result};
use crate::hooks::Event;
use crate::id::UploadId;
use crate::owner::Owner;
use crate::store::{DirectParts, Part};
use crate::upload::UploadInfo;

/// S3's limit, and so every direct store's.
const MAX_PARTS: u16 = 10_000;

impl Uploads {
    /// Whether the store takes parts straight from clients.
    pub fn supports_direct(&self) -> bool {
        self.0.store.direct().is_some()
    }

    pub(super) fn direct_store(&self) -> Result<&dyn DirectParts> {
        self.0.store.direct().ok_or(Error::NotSupported(
            "clients sending parts straight to the store",
        ))
    }

    /// The record of a direct upload `owner` may see.
    async fn direct_info(&self, id: &UploadId, owner: &Owner) -> Result<UploadInfo> {
        let info = self.visible(id, owner).await?;
        if !info.direct {
            return Err(Error::NotFound(id.clone()));
        }
        Ok(info)
    }

    /// The store's name for a direct upload's multipart session, which clients quote.
    pub fn direct_session(&self, info: &UploadInfo) -> Option<String> {
        self.0.store.direct()?.session(info)
    }

    pub(super) async fn sign_part(
        &self,
        id: &UploadId,
        owner: &Owner,
        number: u16,
        valid_for: Duration,
    ) -> Result<String> {
        let store = self.direct_store()?;
        let info = self.direct_info(id, owner).await?;
        if info.is_finished() {
            return Err(Error::InvalidPart("the upload is already complete"));
        }
        if !(1..=MAX_PARTS).contains(&number) {
            return Err(Error::InvalidPart("part numbers run from 1 to 10000"));
        }
        // A part that starts past the largest allowed upload can only be refused later.
        if let Some(max) = self.max_size(&info)
            && u64::from(number - 1) * store.min_part_size() >= max.max(1)
        {
            return Err(Error::TooLarge { max });
        }
        store.sign_part(&info, number, valid_for)
    }

    pub(super) async fn direct_parts(&self, id: &UploadId, owner: &Owner) -> Result<Vec<Part>> {
        let store = self.direct_store()?;
        let info = self.direct_info(id, owner).await?;
        if info.is_finished() {
            return Ok(Vec::new());
        }
        store.parts(&info).await
    }

    pub(super) async fn complete_direct(
        &self,
        id: &UploadId,
        owner: &Owner,
        named: &[(u16, String)],
    ) -> Result<UploadInfo> {
        async {
            let store = self.direct_store()?;
            let (mut lease, mut info) = self.lock_visible(id, owner).await?;
            if !info.direct {
                return Err(Error::NotFound(id.clone()));
            }
            if info.is_finished() {
                return Ok(info);
            }
            let stored = store.parts(&info).await?;
            let parts = matching_parts(named, &stored)?;
            let size: u64 = parts.iter().map(|p| p.size).sum();
            if let Some(length) = info.length
                && length != size
            {
                return Err(Error::InvalidLength(
                    "the parts do not add up to the declared size",
                ));
            }
            if let Err(too_large) = self.check_size(&info, size) {
                // Nothing of an oversized upload is kept.
                self.0.store.delete(&info).await?;
                let event = self.post_event(crate::hooks::HookKind::PostTerminate, &info);
                self.0
                    .state
                    .remove_with_event(id, None, event.as_ref())
                    .await?;
                self.outbox_written(&event);
                self.emit(Event::Terminated(info.clone()));
                return Err(too_large);
            }
            info.offset = size;
            info.length = Some(size);
            tracing::debug!(
                upload.length = size,
                parts = parts.len(),
                "direct parts named"
            );
            self.finish(info, &mut lease, Finish::Direct(store, &parts))
                .await
        }
        .instrument(info_span!("upload.complete_direct", upload.id = %id))
        .await
    }
}

/// The named parts, numbered 1..n without gaps, each as the store holds it.
fn matching_parts(named: &[(u16, String)], stored: &[Part]) -> Result<Vec<Part>> {
    if named.is_empty() {
        return Err(Error::InvalidPart("no parts named"));
    }
    let mut named = named.to_vec();
    named.sort_by_key(|(n, _)| *n);
    let unquote = |e: &str| e.trim_matches('"').to_owned();
    named
        .iter()
        .enumerate()
        .map(|(i, (number, etag))| {
            if usize::from(*number) != i + 1 {
                return Err(Error::InvalidPart(
                    "parts must be numbered 1, 2, 3, ... without gaps",
                ));
            }
            // A store that lists no ETags (some S3-compatible services) leaves the
            // check to its own completion, which refuses a wrong one.
            stored
                .iter()
                .find(|p| {
                    p.number == *number && (p.etag.is_empty() || unquote(&p.etag) == unquote(etag))
                })
                .map(|p| Part {
                    etag: etag.clone(),
                    ..p.clone()
                })
                .ok_or(Error::InvalidPart(
                    "a named part is not stored with that ETag",
                ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use crate::memory::{MemoryState, MemoryStore};
    use crate::{Error, NewUpload, Owner, Uploads};

    #[tokio::test]
    async fn direct_uploads_need_a_store_with_direct_parts() {
        let uploads =
            Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build();
        let new = NewUpload {
            direct: true,
            ..Default::default()
        };
        let r = uploads.for_owner(Owner::anonymous()).create(new).await;
        assert!(matches!(r, Err(Error::NotSupported(_))), "{r:?}");
    }
}
