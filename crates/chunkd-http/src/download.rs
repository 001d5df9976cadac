//! Serving a finished upload's bytes, for every front end that offers downloads: one
//! answer shape (ranges, length, type, a safe attachment name, `nosniff`), so a file
//! reads the same whichever protocol stored it.

use axum::body::Body;
use axum::response::Response;
use chunkd_core::metadata::keys;
use chunkd_core::{Caller, UploadId, UploadInfo};
use http::{HeaderValue, StatusCode, header};

use crate::{disposition, range};

/// The upload's bytes, or the part of them a `Range` header (its value, when sent) asks
/// for. An unsatisfiable range is [`chunkd_core::Error::RangeNotSatisfiable`], whose
/// refusal carries the length for [`unsatisfied_range`].
pub async fn respond(
    caller: &Caller,
    id: &UploadId,
    range_header: Option<&str>,
) -> Result<Response, chunkd_core::Error> {
    let info = caller.info(id).await?;
    let length = info.length.unwrap_or(info.offset);
    let (status, span) = match range::parse(range_header, length) {
        range::Ranged::Full => (StatusCode::OK, 0..length),
        range::Ranged::Part(r) => (StatusCode::PARTIAL_CONTENT, r),
        range::Ranged::Unsatisfiable => {
            return Err(chunkd_core::Error::RangeNotSatisfiable { length });
        }
    };
    let (info, stream) = caller.read(id, Some(span.clone())).await?;
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(span.end - span.start),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CONTENT_TYPE, content_type(&info));
    if let Ok(v) =
        HeaderValue::from_str(&disposition::attachment(info.metadata.text(keys::FILENAME)))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) =
            HeaderValue::from_str(&format!("bytes {}-{}/{length}", span.start, span.end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

/// `Content-Range: bytes */length`, which a 416 answer carries (RFC 9110 §15.5.17).
pub fn unsatisfied_range(length: u64) -> HeaderValue {
    // Digits and ASCII only, so always a valid value.
    HeaderValue::from_str(&format!("bytes */{length}"))
        .unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
}

/// The client's `filetype` if it is a well-formed media type, else octet-stream. The
/// download is always an attachment with `nosniff`, so a type cannot turn into a page.
fn content_type(info: &UploadInfo) -> HeaderValue {
    info.metadata
        .text(keys::FILETYPE)
        .filter(|t| disposition::is_media_type(t))
        .and_then(|t| HeaderValue::from_str(t).ok())
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"))
}
