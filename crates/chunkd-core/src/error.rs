//! The one semantic error type shared by the engine, the seams and the front ends.

use crate::hooks::Rejection;
use crate::id::UploadId;

/// A boxed error from a backend, kept as the `source` of [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What every fallible call of the engine and its seams returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Conditions a front end can render in its own protocol's terms.
///
/// Deliberately not `#[non_exhaustive]`: chunkd-http's one classification
/// (`chunkd_http::refusal`) matches every variant, so a new condition breaks its build
/// instead of silently becoming a 500.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such upload, or one the caller does not own (the two are not told apart).
    #[error("upload {0} not found")]
    NotFound(UploadId),
    /// The upload outlived its expiry unfinished; it is gone, or about to be purged.
    #[error("upload {0} has expired")]
    Expired(UploadId),
    /// An upload with this id exists already (a client-chosen id, or a state store insert).
    #[error("upload {0} already exists")]
    AlreadyExists(UploadId),
    /// The request continues at `got`, but the upload is at `expected`.
    #[error("offset mismatch: upload is at {expected}, request is at {got}")]
    OffsetMismatch {
        /// The upload's offset.
        expected: u64,
        /// The offset the request gave.
        got: u64,
    },
    /// The body would carry the upload past its declared length; nothing of it is kept.
    #[error("body goes past the upload length {length}")]
    LengthExceeded {
        /// The upload's declared length.
        length: u64,
    },
    /// The upload is, or would grow, larger than [`crate::Limits::max_size`].
    #[error("upload larger than the maximum of {max} bytes")]
    TooLarge {
        /// The largest upload accepted, in bytes.
        max: u64,
    },
    /// A length that cannot be (set twice, changed, overflowing); the reason says which.
    #[error("invalid upload length: {0}")]
    InvalidLength(&'static str),
    /// A body that had to arrive whole (a single-request upload) was cut off.
    #[error("the request body ended before it was complete")]
    IncompleteBody,
    /// The body does not match the checksum the client sent; nothing of it is kept.
    #[error("checksum mismatch")]
    ChecksumMismatch,
    /// A checksum was promised as a trailer and did not come; nothing of the body is kept.
    #[error("checksum announced as a trailer but none arrived")]
    ChecksumMissing,
    /// Another request held the upload's lock for longer than the lock timeout.
    #[error("upload is locked by another request")]
    Locked,
    /// Final (concatenated) uploads are built from their parts, never appended to.
    #[error("a final (concatenated) upload cannot be written to")]
    FinalUpload,
    /// Reading an upload needs it finished.
    #[error("upload is not finished yet")]
    NotFinished,
    /// A concatenation that cannot be built (no parts, a part not found or not partial).
    #[error("invalid concatenation: {0}")]
    InvalidConcat(&'static str),
    /// The range asked for lies outside the upload, which is `length` bytes long.
    #[error("range not satisfiable")]
    RangeNotSatisfiable {
        /// The upload's length, which the refusal states.
        length: u64,
    },
    /// A hook refused; the front end answers with the rejection's status and message.
    #[error("rejected by hook: {}", .0.message())]
    Rejected(Rejection),
    /// A newer request on the same upload took over; the bytes up to `offset` are kept.
    #[error("interrupted by a newer request on the same upload at offset {offset}")]
    Interrupted {
        /// Where the upload now stands.
        offset: u64,
    },
    /// The server is shutting down; the bytes up to `offset` are kept for a later resume.
    #[error("server is shutting down; upload kept at offset {offset}")]
    ShuttingDown {
        /// Where the upload now stands.
        offset: u64,
    },
    /// A browser-direct part that cannot be accepted; the reason says why.
    #[error("invalid part: {0}")]
    InvalidPart(&'static str),
    /// The store lacks what the request needs (browser-direct parts, appends to them).
    #[error("not supported by this store: {0}")]
    NotSupported(&'static str),
    /// The store or state store has no space left (a full disk or quota); what was
    /// committed before stays, and the upload resumes once space returns.
    #[error("no space left to store the upload")]
    StorageFull,
    /// The record changed since it was read: a compare-and-swap update lost the race.
    #[error("concurrent modification of upload state")]
    Conflict,
    /// The store, state store or locker failed for reasons of its own (I/O, network).
    #[error("{backend} backend error")]
    Backend {
        /// Which backend, as its `name()` says.
        backend: &'static str,
        /// What the backend reported.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Wraps a backend failure without leaking its details into the semantic variants.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            backend,
            source: source.into(),
        }
    }
}

/// An error with its sources, `outer: inner: root`: transport errors (hyper's "client
/// error (Connect)") keep their reason (a refused certificate, a refused connection)
/// in the sources.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
