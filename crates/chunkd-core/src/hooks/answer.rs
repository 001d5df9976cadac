//! What a pre-hook answers: go ahead, go ahead with changes, or a refusal.

use std::time::Duration;

use crate::id::UploadId;
use crate::metadata::Metadata;

/// A refusal, rendered by the front end with this status and message. The status is
/// checked when the refusal is made, so a front end never answers a "refusal" with 200.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    status: u16,
    message: String,
    headers: Vec<(String, String)>,
}

/// Most headers a refusal carries, and the longest value.
const MAX_HEADERS: usize = 16;
const MAX_HEADER_VALUE: usize = 4096;

/// Headers the protocol or the connection own: a hook never sets them.
const RESERVED_HEADERS: [&str; 11] = [
    "connection",
    "content-length",
    "content-type",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "tus-resumable",
    "upload-offset",
];

/// Adds the `headers` a hook may set to `to`; returns the names of those left out (not
/// valid HTTP, owned by framing or the protocol, or past the sixteenth).
fn add_headers(
    to: &mut Vec<(String, String)>,
    headers: impl IntoIterator<Item = (String, String)>,
) -> Vec<String> {
    let mut left_out = Vec::new();
    for (name, value) in headers {
        let token = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        let printable = value.len() <= MAX_HEADER_VALUE
            && value
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        let reserved = RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&name));
        if !token || !printable || reserved || to.len() >= MAX_HEADERS {
            left_out.push(name);
            continue;
        }
        to.push((name, value));
    }
    left_out
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
            headers: Vec::new(),
        })
    }

    /// The refusal with extra response headers (`Retry-After`, `WWW-Authenticate`, …).
    /// Headers that are not valid HTTP, or that framing or the protocol own, are left
    /// out and returned by name, as are any past the sixteenth.
    pub fn with_headers(
        mut self,
        headers: impl IntoIterator<Item = (String, String)>,
    ) -> (Self, Vec<String>) {
        let left_out = add_headers(&mut self.headers, headers);
        (self, left_out)
    }

    /// Extra response headers, each a valid HTTP name and value.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// A 403 with `message`, the usual "not allowed".
    pub fn forbidden(message: impl Into<String>) -> Self {
        Rejection {
            status: 403,
            message: message.into(),
            headers: Vec::new(),
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
    /// Let it go ahead with these changes (pre-create only; elsewhere they are ignored
    /// with a warning).
    Change(Changes),
    /// Stop it; the request fails with [`crate::Error::Rejected`].
    Reject(Rejection),
    /// Let it go ahead, and answer the client that completed the upload with this
    /// (pre-finish only; elsewhere it is ignored with a warning).
    Reply(Reply),
}

/// What a pre-finish hook has the completing request answer: headers added to the
/// protocol's answer and, where that answer has a body, a body in its place. The status
/// stays the protocol's, which clients depend on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    headers: Vec<(String, String)>,
    body: Option<(String, Option<String>)>,
}

impl Reply {
    /// A reply adding `headers`; those not allowed are left out and returned by name,
    /// as for [`Rejection::with_headers`].
    pub fn with_headers(
        headers: impl IntoIterator<Item = (String, String)>,
    ) -> (Self, Vec<String>) {
        let mut reply = Reply::default();
        let left_out = add_headers(&mut reply.headers, headers);
        (reply, left_out)
    }

    /// The reply with `body` (of `content_type`, when given) in place of the answer's.
    pub fn with_body(mut self, body: String, content_type: Option<String>) -> Self {
        self.body = Some((body, content_type));
        self
    }

    /// Extra response headers, each a valid HTTP name and value.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body and its media type, when the hook gave one.
    pub fn body(&self) -> Option<(&str, Option<&str>)> {
        self.body
            .as_ref()
            .map(|(body, content_type)| (body.as_str(), content_type.as_deref()))
    }
}

/// Where the engine leaves a pre-finish [`Reply`] for the request that completed the
/// upload (see [`crate::Caller::answering_into`]).
pub type ReplySlot = std::sync::Arc<std::sync::Mutex<Option<Reply>>>;

/// What a pre-create hook may change about the upload before anything is stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The upload's id instead of a generated one; an id already taken fails the
    /// creation.
    pub id: Option<UploadId>,
    /// The metadata, replaced as a whole.
    pub metadata: Option<Metadata>,
    /// Where the bytes are kept, checked by the store; one it cannot follow safely
    /// fails the creation (5xx), logged.
    pub placement: Option<Placement>,
    /// The upload's largest size, applied only when below the server's.
    pub max_size: Option<u64>,
    /// Its own idle expiry, instead of the server's.
    pub expire_after: Option<Duration>,
}

/// Where a pre-create hook wants an upload's bytes: a path under the file store's
/// directory, or an object key (a key ending in `/` is a prefix the id is appended to)
/// in one of the configured buckets. Each store takes what applies to it and refuses the
/// rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// A relative path under the file store's directory.
    pub path: Option<String>,
    /// An object key, or a prefix ending in `/`.
    pub key: Option<String>,
    /// The bucket, which must be one the store was configured with.
    pub bucket: Option<String>,
}
