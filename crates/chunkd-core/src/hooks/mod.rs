//! Hooks: let an application accept or refuse uploads, and tell it what happened.

use async_trait::async_trait;

use crate::id::UploadId;
use crate::upload::UploadInfo;

/// What a pre-hook sees.
#[derive(Clone, Debug)]
pub struct HookEvent {
    /// The upload record: as it will be saved (creation), or as it stands (finishing,
    /// termination).
    pub upload: UploadInfo,
}

/// A refusal, rendered by the front end with this status and message. The status is
/// checked when the refusal is made, so a front end never answers a "refusal" with 200.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    status: u16,
    message: String,
}

/// A refusal status outside 400..=599.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a refusal needs a 4xx or 5xx status, not {0}")]
pub struct InvalidStatus(pub u16);

impl Rejection {
    /// A refusal with `status` and `message` for the client; [`InvalidStatus`] unless
    /// `status` is 4xx or 5xx.
    pub fn new(status: u16, message: impl Into<String>) -> Result<Self, InvalidStatus> {
        if !(400..=599).contains(&status) {
            return Err(InvalidStatus(status));
        }
        Ok(Rejection {
            status,
            message: message.into(),
        })
    }

    /// A 403 with `message`, the usual "not allowed".
    pub fn forbidden(message: impl Into<String>) -> Self {
        Rejection {
            status: 403,
            message: message.into(),
        }
    }

    /// Always within 400..=599.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// What the client is told.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A pre-hook's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the operation go ahead.
    Continue,
    /// Stop it; the request fails with [`crate::Error::Rejected`].
    Reject(Rejection),
}

/// Decisions an application makes about uploads. Every method defaults to `Continue`.
#[async_trait]
pub trait Hooks: Send + Sync + 'static {
    /// Before an upload is created (nothing is stored yet): may refuse by its metadata,
    /// length or owner.
    async fn pre_create(&self, _event: &HookEvent) -> Verdict {
        Verdict::Continue
    }
    /// When every byte has arrived, before the upload is made readable; a refusal fails
    /// the request that completed it.
    async fn pre_finish(&self, _event: &HookEvent) -> Verdict {
        Verdict::Continue
    }
    /// Before a client's termination removes an upload.
    async fn pre_terminate(&self, _event: &HookEvent) -> Verdict {
        Verdict::Continue
    }
}

/// Accepts everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {}

/// What happened, broadcast to every subscriber of [`crate::Uploads::events`].
#[derive(Clone, Debug)]
pub enum Event {
    /// An upload was created, as recorded.
    Created(UploadInfo),
    /// Bytes of upload `id` were committed; it is now at `offset`.
    Progress {
        /// The upload.
        id: UploadId,
        /// Bytes stored so far.
        offset: u64,
    },
    /// An upload received its last byte and is readable, as recorded.
    Finished(UploadInfo),
    /// A client removed the upload.
    Terminated(UploadId),
    /// The upload was purged unfinished after its expiry.
    Expired(UploadId),
}
