//! Refusals in the Django chunked-upload family's terms: a status and a JSON body
//! (`{"detail": ...}`), with the current offset where it helps a client resume.

use axum::Json;
use axum::response::{IntoResponse, Response};
use chunkd_core::Error as CoreError;
use http::StatusCode;
use serde_json::{Value, json};

/// A refusal: a status and a Django-style JSON body (`{"detail": ...}`).
#[derive(Debug)]
pub struct Error {
    pub(super) status: StatusCode,
    pub(super) body: Value,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

pub(super) fn detail(status: StatusCode, message: impl ToString) -> Error {
    Error {
        status,
        body: json!({ "detail": message.to_string() }),
    }
}

pub(super) fn bad_request(message: impl ToString) -> Error {
    detail(StatusCode::BAD_REQUEST, message)
}

pub(super) fn engine_error(err: CoreError) -> Error {
    match err {
        CoreError::NotFound(_) => detail(StatusCode::NOT_FOUND, "Not found."),
        CoreError::Expired(_) => detail(StatusCode::GONE, "Upload has expired"),
        CoreError::TooLarge { max } => detail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Size of file exceeds the limit ({max} bytes)"),
        ),
        CoreError::OffsetMismatch { expected, got } => offsets_do_not_match(expected, got),
        CoreError::Locked => detail(StatusCode::LOCKED, "upload is busy with another request"),
        CoreError::Rejected(r) => detail(
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN),
            r.message,
        ),
        CoreError::ShuttingDown { .. } => {
            detail(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down")
        }
        CoreError::Backend { .. } | CoreError::Conflict | CoreError::AlreadyExists(_) => {
            tracing::error!(error = %err, "content-range upload failed");
            detail(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
        }
        other => bad_request(other),
    }
}

pub(super) fn offsets_do_not_match(expected: u64, provided: u64) -> Error {
    let body = json!({
        "detail": "Offsets do not match",
        "offset": expected,
        "expected_offset": expected,
        "provided_offset": provided,
    });
    Error {
        status: StatusCode::BAD_REQUEST,
        body,
    }
}
