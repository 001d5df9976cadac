//! What a hook is told: which point, which upload (and where it is stored), and the
//! request that caused it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::answer::{Reply, ReplySlot};
use crate::upload::UploadInfo;

/// The points where hooks are asked or told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookKind {
    /// Before an upload is created.
    PreCreate,
    /// An upload was created.
    PostCreate,
    /// Bytes were committed (progress; transports coalesce these).
    PostReceive,
    /// Before a complete upload is made readable.
    PreFinish,
    /// An upload is finished and readable.
    PostFinish,
    /// Before a client's termination.
    PreTerminate,
    /// A client removed an upload.
    PostTerminate,
    /// Before a request touches an existing upload.
    PreAccess,
}

impl HookKind {
    /// Every kind, in the order an upload meets them.
    pub const ALL: [HookKind; 8] = [
        HookKind::PreAccess,
        HookKind::PreCreate,
        HookKind::PostCreate,
        HookKind::PostReceive,
        HookKind::PreFinish,
        HookKind::PostFinish,
        HookKind::PreTerminate,
        HookKind::PostTerminate,
    ];

    /// The name tusd gives the hook (`pre-create`, `post-finish`, …).
    pub fn name(self) -> &'static str {
        match self {
            HookKind::PreCreate => "pre-create",
            HookKind::PostCreate => "post-create",
            HookKind::PostReceive => "post-receive",
            HookKind::PreFinish => "pre-finish",
            HookKind::PostFinish => "post-finish",
            HookKind::PreTerminate => "pre-terminate",
            HookKind::PostTerminate => "post-terminate",
            HookKind::PreAccess => "pre-access",
        }
    }

    /// Whether the engine waits for the hook's answer.
    pub fn is_blocking(self) -> bool {
        matches!(
            self,
            HookKind::PreCreate
                | HookKind::PreFinish
                | HookKind::PreTerminate
                | HookKind::PreAccess
        )
    }
}

impl std::str::FromStr for HookKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        HookKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown hook {s:?}"))
    }
}

/// What a request asks of an existing upload, for pre-access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Its state (tus HEAD, a Resumable.js chunk test, a status poll).
    Info,
    /// Appending (tus PATCH, a chunk, a Content-Range PUT, a browser-direct part).
    Write,
    /// Its bytes (GET).
    Read,
    /// Removing it (DELETE).
    Terminate,
}

impl Access {
    /// `info`, `write`, `read`, `terminate`.
    pub fn name(self) -> &'static str {
        match self {
            Access::Info => "info",
            Access::Write => "write",
            Access::Read => "read",
            Access::Terminate => "terminate",
        }
    }
}

/// Where an upload's bytes are kept, as its store says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// A file (the finished upload's path; the bytes are at `<path>.part` until then).
    File(PathBuf),
    /// An object in a bucket.
    Object {
        /// The bucket.
        bucket: String,
        /// The object's key.
        key: String,
    },
}

/// The HTTP request behind an event, as the front end describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// `tus`, `ietf`, `resumablejs`, `content-range`, `form`, `s3-multipart`.
    pub protocol: String,
    /// The method, after any method override.
    pub method: String,
    /// The path and query.
    pub uri: String,
    /// The client's address, when known.
    pub remote_addr: Option<String>,
    /// The headers chosen to pass on, each name with its values.
    pub headers: Vec<(String, Vec<String>)>,
}

/// What a hook sees; serialisable, so the outbox can keep it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HookEvent {
    /// Which point.
    pub kind: HookKind,
    /// The upload record: as it will be saved (creation), or as it stands. The caller's
    /// identity is its `owner`.
    pub upload: UploadInfo,
    /// For pre-access: what the request asks.
    pub access: Option<Access>,
    /// Where the upload's bytes are kept.
    pub location: Option<Location>,
    /// The request that caused it, when there was one (gc has none).
    pub request: Option<Arc<RequestInfo>>,
}

tokio::task_local! {
    static REQUEST: Arc<RequestInfo>;
    static REPLY: ReplySlot;
}

/// Runs `work` with `request` as the request behind the events it causes, and `reply`
/// as where a pre-finish reply to it goes.
pub(crate) async fn with_request<F: Future>(
    request: Option<Arc<RequestInfo>>,
    reply: Option<ReplySlot>,
    work: F,
) -> F::Output {
    let work = async move {
        match reply {
            Some(reply) => REPLY.scope(reply, work).await,
            None => work.await,
        }
    };
    match request {
        Some(request) => REQUEST.scope(request, work).await,
        None => work.await,
    }
}

/// Leaves a pre-finish hook's `reply` for the request the current task serves; `false`
/// when no request listens for one (a finish repaired by a status check or by gc).
pub(crate) fn offer_reply(reply: Reply) -> bool {
    REPLY
        .try_with(|slot| match slot.lock() {
            Ok(mut slot) => {
                *slot = Some(reply);
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false)
}

/// The request the current task serves, if a front end said.
pub(crate) fn current_request() -> Option<Arc<RequestInfo>> {
    REQUEST.try_with(Arc::clone).ok()
}
