//! What can go wrong, named for the condition, and which class of failure it is (the
//! binary's exit codes follow the class).

use std::path::PathBuf;

/// An upload, cancel or state operation that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered a 4xx that retrying cannot change (403, 413, ...).
    #[error("{method} {url}: refused with {status}{}", detail(.message))]
    Refused {
        /// The request's method.
        method: String,
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body, if it had one.
        message: String,
    },
    /// The server kept declining a request that could succeed later (408, 409, 423,
    /// 429, 460: a timeout, an offset mismatch, a lock, a rate limit, a checksum
    /// mismatch), after every retry.
    #[error("{method} {url}: declined with {status} after every retry{}", detail(.message))]
    Declined {
        /// The request's method.
        method: String,
        /// The request's URL.
        url: String,
        /// The last HTTP status.
        status: u16,
        /// The start of the last answer's body, if it had one.
        message: String,
    },
    /// The file is larger than the server takes.
    #[error("{size} bytes is more than the server's limit of {max} bytes")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// The server's advertised maximum.
        max: u64,
    },
    /// The server could not be reached, or kept failing (5xx), after every retry.
    #[error("{context}: {message}")]
    Network {
        /// What was being done.
        context: String,
        /// The last failure.
        message: String,
    },
    /// The server's answer breaks the protocol (a missing `Location`, an offset beyond
    /// the upload or going backwards, a redirect loop, ...).
    #[error("{0}")]
    Protocol(String),
    /// The server lacks what was asked for (a checksum algorithm, the protocol itself).
    #[error("{0}")]
    Unsupported(String),
    /// A setting or argument is malformed (a header, a metadata pair, a size).
    #[error("{0}")]
    Invalid(String),
    /// The local file could not be read, or changed while it was being uploaded.
    #[error("{}: {message}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The state file could not be read or written.
    #[error("state file {}: {message}", .path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// The classes of [`Error`], for callers that decide by class (exit codes, retries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The server said no: [`Error::Refused`], [`Error::TooLarge`].
    Refused,
    /// The server could not be reached or kept failing: [`Error::Network`].
    Network,
    /// The server kept declining what it could take later: [`Error::Declined`].
    Declined,
    /// The request cannot be made as asked: [`Error::Unsupported`], [`Error::Invalid`].
    Usage,
    /// Anything else: protocol violations, local files, the state file.
    Other,
}

impl Error {
    /// Which class of failure this is.
    pub fn class(&self) -> Class {
        match self {
            Error::Refused { .. } | Error::TooLarge { .. } => Class::Refused,
            Error::Network { .. } => Class::Network,
            Error::Declined { .. } => Class::Declined,
            Error::Unsupported(_) | Error::Invalid(_) => Class::Usage,
            Error::Protocol(_) | Error::File { .. } | Error::State { .. } => Class::Other,
        }
    }

    /// The HTTP status of a refusal, or of the last answer declining.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Refused { status, .. } | Error::Declined { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, error: impl std::fmt::Display) -> Error {
        Error::File {
            path: path.into(),
            message: error.to_string(),
        }
    }
}

/// `: message`, or nothing for an empty message.
pub(crate) fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
