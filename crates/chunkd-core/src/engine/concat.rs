//! Concatenation: a final upload made of finished partial uploads, in order. Also how
//! out-of-order chunk protocols assemble files, so no store needs random-offset writes.

use std::collections::BTreeSet;
use std::time::SystemTime;

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

    /// Tells each unfinished part that `final_id` waits for it, and keeps each finished
    /// one alive past the final's expiry (see `keep_past`).
    pub(super) async fn register_final(
        &self,
        final_id: &UploadId,
        parts: &[UploadId],
        final_expiry: Option<SystemTime>,
    ) -> Result<()> {
        let distinct: BTreeSet<&UploadId> = parts.iter().collect();
        for id in distinct {
            let _lease = self.lock(id).await?;
            let mut part = self.record(id).await?;
            if !part.is_finished() && !part.pending_finals.contains(final_id) {
                part.pending_finals.push(final_id.clone());
                self.0.state.update(&part).await?;
            } else if part.is_finished() {
                self.keep_past(part, final_expiry).await?;
            }
        }
        Ok(())
    }

    /// A finished part of a waiting final expires one `expire_after` after the final:
    /// gc then always looks at the final first, and only the final knows whether a client
    /// is still writing one of its parts.
    async fn keep_past(
        &self,
        mut part: UploadInfo,
        final_expiry: Option<SystemTime>,
    ) -> Result<()> {
        let until = final_expiry
            .zip(self.0.limits.expire_after)
            .map(|(t, d)| t + d);
        if until.is_some() && part.expires_at < until {
            part.expires_at = until;
            self.0.state.update(&part).await?;
        }
        Ok(())
    }

    /// Whether gc must keep `info`, an expired upload, because it is a final still
    /// waiting for a part a client writes (unfinished, not expired). If so its expiry,
    /// and its finished parts', move on by one `expire_after`.
    pub(super) async fn keep_waiting_final(
        &self,
        info: &UploadInfo,
        now: SystemTime,
    ) -> Result<bool> {
        let ConcatKind::Final(part_ids) = &info.concat else {
            return Ok(false);
        };
        if info.is_finished() {
            return Ok(false);
        }
        let mut finished = Vec::new();
        let mut written = false;
        for id in part_ids {
            match self.0.state.get(id).await {
                Ok(part) if part.is_finished() => finished.push(part),
                Ok(part) => written |= !part.is_expired(now),
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if !written {
            return Ok(false);
        }
        let kept = UploadInfo {
            expires_at: self.next_expiry(info),
            ..info.clone()
        };
        let kept = match self.0.state.update(&kept).await {
            Ok(kept) => kept,
            // Changed meanwhile (a write, a join): it is not abandoned either.
            Err(Error::Conflict) => return Ok(true),
            Err(e) => return Err(e),
        };
        for part in finished {
            // A part busy with a request is not at risk; the next round extends it.
            let Ok(Some(_lease)) = self.0.locker.try_lock(&part.id).await else {
                continue;
            };
            match self.keep_past(part, kept.expires_at).await {
                Ok(()) | Err(Error::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
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
        // Joined and recorded before a crash (the store may have finished it too, so
        // what it joined into is gone): only the finish is left, and stores finish
        // idempotently.
        let whole = target.length == Some(target.offset);
        let joined = match self.0.store.concat() {
            Some(native) if !whole => native.concat(&target, &parts).await?,
            _ => None,
        };
        match joined {
            Some(store) => {
                target.store = store;
                target.offset = target.length.unwrap_or_default();
                target = self.0.state.update(&target).await?;
            }
            None if whole => {}
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
            let mut written = self.0.store.write(&target, stream).await?;
            if written.bytes == 0 && written.store != target.store {
                // The store's claim (see `DataStore::write`): saved, then asked again.
                target.store = written.store;
                target = self.0.state.update(&target).await?;
                let stream = self.0.store.read(part, from..length).await?;
                written = self.0.store.write(&target, stream).await?;
            }
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
