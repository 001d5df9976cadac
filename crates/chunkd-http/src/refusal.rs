//! Where an engine error becomes a status: one classification of every engine error (and
//! of a failed identification), which each protocol renders in its own terms. Errors are
//! logged here, once: 5xx with their causes, refusals at debug level.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::identity::IdentityError;

/// What went wrong, in protocol-neutral terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No such upload, or not the caller's.
    NotFound,
    /// Past its expiry.
    Expired,
    /// The request's offset is not where the upload stands.
    OffsetMismatch {
        /// Where the upload stands.
        expected: u64,
        /// Where the request said it does.
        provided: u64,
    },
    /// More bytes than the upload's declared length.
    LengthExceeded,
    /// Larger than the server takes.
    TooLarge,
    /// A length that is invalid or contradicts the record.
    InvalidLength,
    /// The body ended before the bytes the request promised.
    IncompleteBody,
    /// The bytes do not match the checksum sent.
    ChecksumMismatch,
    /// A checksum was announced but never arrived.
    ChecksumMissing,
    /// Another request holds the upload and would not let go.
    Locked,
    /// A final (concatenated) upload takes no writes.
    FinalUpload,
    /// The upload is not finished (it cannot be read or joined yet).
    NotFinished,
    /// A concatenation request that cannot be honoured.
    InvalidConcat,
    /// A part named in a concatenation or completion is not usable.
    InvalidPart,
    /// A `Range` outside the file.
    RangeNotSatisfiable {
        /// The file's length, for `Content-Range: bytes */length`.
        length: u64,
    },
    /// A hook said no.
    Rejected,
    /// A newer request on the upload took over (newest wins).
    Interrupted,
    /// The server is shutting down.
    ShuttingDown,
    /// The store cannot do what was asked.
    NotSupported,
    /// No space left to store the upload; it resumes once space returns.
    StorageFull,
    /// The request carries no valid identity where one is needed.
    Unidentified,
    /// The client has as many upload requests running as it may; it may retry later.
    TooManyUploads,
    /// The server's fault; the message is generic.
    Internal,
}

impl Kind {
    /// A stable machine-readable code, in tusd's spelling (tus answers carry it; other
    /// protocols may).
    pub fn code(self) -> &'static str {
        match self {
            Kind::NotFound => "ERR_UPLOAD_NOT_FOUND",
            Kind::Expired => "ERR_UPLOAD_EXPIRED",
            Kind::OffsetMismatch { .. } => "ERR_MISMATCHED_OFFSET",
            Kind::LengthExceeded => "ERR_UPLOAD_SIZE_EXCEEDED",
            Kind::TooLarge => "ERR_MAX_SIZE_EXCEEDED",
            Kind::InvalidLength => "ERR_INVALID_UPLOAD_LENGTH",
            Kind::IncompleteBody => "ERR_UNEXPECTED_EOF",
            Kind::ChecksumMismatch => "ERR_CHECKSUM_MISMATCH",
            Kind::ChecksumMissing => "ERR_CHECKSUM_MISSING",
            Kind::Locked => "ERR_UPLOAD_LOCKED",
            Kind::FinalUpload => "ERR_MODIFY_FINAL",
            Kind::NotFinished => "ERR_UPLOAD_NOT_FINISHED",
            Kind::InvalidConcat => "ERR_INVALID_CONCAT",
            Kind::InvalidPart => "ERR_INVALID_PART",
            Kind::RangeNotSatisfiable { .. } => "ERR_RANGE_NOT_SATISFIABLE",
            Kind::Rejected => "ERR_UPLOAD_REJECTED",
            Kind::Interrupted => "ERR_UPLOAD_INTERRUPTED",
            Kind::ShuttingDown => "ERR_SERVER_SHUTDOWN",
            Kind::NotSupported => "ERR_NOT_IMPLEMENTED",
            Kind::StorageFull => "ERR_STORAGE_FULL",
            Kind::Unidentified => "ERR_UNAUTHORIZED",
            Kind::TooManyUploads => "ERR_TOO_MANY_UPLOADS",
            Kind::Internal => "ERR_INTERNAL_SERVER_ERROR",
        }
    }
}

