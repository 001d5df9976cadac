//! Asking the application: the event a pre-hook is shown, and what its answer does.

use super::Uploads;
use crate::error::{Error, Result};
use crate::hooks::{Access, HookEvent, HookKind, Verdict};
use crate::upload::UploadInfo;

impl Uploads {
    /// The event of `kind` for `info`, with where its bytes are and the request the
    /// current task serves.
    pub(super) fn hook_event(
        &self,
        kind: HookKind,
        info: &UploadInfo,
        access: Option<Access>,
    ) -> HookEvent {
        HookEvent {
            kind,
            upload: info.clone(),
            access,
            location: self.0.store.location(info),
            request: crate::hooks::current_request(),
        }
    }

    /// Applies what a pre-create hook changed to the upload about to be created: its
    /// id, metadata, place, and its own limits (checked against its length as declared).
    pub(super) fn apply_changes(
        &self,
        info: &mut UploadInfo,
        changes: crate::hooks::Changes,
    ) -> Result<()> {
        if let Some(id) = changes.id {
            tracing::debug!(upload.id = %id, "the pre-create hook chose the id");
            info.id = id;
        }
        if let Some(metadata) = changes.metadata {
            info.metadata = metadata;
        }
        info.limits.max_size = changes.max_size;
        info.limits.expire_after_secs = changes.expire_after.map(|d| d.as_secs().max(1));
        if let Some(length) = info.length {
            self.check_size(info, length)?;
        }
        info.expires_at = self.next_expiry(info);
        if let Some(placement) = changes.placement {
            info.store = self.0.store.place(info, &placement).inspect_err(|e| {
                tracing::error!(upload.id = %info.id, ?placement, error = %crate::error::with_causes(e), "refused the pre-create hook's storage location");
            })?;
        }
        Ok(())
    }

    /// Asks the blocking hook of `kind` (pre-finish, pre-terminate, pre-access) about
    /// `info`: a refusal is the error. Changes only pre-create can make are ignored.
    pub(super) async fn ask(&self, kind: HookKind, info: &UploadInfo) -> Result<()> {
        self.ask_access(kind, info, None).await
    }

    pub(super) async fn ask_access(
        &self,
        kind: HookKind,
        info: &UploadInfo,
        access: Option<Access>,
    ) -> Result<()> {
        if !self.0.hooks.wants(kind) {
            return Ok(());
        }
        let event = self.hook_event(kind, info, access);
        crate::metrics::hook_invoked(kind);
        let verdict = match kind {
            HookKind::PreFinish => self.0.hooks.pre_finish(&event).await,
            HookKind::PreTerminate => self.0.hooks.pre_terminate(&event).await,
            HookKind::PreAccess => self.0.hooks.pre_access(&event).await,
            _ => Verdict::Continue,
        };
        match verdict {
            Verdict::Continue => Ok(()),
            Verdict::Reject(r) => Err(Error::Rejected(r)),
            Verdict::Reply(reply) if kind == HookKind::PreFinish => {
                if !crate::hooks::offer_reply(reply) {
                    tracing::debug!(upload.id = %info.id, "a pre-finish reply with no request to answer");
                }
                Ok(())
            }
            Verdict::Reply(_) => {
                tracing::warn!(upload.id = %info.id, hook = kind.name(), "only pre-finish may reply; the reply is ignored");
                Ok(())
            }
            Verdict::Change(_) => {
                tracing::warn!(upload.id = %info.id, hook = kind.name(), "only pre-create may change an upload; the changes are ignored");
                Ok(())
            }
        }
    }
}
