//! Hooks: let an application accept or refuse uploads, and tell it what happened.

use async_trait::async_trait;

use crate::upload::UploadInfo;

mod answer;
mod event;

pub use answer::{Changes, InvalidStatus, Placement, Rejection, Reply, ReplySlot, Verdict};
pub use event::{Access, HookEvent, HookKind, Location, RequestInfo};
pub(crate) use event::{current_request, offer_reply, with_request};

/// Decisions an application makes about uploads, and what it is told happened. Every
/// pre-hook defaults to `Continue`, and `notify` to nothing.
#[async_trait]
pub trait Hooks: Send + Sync + 'static {
    /// Whether events of `kind` go anywhere; the engine skips building the others (a
    /// pre-access event costs a record read on every request).
    fn wants(&self, _kind: HookKind) -> bool {
        true
    }
    /// Before a request reads, writes, ends or inspects an existing upload (HEAD, PATCH,
    /// GET, DELETE and each protocol's equivalents); the event's `access` says which.
    async fn pre_access(&self, _event: &HookEvent) -> Verdict {
        Verdict::Continue
    }
    /// Before an upload is created (nothing is stored yet): may refuse by its metadata,
    /// length or owner.
    async fn pre_create(&self, _event: &HookEvent) -> Verdict {
        Verdict::Continue
    }
    /// When every byte has arrived, before the upload is made readable; a refusal fails
    /// the request that completed it, a [`Verdict::Reply`] shapes its answer.
    async fn pre_finish(&self, _event: &HookEvent) -> Verdict {
        Verdict::Continue
    }
    /// Before a client's termination removes an upload.
    async fn pre_terminate(&self, _event: &HookEvent) -> Verdict {
        Verdict::Continue
    }
    /// What happened (post-create, post-receive, post-finish, post-terminate), from the
    /// outbox, after the record says so: at least once, each upload's in order, with
    /// the same `key` on every attempt. An error has it tried again later.
    async fn deliver(&self, _event: &HookEvent, _key: &str) -> Result<Delivered, DeliveryError> {
        Ok(Delivered::Noted)
    }
}

/// What the application answered a post-event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delivered {
    /// It took note.
    #[default]
    Noted,
    /// Stop this upload (an answer to post-receive, like tusd's `StopUpload`): a running
    /// request on it is interrupted and the unfinished upload removed. Ignored for other
    /// events and for uploads already finished.
    StopUpload,
}

/// A post-event did not arrive; the outbox tries again.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeliveryError(pub String);

/// Accepts everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {
    fn wants(&self, _kind: HookKind) -> bool {
        false
    }
}

/// What happened, broadcast to every subscriber of [`crate::Uploads::events`]. Each
/// carries the upload as recorded at that moment (its owner says whose it is); one
/// relayed from another instance has no store bookkeeping.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", content = "upload", rename_all = "kebab-case")]
pub enum Event {
    /// An upload was created.
    Created(UploadInfo),
    /// Bytes were committed; the upload is now at its `offset`.
    Progress(UploadInfo),
    /// An upload received its last byte and is readable.
    Finished(UploadInfo),
    /// Every byte arrived but the pre-finish hook refused it, with this message; the
    /// upload is not readable.
    Refused(UploadInfo, String),
    /// A client removed the upload (or it outgrew its size limit).
    Terminated(UploadInfo),
    /// The upload was purged unfinished after its expiry.
    Expired(UploadInfo),
}

impl Event {
    /// The upload the event is about.
    pub fn upload(&self) -> &UploadInfo {
        match self {
            Event::Created(info)
            | Event::Progress(info)
            | Event::Finished(info)
            | Event::Refused(info, _)
            | Event::Terminated(info)
            | Event::Expired(info) => info,
        }
    }
}
