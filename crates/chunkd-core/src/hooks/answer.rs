//! What a pre-hook answers: go ahead, go ahead with changes, or a refusal.

use crate::id::UploadId;
use crate::metadata::Metadata;

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
    /// Let it go ahead with these changes (pre-create only; elsewhere they are ignored
    /// with a warning).
    Change(Changes),
    /// Stop it; the request fails with [`crate::Error::Rejected`].
    Reject(Rejection),
}

/// What a pre-create hook may change about the upload before anything is stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The upload's id instead of a generated one; an id already taken fails the
    /// creation.
    pub id: Option<UploadId>,
    /// The metadata, replaced as a whole.
    pub metadata: Option<Metadata>,
}
