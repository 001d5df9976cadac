//! Refusals in the Django chunked-upload family's terms: a status and a JSON body
//! (`{"detail": ...}`), with the current offset where it helps a client resume.

use axum::Json;
use axum::response::{IntoResponse, Response};
use chunkd_core::Error as CoreError;
use http::{StatusCode, header};

use crate::download;
use serde_json::{Value, json};

use crate::refusal::{HookHeaders, Kind, Refusal};

/// A refusal: a status and a Django-style JSON body (`{"detail": ...}`).
#[derive(Debug)]
pub struct Error {
    status: StatusCode,
    body: Value,
    /// `Content-Range: bytes */length` for 416.
    unsatisfied_length: Option<u64>,
    hook_headers: HookHeaders,
}

impl Error {
    pub(super) fn new(status: StatusCode, body: Value) -> Self {
        Error {
            status,
            body,
            unsatisfied_length: None,
            hook_headers: HookHeaders::default(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(length) = self.unsatisfied_length {
            response
                .headers_mut()
                .insert(header::CONTENT_RANGE, download::unsatisfied_range(length));
        }
        self.hook_headers.apply(response.headers_mut());
        response
    }
}

pub(super) fn detail(status: StatusCode, message: impl ToString) -> Error {
    Error::new(status, json!({ "detail": message.to_string() }))
}

pub(super) fn bad_request(message: impl ToString) -> Error {
    detail(StatusCode::BAD_REQUEST, message)
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        let hook_headers = refusal.headers.clone();
        let error = match refusal.kind {
            Kind::NotFound => detail(StatusCode::NOT_FOUND, "Not found."),
            Kind::Expired => detail(StatusCode::GONE, "Upload has expired"),
            // drf-chunked-upload answers a wrong offset with 400 and the right offset.
            Kind::OffsetMismatch { expected, provided } => offsets_do_not_match(expected, provided),
            Kind::RangeNotSatisfiable { length } => Error {
                unsatisfied_length: Some(length),
                ..detail(refusal.status, refusal.message)
            },
            _ => detail(refusal.status, refusal.message),
        };
        Error {
            hook_headers,
            ..error
        }
    }
}

impl From<CoreError> for Error {
    fn from(err: CoreError) -> Self {
        Refusal::from(err).into()
    }
}

pub(super) fn engine_error(err: CoreError) -> Error {
    err.into()
}

pub(super) fn offsets_do_not_match(expected: u64, provided: u64) -> Error {
    let body = json!({
        "detail": "Offsets do not match",
        "offset": expected,
        "expected_offset": expected,
        "provided_offset": provided,
    });
    Error::new(StatusCode::BAD_REQUEST, body)
}
