//! Core errors and bad requests rendered the tus way: a status, a tusd-style
//! `ERR_CODE: message` body, and `Tus-Resumable` on every answer.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::{TUS_RESUMABLE, TUS_VERSION};
use crate::download;
use crate::refusal::{HookHeaders, Kind, Refusal};

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
    hook_headers: HookHeaders,
}

impl Error {
    /// A refusal with tusd's error `code` (`ERR_...`).
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Error {
            status,
            code,
            message: message.into(),
            offset: None,
            length: None,
            hook_headers: HookHeaders::default(),
        }
    }

    /// A 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// `404 ERR_UPLOAD_NOT_FOUND`.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ERR_UPLOAD_NOT_FOUND",
            "upload not found",
        )
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        let status = match refusal.kind {
            // tus's own 460 Checksum Mismatch.
            Kind::ChecksumMismatch => StatusCode::from_u16(460).unwrap_or(refusal.status),
            // Not 409: tus clients take that for an offset mismatch and ask again; this
            // request's client has already moved on to a newer one.
            Kind::Interrupted => StatusCode::BAD_REQUEST,
            _ => refusal.status,
        };
        let length = match refusal.kind {
            Kind::RangeNotSatisfiable { length } => Some(length),
            _ => None,
        };
        Error {
            status,
            code: refusal.kind.code(),
            message: refusal.message,
            offset: refusal.offset,
            length,
            hook_headers: refusal.headers,
        }
    }
}

impl From<chunkd_core::Error> for Error {
    fn from(err: chunkd_core::Error) -> Self {
        Refusal::from(err).into()
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
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
        if let Some(length) = self.length {
            headers.insert(header::CONTENT_RANGE, download::unsatisfied_range(length));
        }
        self.hook_headers.apply(headers);
        response
    }
}
