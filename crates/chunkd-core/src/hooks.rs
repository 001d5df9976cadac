//! Hooks: let an application accept or refuse uploads, and tell it what happened.

use async_trait::async_trait;

use crate::id::UploadId;
use crate::upload::UploadInfo;

/// What a pre-hook sees.
#[derive(Clone, Debug)]
pub struct HookEvent {
    pub upload: UploadInfo,
}

/// A refusal, rendered by the front end with this status and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub message: String,
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
