//! Hooks: let an application accept or refuse uploads, and tell it what happened.

use async_trait::async_trait;

use crate::id::UploadId;
use crate::upload::UploadInfo;

/// What a pre-hook sees.
#[derive(Clone, Debug)]
pub struct HookEvent {
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

    pub fn message(&self) -> &str {
        &self.message
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    Reject(Rejection),
}

/// Decisions an application makes about uploads. Every method defaults to `Continue`.
#[async_trait]
pub trait Hooks: Send + Sync + 'static {
    async fn pre_create(&self, _event: &HookEvent) -> Verdict {
        Verdict::Continue
    }
    async fn pre_finish(&self, _event: &HookEvent) -> Verdict {
        Verdict::Continue
    }
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
    Created(UploadInfo),
    Progress { id: UploadId, offset: u64 },
    Finished(UploadInfo),
    Terminated(UploadId),
    Expired(UploadId),
}