/// An engine error as the wire sees it: a status (which a protocol may re-spell where
/// its contract says so), what went wrong, a message safe to show, and the offset the
/// upload stands at where that helps a client resume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The status, before any protocol re-spells it.
    pub status: StatusCode,
    /// What went wrong.
    pub kind: Kind,
    /// Safe to show to the client.
    pub message: String,
    /// Where the upload stands, when that helps the client resume.
    pub offset: Option<u64>,
    /// Headers a hook's refusal adds.
    pub headers: HookHeaders,
}

/// Response headers a hook's refusal adds (`Retry-After`, `WWW-Authenticate`, …).
/// The protocol's own headers win: one it sets is never replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookHeaders(Vec<(HeaderName, HeaderValue)>);

impl HookHeaders {
    /// Adds each header `headers` lacks.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.0 {
            if !headers.contains_key(name) {
                headers.append(name.clone(), value.clone());
            }
        }
    }

    fn of(rejection: &chunkd_core::Rejection) -> Self {
        HookHeaders(
            rejection
                .headers()
                .iter()
                .filter_map(|(name, value)| {
                    Some((
                        HeaderName::from_bytes(name.as_bytes()).ok()?,
                        HeaderValue::from_str(value).ok()?,
                    ))
                })
                .collect(),
        )
    }
}

impl Refusal {
    fn new(status: StatusCode, kind: Kind, message: impl Into<String>) -> Self {
        metrics::counter!(crate::accounting::ERRORS, "code" => kind.code()).increment(1);
        Refusal {
            status,
            kind,
            message: message.into(),
            offset: None,
            headers: HookHeaders::default(),
        }
    }

    /// No such upload, or not one the caller may see (the two are never told apart).
    pub fn not_found() -> Self {
        Refusal::new(StatusCode::NOT_FOUND, Kind::NotFound, "upload not found")
    }

    fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }
}

impl From<chunkd_core::Error> for Refusal {
    fn from(err: chunkd_core::Error) -> Self {
        use chunkd_core::Error as E;
        let message = err.to_string();
        let refusal = match err {
            E::NotFound(_) => Refusal::not_found(),
            E::Expired(_) => Refusal::new(StatusCode::GONE, Kind::Expired, "upload expired"),
            E::OffsetMismatch { expected, got } => Refusal::new(
                StatusCode::CONFLICT,
                Kind::OffsetMismatch {
                    expected,
                    provided: got,
                },
                message,
            )
            .at(expected),
            E::LengthExceeded { .. } => {
                Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, Kind::LengthExceeded, message)
            }
            E::TooLarge { .. } => {
                Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, Kind::TooLarge, message)
            }
            E::InvalidLength(_) => {
                Refusal::new(StatusCode::BAD_REQUEST, Kind::InvalidLength, message)
            }
            E::IncompleteBody => {
                Refusal::new(StatusCode::BAD_REQUEST, Kind::IncompleteBody, message)
            }
            E::ChecksumMismatch => {
                Refusal::new(StatusCode::BAD_REQUEST, Kind::ChecksumMismatch, message)
            }
            E::ChecksumMissing => {
                Refusal::new(StatusCode::BAD_REQUEST, Kind::ChecksumMissing, message)
            }
            E::Locked => Refusal::new(StatusCode::LOCKED, Kind::Locked, message),
            E::FinalUpload => Refusal::new(StatusCode::FORBIDDEN, Kind::FinalUpload, message),
            E::NotFinished => Refusal::new(StatusCode::BAD_REQUEST, Kind::NotFinished, message),
            E::InvalidConcat(_) => {
                Refusal::new(StatusCode::BAD_REQUEST, Kind::InvalidConcat, message)
            }
            E::InvalidPart(_) => Refusal::new(StatusCode::BAD_REQUEST, Kind::InvalidPart, message),
            E::RangeNotSatisfiable { length } => Refusal::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                Kind::RangeNotSatisfiable { length },
                message,
            ),
            E::Rejected(r) => Refusal {
                headers: HookHeaders::of(&r),
                ..Refusal::new(
                    // A rejection's status is checked to be 4xx or 5xx when it is made.
                    StatusCode::from_u16(r.status()).unwrap_or(StatusCode::FORBIDDEN),
                    Kind::Rejected,
                    r.message(),
                )
            },
            E::Interrupted { offset } => {
                Refusal::new(StatusCode::CONFLICT, Kind::Interrupted, message).at(offset)
            }
            E::ShuttingDown { offset } => {
                Refusal::new(StatusCode::SERVICE_UNAVAILABLE, Kind::ShuttingDown, message)
                    .at(offset)
            }
            E::NotSupported(_) => {
                Refusal::new(StatusCode::NOT_IMPLEMENTED, Kind::NotSupported, message)
            }
            E::StorageFull => {
                // The operator's to fix, so said loudly; the client may retry later.
                tracing::warn!("storage full: uploads are refused with 507");
                Refusal::new(StatusCode::INSUFFICIENT_STORAGE, Kind::StorageFull, message)
            }
            E::AlreadyExists(_) | E::Conflict | E::Backend { .. } => {
                tracing::error!(error = %err, source = ?std::error::Error::source(&err), "internal error");
                return Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Kind::Internal,
                    "internal server error",
                );
            }
        };
        if refusal.status.is_server_error() {
            tracing::warn!(status = %refusal.status, message = %refusal.message, "request not served");
        } else {
            tracing::debug!(status = %refusal.status, message = %refusal.message, "request refused");
        }
        refusal
    }
}

