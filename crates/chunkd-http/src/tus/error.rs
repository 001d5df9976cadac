//! Core errors and bad requests rendered the tus way: a status, a tusd-style
//! `ERR_CODE: message` body, and `Tus-Resumable` on every answer.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::{TUS_RESUMABLE, TUS_VERSION};

/// A tus error response.
#[derive(Debug)]
pub struct Error {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The upload's current offset, where it helps the client resume.
    offset: Option<u64>,
    /// `Content-Range: bytes */length` for 416.
    length: Option<u64>,
}

impl Error {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Error {
            status,
            code,
            message: message.into(),
            offset: None,
            length: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ERR_UPLOAD_NOT_FOUND",
            "upload not found",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }
}

impl From<chunkd_core::Error> for Error {
    fn from(err: chunkd_core::Error) -> Self {
        use chunkd_core::Error as E;
        let msg = err.to_string();
        match err {
            E::NotFound(_) => Error::not_found(),
            E::Expired(_) => Error::new(StatusCode::GONE, "ERR_UPLOAD_EXPIRED", "upload expired"),
            E::OffsetMismatch { expected, .. } => {
                Error::new(StatusCode::CONFLICT, "ERR_MISMATCHED_OFFSET", msg).with_offset(expected)
            }
            E::LengthExceeded { .. } => Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ERR_UPLOAD_SIZE_EXCEEDED",
                msg,
            ),
            E::TooLarge { .. } => {
                Error::new(StatusCode::PAYLOAD_TOO_LARGE, "ERR_MAX_SIZE_EXCEEDED", msg)
            }
            E::InvalidLength(_) => Error::bad_request("ERR_INVALID_UPLOAD_LENGTH", msg),
            E::IncompleteBody => Error::bad_request("ERR_UNEXPECTED_EOF", msg),
            E::ChecksumMismatch => Error::new(checksum_mismatch(), "ERR_CHECKSUM_MISMATCH", msg),
            E::ChecksumMissing => Error::bad_request("ERR_CHECKSUM_MISSING", msg),
            E::Locked => Error::new(StatusCode::LOCKED, "ERR_UPLOAD_LOCKED", msg),
            E::FinalUpload => Error::new(StatusCode::FORBIDDEN, "ERR_MODIFY_FINAL", msg),
            E::NotFinished => Error::bad_request("ERR_UPLOAD_NOT_FINISHED", msg),
            E::InvalidConcat(_) => Error::bad_request("ERR_INVALID_CONCAT", msg),
            E::InvalidPart(_) => Error::bad_request("ERR_INVALID_PART", msg),
            E::RangeNotSatisfiable { length } => Error {
                length: Some(length),
                ..Error::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "ERR_RANGE_NOT_SATISFIABLE",
                    msg,
                )
            },
            E::Rejected(r) => {
                let status = StatusCode::from_u16(r.status)
                    .ok()
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .unwrap_or(StatusCode::BAD_REQUEST);
                Error::new(status, "ERR_UPLOAD_REJECTED", r.message)
            }
            E::Interrupted { offset } => {
                Error::bad_request("ERR_UPLOAD_INTERRUPTED", msg).with_offset(offset)
            }
            E::ShuttingDown { offset } => {
                Error::new(StatusCode::SERVICE_UNAVAILABLE, "ERR_SERVER_SHUTDOWN", msg)
                    .with_offset(offset)
            }
            E::NotSupported(_) => {
                Error::new(StatusCode::NOT_IMPLEMENTED, "ERR_NOT_IMPLEMENTED", msg)
            }
            E::AlreadyExists(_) | E::Conflict | E::Backend { .. } => {
                tracing::error!(error = %err, source = ?std::error::Error::source(&err), "internal error");
                Error::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ERR_INTERNAL_SERVER_ERROR",
                    "internal server error",
                )
            }
        }
    }
}

/// tus's non-standard 460 Checksum Mismatch.
fn checksum_mismatch() -> StatusCode {
    StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST)
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::debug!(status = %self.status, code = self.code, message = %self.message, "tus request refused");
        }
        let mut response =
            (self.status, format!("{}: {}\n", self.code, self.message)).into_response();
        let headers = response.headers_mut();
        headers.insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if self.status == StatusCode::PRECONDITION_FAILED {
            headers.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
        }
        if let Some(offset) = self.offset {
            headers.insert("upload-offset", HeaderValue::from(offset));
        }
        if let Some(length) = self.length
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{length}"))
        {
            headers.insert(header::CONTENT_RANGE, v);
        }
        response
    }
}
