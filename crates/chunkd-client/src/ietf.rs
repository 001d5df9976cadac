//! The IETF resumable-upload draft with its newest rules (no interop version announced,
//! so no 104 interim answers are asked for): a careful creation (POST with
//! `Upload-Complete: ?0` and no content) for the URL, HEAD for the offset, PATCH with
//! `application/partial-upload`, `Upload-Complete: ?1` on the last, DELETE to cancel.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use url::Url;

use crate::checksum;
use crate::error::Error;
use crate::http::{self, Attempt};
use crate::metadata::Metadata;
use crate::protocol::{Capabilities, Chunk, Remote, Server};

/// RFC 8187's attr-char, left as it is in `filename*`.
const ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// A structured-field boolean.
fn boolean(response: &reqwest::Response, name: &str) -> Option<bool> {
    match http::text(response, name)? {
        "?1" => Some(true),
        "?0" => Some(false),
        _ => None,
    }
}

/// `max-size` of an `Upload-Limit` dictionary; any malformed member voids the field.
fn max_size(limit: Option<&str>) -> Option<u64> {
    let mut max = None;
    for member in limit?.split(',') {
        let (key, value) = member.trim().split_once('=')?;
        let value: u64 = value.trim().parse().ok()?;
        if key.trim() == "max-size" {
            max = Some(value);
        }
    }
    max
}

pub(crate) async fn discover(server: &Server) -> Attempt<Capabilities> {
    let request = server.http.request(Method::OPTIONS, &server.endpoint);
    let response = server.http.send(request).await?;
    let Some(limit) = http::text(&response, "upload-limit") else {
        return Err(Error::Unsupported(format!(
            "{} does not speak the resumable-upload draft (no Upload-Limit in its OPTIONS answer)",
            server.endpoint
        ))
        .into());
    };
    Ok(Capabilities {
        extensions: Vec::new(),
        checksums: vec!["sha256".to_owned()],
        max_size: max_size(Some(limit)),
    })
}

pub(crate) async fn create(server: &Server, length: u64, metadata: &Metadata) -> Attempt<Url> {
    let mut request = server
        .http
        .request(Method::POST, &server.endpoint)
        .header("upload-complete", "?0")
        .header("upload-length", length)
        .header(CONTENT_LENGTH, 0)
        .body("");
    if let Some(name) = metadata.get("filename") {
        let encoded = utf8_percent_encode(name, ATTR);
        request = request.header(
            CONTENT_DISPOSITION,
            format!("inline; filename*=UTF-8''{encoded}"),
        );
    }
    if let Some(filetype) = metadata.get("filetype") {
        request = request.header(CONTENT_TYPE, filetype);
    }
    let response = server.http.send(request).await?;
    Ok(http::location(&response)?)
}

/// Where the upload of `length` bytes at `url` stands; one said complete short of its
/// length is a protocol error (bytes would be missing from the stored file).
pub(crate) async fn status(server: &Server, url: &Url, length: u64) -> Attempt<Remote> {
    let response = server
        .http
        .send(server.http.request(Method::HEAD, url))
        .await?;
    let Some(offset) = http::integer(&response, "upload-offset")? else {
        return Err(Error::Protocol(format!("{url} answered HEAD without Upload-Offset")).into());
    };
    let complete = boolean(&response, "upload-complete").unwrap_or(false);
    if complete && offset != length {
        return Err(Error::Protocol(format!(
            "{url} reports the upload complete at offset {offset} of {length} bytes"
        ))
        .into());
    }
    Ok(Remote { offset, complete })
}

pub(crate) async fn append(server: &Server, url: &Url, chunk: Chunk) -> Attempt<u64> {
    let mut request = server
        .http
        .request(Method::PATCH, url)
        .header(CONTENT_TYPE, "application/partial-upload")
        .header("upload-offset", chunk.offset)
        .header("upload-complete", if chunk.last { "?1" } else { "?0" })
        .header(CONTENT_LENGTH, chunk.len)
        .body(chunk.body);
    let pulse = chunk.pulse;
    if let Some((algorithm, digest)) = &chunk.checksum
        && let Some(field) = checksum::digest_field(*algorithm, digest)
    {
        request = request.header("content-digest", field);
    }
    let response = server.http.send_body(request, &pulse).await?;
    let end = chunk.offset.saturating_add(chunk.len);
    if chunk.last && boolean(&response, "upload-complete") == Some(false) {
        return Err(Error::Protocol(format!(
            "{url} did not complete the upload on its last append"
        ))
        .into());
    }
    // A 2xx means every byte was taken; interop 7 made the offset optional here.
    let offset = http::integer(&response, "upload-offset")?.unwrap_or(end);
    // Complete before the last byte: the stored file would lack the rest.
    if boolean(&response, "upload-complete") == Some(true) && !(chunk.last && offset == end) {
        return Err(Error::Protocol(format!(
            "{url} reports the upload complete at offset {offset}, before its last byte"
        ))
        .into());
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_size_from_upload_limit() {
        assert_eq!(max_size(Some("max-size=1000, max-age=3600")), Some(1000));
        assert_eq!(max_size(Some("min-size=0")), None);
        assert_eq!(max_size(Some("max-size=abc")), None);
        assert_eq!(max_size(None), None);
    }
}