impl From<IdentityError> for Refusal {
    fn from(err: IdentityError) -> Self {
        tracing::debug!(error = %err, "request refused");
        let (status, kind) = match err {
            IdentityError::TooManyUploads { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, Kind::TooManyUploads)
            }
            IdentityError::Missing | IdentityError::Invalid(_) => {
                (StatusCode::FORBIDDEN, Kind::Unidentified)
            }
        };
        Refusal::new(status, kind, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chunkd_core::{Error, Rejection, UploadId};

    #[test]
    fn every_status_is_a_refusal_and_5xx_say_nothing_inside() {
        let id = UploadId::generate();
        let errors = [
            Error::NotFound(id.clone()),
            Error::Expired(id.clone()),
            Error::AlreadyExists(id),
            Error::OffsetMismatch {
                expected: 3,
                got: 5,
            },
            Error::LengthExceeded { length: 1 },
            Error::TooLarge { max: 1 },
            Error::InvalidLength("x"),
            Error::IncompleteBody,
            Error::ChecksumMismatch,
            Error::ChecksumMissing,
            Error::Locked,
            Error::FinalUpload,
            Error::NotFinished,
            Error::InvalidConcat("x"),
            Error::RangeNotSatisfiable { length: 0 },
            Error::Rejected(Rejection::forbidden("no")),
            Error::Interrupted { offset: 1 },
            Error::ShuttingDown { offset: 1 },
            Error::InvalidPart("x"),
            Error::NotSupported("x"),
            Error::StorageFull,
            Error::Conflict,
            Error::backend("fs", "disk on fire at /secret/path"),
        ];
        for err in errors {
            let refusal = Refusal::from(err);
            assert!(
                refusal.status.is_client_error() || refusal.status.is_server_error(),
                "{refusal:?}"
            );
            if refusal.status.is_server_error() && refusal.kind == Kind::Internal {
                assert_eq!(refusal.message, "internal server error");
            }
        }
    }

    #[test]
    fn offsets_travel_where_a_client_resumes_from_them() {
        let r = Refusal::from(Error::OffsetMismatch {
            expected: 7,
            got: 9,
        });
        assert_eq!((r.status, r.offset), (StatusCode::CONFLICT, Some(7)));
        let r = Refusal::from(Error::ShuttingDown { offset: 4 });
        assert_eq!(
            (r.status, r.offset),
            (StatusCode::SERVICE_UNAVAILABLE, Some(4))
        );
    }
}
