//! The one semantic error type shared by the engine, the seams and the front ends.

use crate::hooks::Rejection;
use crate::id::UploadId;

/// A boxed error from a backend, kept as the `source` of [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Conditions a front end can render in its own protocol's terms.
///
/// Deliberately not `#[non_exhaustive]`: chunkd-http's one classification
/// (`chunkd_http::refusal`) matches every variant, so a new condition breaks its build
/// instead of silently becoming a 500.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("upload {0} not found")]
    NotFound(UploadId),
    #[error("upload {0} has expired")]
    Expired(UploadId),
    #[error("upload {0} already exists")]
    AlreadyExists(UploadId),
    #[error("offset mismatch: upload is at {expected}, request is at {got}")]
    OffsetMismatch { expected: u64, got: u64 },
    #[error("body goes past the upload length {length}")]
    LengthExceeded { length: u64 },
    #[error("upload larger than the maximum of {max} bytes")]
    TooLarge { max: u64 },
    #[error("invalid upload length: {0}")]
    InvalidLength(&'static str),
    #[error("the request body ended before it was complete")]
    IncompleteBody,
    #[error("checksum mismatch")]
    ChecksumMismatch,
    #[error("checksum announced as a trailer but none arrived")]
    ChecksumMissing,
    #[error("upload is locked by another request")]
    Locked,
    #[error("a final (concatenated) upload cannot be written to")]
    FinalUpload,
    #[error("upload is not finished yet")]
    NotFinished,
    #[error("invalid concatenation: {0}")]
    InvalidConcat(&'static str),
    #[error("range not satisfiable")]
    RangeNotSatisfiable { length: u64 },
    #[error("rejected by hook: {}", .0.message())]
    Rejected(Rejection),
    #[error("interrupted by a newer request on the same upload at offset {offset}")]
    Interrupted { offset: u64 },
    #[error("server is shutting down; upload kept at offset {offset}")]
    ShuttingDown { offset: u64 },
    #[error("invalid part: {0}")]
    InvalidPart(&'static str),
    #[error("not supported by this store: {0}")]
    NotSupported(&'static str),
    #[error("concurrent modification of upload state")]
    Conflict,
    #[error("{backend} backend error")]
    Backend {
        backend: &'static str,
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
