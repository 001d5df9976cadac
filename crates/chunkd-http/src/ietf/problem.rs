//! Refusals in the draft's terms: a status, the upload state headers the draft asks
//! for, and an RFC 9457 problem document (interop 6 onwards; plain text before).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use super::version::Interop;
use crate::refusal::{HookHeaders, Kind as RefusalKind, Refusal};

const PROBLEM_TYPES: &str = "https://iana.org/assignments/http-problem-types#";

/// The draft's registered problem types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    MismatchingOffset { expected: u64, provided: u64 },
    InconsistentLength,
    CompletedUpload,
    Other,
}

#[derive(Debug)]
pub(crate) struct Problem {
    pub status: StatusCode,
    pub kind: Kind,
    pub detail: String,
    /// `Upload-Offset` to report (409 must carry the correct offset).
    pub offset: Option<u64>,
    /// `Upload-Complete` to report: `Some(true)` tells the client not to resume.
    pub complete: Option<bool>,
    /// Carry `Upload-Limit` (a 413 caused by the limits must).
    pub with_limits: bool,
    /// The upload resource, for a failed creation the client may still resume.
    pub location: Option<String>,
    /// Headers a hook's refusal adds.
    pub hook_headers: HookHeaders,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            kind: Kind::Other,
            detail: detail.into(),
            offset: None,
            complete: None,
            with_limits: false,
            location: None,
            hook_headers: HookHeaders::default(),
        }
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    pub(crate) fn inconsistent_length(detail: impl Into<String>) -> Problem {
        Problem {
            kind: Kind::InconsistentLength,
            ..Problem::bad_request(detail)
        }
    }

    pub(crate) fn not_found() -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "no such upload")
    }

    /// Renders the problem; `limits` is the `Upload-Limit` value for this version.
    pub(crate) fn render(self, interop: Interop, limits: &str) -> Response {
        let mut response = if interop.problem_details() {
            let (type_uri, title) = match self.kind {
                Kind::MismatchingOffset { .. } => (
                    format!("{PROBLEM_TYPES}mismatching-upload-offset"),
                    "offset from request does not match offset of resource",
                ),
                Kind::InconsistentLength => (
                    format!("{PROBLEM_TYPES}inconsistent-upload-length"),
                    "inconsistent length values for upload",
                ),
                Kind::CompletedUpload => (
                    format!("{PROBLEM_TYPES}completed-upload"),
                    "upload is already completed",
                ),
                Kind::Other => (
                    "about:blank".to_owned(),
                    self.status.canonical_reason().unwrap_or("error"),
                ),
            };
            let mut body = json!({
                "type": type_uri,
                "title": title,
                "status": self.status.as_u16(),
                "detail": self.detail,
            });
            if let Kind::MismatchingOffset { expected, provided } = self.kind {
                body["expected-offset"] = json!(expected);
                body["provided-offset"] = json!(provided);
            }
            let mut response = (self.status, body.to_string()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            response
        } else {
            let mut response = (self.status, format!("{}\n", self.detail)).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        };
        let headers = response.headers_mut();
        if let Some(offset) = self.offset {
            headers.insert("upload-offset", HeaderValue::from(offset));
        }
        if let Some(complete) = self.complete {
            let (name, true_means_complete) = interop.completeness_header();
            let value = if complete == true_means_complete {
                "?1"
            } else {
                "?0"
            };
            headers.insert(name, HeaderValue::from_static(value));
        }
        if self.with_limits
            && let Ok(v) = HeaderValue::from_str(limits)
        {
            headers.insert("upload-limit", v);
        }
        if let Some(location) = self.location
            && let Ok(v) = HeaderValue::from_str(&location)
        {
            headers.insert(header::LOCATION, v);
        }
        if let Some(version) = interop.announced() {
            headers.insert(
                super::version::INTEROP_HEADER,
                HeaderValue::from(u16::from(version)),
            );
        }
        self.hook_headers.apply(headers);
        response
    }
}

impl From<Refusal> for Problem {
    fn from(refusal: Refusal) -> Self {
        let problem = Problem {
            offset: refusal.offset,
            hook_headers: refusal.headers,
            ..Problem::new(refusal.status, refusal.message)
        };
        match refusal.kind {
            RefusalKind::OffsetMismatch { expected, provided } => Problem {
                kind: Kind::MismatchingOffset { expected, provided },
                complete: Some(false),
                ..problem
            },
            RefusalKind::LengthExceeded | RefusalKind::InvalidLength => Problem {
                kind: Kind::InconsistentLength,
                status: StatusCode::BAD_REQUEST,
                ..problem
            },
            // A 413 caused by the limits carries them.
            RefusalKind::TooLarge => Problem {
                with_limits: true,
                ..problem
            },
            // The client may resume from the offset it will find with HEAD.
            RefusalKind::Interrupted | RefusalKind::ShuttingDown => Problem {
                complete: Some(false),
                ..problem
            },
            RefusalKind::NotFound => Problem::not_found(),
            RefusalKind::Expired => Problem::new(StatusCode::GONE, "the upload expired"),
            RefusalKind::FinalUpload
            | RefusalKind::IncompleteBody
            | RefusalKind::ChecksumMismatch
            | RefusalKind::ChecksumMissing
            | RefusalKind::Locked
            | RefusalKind::NotFinished
            | RefusalKind::InvalidConcat
            | RefusalKind::InvalidPart
            | RefusalKind::RangeNotSatisfiable { .. }
            | RefusalKind::Rejected
            | RefusalKind::NotSupported
            | RefusalKind::StorageFull
            | RefusalKind::Unidentified
            | RefusalKind::TooManyUploads
            | RefusalKind::Internal => problem,
        }
    }
}

impl From<chunkd_core::Error> for Problem {
    fn from(err: chunkd_core::Error) -> Self {
        Refusal::from(err).into()
    }
}
