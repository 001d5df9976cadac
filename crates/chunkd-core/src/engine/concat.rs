//! Concatenation: a final upload made of finished partial uploads, in order. Also how
//! out-of-order chunk protocols assemble files, so no store needs random-offset writes.

use std::collections::BTreeSet;

use super::{Finish, Uploads};
use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::owner::Owner;
use crate::upload::{ConcatKind, UploadInfo};

impl Uploads {
    /// Validates the parts of a new final upload and returns its length.
    pub(super) async fn final_length(&self, parts: &[UploadId], owner: &Owner) -> Result<u64> {
        if parts.is_empty() {
            return Err(Error::InvalidConcat("no partial uploads listed"));
        }
        if parts.len() > self.0.limits.max_concat_parts {
            return Err(Error::InvalidConcat(
                "more partial uploads than the server joins",
            ));
        }
        // A repeat would have the server write one partial's bytes again per listing.
        let mut seen = std::collections::HashSet::with_capacity(parts.len());
        if !parts.iter().all(|id| seen.insert(id)) {
            return Err(Error::InvalidConcat("a partial upload is listed twice"));
        }
        let mut total: u64 = 0;
        for id in parts {
            let part = match self.visible(id, owner).await {
                Ok(p) => p,
                Err(Error::NotFound(_) | Error::Expired(_)) => {
                    return Err(Error::InvalidConcat("partial upload not found"));
                }
                Err(e) => return Err(e),
            };
            if part.concat != ConcatKind::Partial {
                return Err(Error::InvalidConcat("not a partial upload"));
            }
            let length = part.length.ok_or(Error::InvalidConcat(
                "partial upload length is not known yet",
            ))?;
            total = total
                .checked_add(length)
                .ok_or(Error::InvalidLength("total length overflows"))?;
        }
        Ok(total)
    }

    /// Tells each unfinished part that `final_id` waits for it.
    pub(super) async fn register_final(
        &self,
        final_id: &UploadId,
        parts: &[UploadId],
    ) -> Result<()> {
        let distinct: BTreeSet<&UploadId> = parts.iter().collect();
        for id in distinct {
            let _lease = self.lock(id).await?;
            let mut part = self.record(id).await?;
            if !part.is_finished() && !part.pending_finals.contains(final_id) {
                part.pending_finals.push(final_id.clone());
                self.0.state.update(&part).await?;
            }
        }
        Ok(())
    }

    /// Concatenates a final upload if all its parts are finished; otherwise leaves it
    /// waiting for the last one.
    pub(super) async fn try_complete_final(&self, final_id: &UploadId) -> Result<()> {
        let mut lease = self.lock(final_id).await?;
        let mut target = match self.0.state.get(final_id).await {
            Ok(t) => t,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let ConcatKind::Final(part_ids) = target.concat.clone() else {
            return Ok(());
        };
        if target.is_finished() {
            return Ok(());
        }
        let mut parts = Vec::with_capacity(part_ids.len());
        for id in &part_ids {
            let part = self.0.state.get(id).await?;
            if !part.is_finished() {
                return Ok(());
            }
            parts.push(part);
        }
        let joined = match self.0.store.concat() {
            Some(native) => native.concat(&target, &parts).await?,
            None => None,
        };
        match joined {
            Some(store) => {
                target.store = store;
                target.offset = target.length.unwrap_or_default();
                target = self.0.state.update(&target).await?;
            }
            None => target = self.concat_by_streaming(target, &parts).await?,
        }
        self.finish(target, &mut lease, Finish::Store).await?;
        Ok(())
    }

    async fn concat_by_streaming(
        &self,
        mut target: UploadInfo,
        parts: &[UploadInfo],
    ) -> Result<UploadInfo> {
        // Where this part begins in the final; a join cut off by a crash continues at
        // the recorded offset, so no part's bytes are written twice.
        let mut start = 0;
        for part in parts {
            let length = part.length.unwrap_or(part.offset);
            let end = start + length;
            let from = target.offset.saturating_sub(start);
            start = end;
            if from >= length {
                continue;
            }
            let stream = self.0.store.read(part, from..length).await?;
            let written = self.0.store.write(&target, stream).await?;
            if written.bytes != length - from {
                return Err(Error::backend(
                    self.0.store.name(),
                    format!(
                        "partial {} yielded {} of {} bytes",
                        part.id,
                        written.bytes,
                        length - from
                    ),
                ));
            }
            target.offset += written.bytes;
            target.store = written.store;
            target = self.0.state.update(&target).await?;
        }
        Ok(target)
    }

    /// After a partial finishes, completes the finals that were waiting for it.
    pub(super) async fn complete_pending_finals(&self, part: &UploadInfo) {
        for final_id in &part.pending_finals {
            if let Err(err) = self.try_complete_final(final_id).await {
                tracing::error!(upload.id = %final_id, error = %err, "concatenation failed");
            }
        }
    }
}
