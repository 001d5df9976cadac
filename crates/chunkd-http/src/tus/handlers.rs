//! The tus endpoints. Each request is checked, turned into one engine call, and answered.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use chunkd_core::engine::{ExpectedChecksum, TrailerSlot};
use chunkd_core::{ConcatKind, NewUpload, UploadId, UploadInfo, WriteRequest};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::error::Error;
use super::headers::{self, ChecksumError, UploadConcat};
use super::{TUS_RESUMABLE, TUS_VERSION, Tus};
use crate::forward::{Completed, CompletedFile};
use crate::routing::{Acting, Target};
use crate::{body, download};

const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

type Answer = Result<Response, Error>;

fn reply(status: StatusCode) -> Response {
    let mut response = status.into_response();
    response
        .headers_mut()
        .insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
    response
}

/// A method the route lacks (axum adds `Allow`).
pub(super) async fn not_allowed() -> Response {
    reply(StatusCode::METHOD_NOT_ALLOWED)
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A present header must be valid text; `Ok(None)` when absent.
fn header_str<'a>(
    headers: &'a HeaderMap,
    name: &str,
    code: &'static str,
) -> Result<Option<&'a str>, Error> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| Error::bad_request(code, format!("{name} is not valid text"))),
    }
}

fn number(headers: &HeaderMap, name: &str, code: &'static str) -> Result<Option<u64>, Error> {
    match header_str(headers, name, code)? {
        None => Ok(None),
        Some(v) => headers::parse_u64(v.trim()).map(Some).ok_or_else(|| {
            Error::bad_request(code, format!("{name} must be a non-negative integer"))
        }),
    }
}

/// Every tus request but OPTIONS must speak our version (downloads are not tus: a
/// browser fetches them).
fn check_version(headers: &HeaderMap) -> Result<(), Error> {
    match text(headers, TUS_RESUMABLE) {
        Some(v) if v.trim() == TUS_VERSION => Ok(()),
        _ => Err(Error::new(
            StatusCode::PRECONDITION_FAILED,
            "ERR_UNSUPPORTED_VERSION",
            "unsupported version: send Tus-Resumable: 1.0.0",
        )),
    }
}

/// Whether a request says it carries a body (a non-zero length, or chunked).
fn has_body(headers: &HeaderMap) -> bool {
    let length = text(headers, header::CONTENT_LENGTH.as_str()).map(str::trim);
    headers.contains_key(header::TRANSFER_ENCODING) || length.is_some_and(|l| l != "0")
}

fn has_offset_stream(headers: &HeaderMap) -> bool {
    text(headers, header::CONTENT_TYPE.as_str())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

fn set(response: &mut Response, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        response.headers_mut().insert(name, v);
    }
}

impl Tus {
    fn origin(&self, req: &Request) -> String {
        self.public_url.of_request(req)
    }

    fn upload_url(&self, origin: &str, id: &UploadId) -> String {
        format!("{origin}{}/{id}", self.path)
    }

    /// The upload id inside an absolute or relative upload URL of ours.
    fn id_from_url(&self, url: &str) -> Option<UploadId> {
        let path = match url.split_once("://") {
            Some((_, rest)) => &rest[rest.find('/')?..],
            None => url,
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        path.strip_prefix(&self.path)?
            .strip_prefix('/')?
            .parse()
            .ok()
    }

    /// Discovery: what this server supports, asked without identity.
    pub(super) async fn options(State(tus): State<Arc<Tus>>) -> Response {
        let tus = &*tus;
        // 200, as tusd answers and conformance tools expect (the text allows 204 too).
        let mut response = reply(StatusCode::OK);
        set(&mut response, "tus-version", TUS_VERSION);
        set(&mut response, "tus-extension", &tus.extensions);
        set(
            &mut response,
            "tus-checksum-algorithm",
            &tus.checksum_algorithms,
        );
        if let Some(max) = tus.uploads.capabilities().max_size {
            set(&mut response, "tus-max-size", max);
        }
        response
    }

    /// Marks a response that finished an upload, so forward mode can tell the application.
    fn mark_completed(&self, response: &mut Response, origin: &str, info: &UploadInfo) {
        if info.is_finished() {
            let file = CompletedFile::of(info, Some(self.upload_url(origin, &info.id)));
            response
                .extensions_mut()
                .insert(Completed::notify(vec![file]));
        }
    }

    fn set_expiry(&self, response: &mut Response, info: &UploadInfo) {
        if let (false, Some(at)) = (info.is_finished(), info.expires_at) {
            set(response, "upload-expires", httpdate::fmt_http_date(at));
        }
    }

    pub(super) async fn create(
        State(tus): State<Arc<Tus>>,
        Acting(caller): Acting,
        req: Request,
    ) -> Answer {
        let headers = req.headers();
        check_version(headers)?;
        let concat = match header_str(headers, "upload-concat", "ERR_INVALID_CONCAT")? {
            None => None,
            Some(v) => Some(headers::parse_concat(v).ok_or_else(|| {
                Error::bad_request("ERR_INVALID_CONCAT", "malformed Upload-Concat")
            })?),
        };
        let length = number(headers, "upload-length", "ERR_INVALID_UPLOAD_LENGTH")?;
        let deferred = match header_str(
            headers,
            "upload-defer-length",
            "ERR_INVALID_UPLOAD_LENGTH_DEFER",
        )? {
            None => false,
            Some("1") => true,
            Some(_) => {
                return Err(Error::bad_request(
                    "ERR_INVALID_UPLOAD_LENGTH_DEFER",
                    "Upload-Defer-Length must be 1",
                ));
            }
        };
        let is_final = matches!(concat, Some(UploadConcat::Final(_)));
        match (is_final, length.is_some(), deferred) {
            (true, false, false) | (false, true, false) | (false, false, true) => {}
            (true, _, _) => {
                return Err(Error::bad_request(
                    "ERR_AMBIGUOUS_UPLOAD_LENGTH",
                    "a final upload takes its length from its parts",
                ));
            }
            (false, true, true) => {
                return Err(Error::bad_request(
                    "ERR_AMBIGUOUS_UPLOAD_LENGTH",
                    "send Upload-Length or Upload-Defer-Length, not both",
                ));
            }
            (false, false, false) => {
                return Err(Error::bad_request(
                    "ERR_INVALID_UPLOAD_LENGTH",
                    "missing Upload-Length or Upload-Defer-Length",
                ));
            }
        }
        let metadata = match header_str(headers, "upload-metadata", "ERR_INVALID_METADATA")? {
            None => Default::default(),
            Some(v) => headers::parse_metadata(v)
                .map_err(|e| Error::bad_request("ERR_INVALID_METADATA", e.to_string()))?,
        };
        let with_data = has_offset_stream(headers);
        if !with_data && has_body(headers) && headers.contains_key(header::CONTENT_TYPE) {
            return Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "ERR_INVALID_CONTENT_TYPE",
                "creation with upload takes Content-Type: application/offset+octet-stream",
            ));
        }
        if is_final && with_data {
            return Err(chunkd_core::Error::FinalUpload.into());
        }
        let body_len = number(headers, "content-length", "ERR_INVALID_CONTENT_LENGTH")?;
        if let (true, Some(length), Some(body_len)) = (with_data, length, body_len)
            && body_len > length
        {
            return Err(chunkd_core::Error::LengthExceeded { length }.into());
        }
        let concat = match concat {
            None => ConcatKind::None,
            Some(UploadConcat::Partial) => ConcatKind::Partial,
            Some(UploadConcat::Final(urls)) => ConcatKind::Final(
                urls.iter()
                    .map(|u| tus.id_from_url(u))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        Error::bad_request(
                            "ERR_INVALID_CONCAT",
                            "Upload-Concat lists a URL that is not an upload here",
                        )
                    })?,
            ),
        };
        let write = if with_data {
            Some(tus.write_request(headers, 0)?)
        } else {
            None
        };
        let origin = tus.origin(&req);
        let new = NewUpload {
            length,
            metadata,
            concat,
            ..Default::default()
        };
        let mut info = caller.create(new).await?;
        if let Some((write, slot)) = write {
            let stream = tus.body_stream(req.into_body(), slot);
            // The upload exists and keeps what arrived, however the body ended: the
            // client learns where it stands.
            info = caller.write(&info.id, write, stream).await?.info;
        }
        let mut response = reply(StatusCode::CREATED);
        set(&mut response, "location", tus.upload_url(&origin, &info.id));
        set(&mut response, "upload-offset", info.offset);
        tus.set_expiry(&mut response, &info);
        tus.mark_completed(&mut response, &origin, &info);
        Ok(response)
    }

    /// The engine's view of a PATCH (or POST with data): offset, checksum, sizes.
    fn write_request(
        &self,
        headers: &HeaderMap,
        offset: u64,
    ) -> Result<(WriteRequest, Option<TrailerSlot>), Error> {
        let body_len = number(headers, "content-length", "ERR_INVALID_CONTENT_LENGTH")?;
        let mut slot = None;
        let checksum = match header_str(headers, "upload-checksum", "ERR_INVALID_CHECKSUM")? {
            Some(v) => Some(ExpectedChecksum::Header(
                headers::parse_checksum(v).map_err(|e| match e {
                    ChecksumError::UnknownAlgorithm => {
                        Error::bad_request("ERR_UNSUPPORTED_CHECKSUM_ALGORITHM", e.to_string())
                    }
                    ChecksumError::Malformed => {
                        Error::bad_request("ERR_INVALID_CHECKSUM", e.to_string())
                    }
                })?,
            )),
            None if announces_checksum_trailer(headers) => {
                let s: TrailerSlot = Arc::new(Mutex::new(None));
                slot = Some(s.clone());
                Some(ExpectedChecksum::Trailer(s))
            }
            None => None,
        };
        let request = WriteRequest {
            offset,
            body_len,
            checksum,
            ..WriteRequest::default()
        };
        Ok((request, slot))
    }

    fn body_stream(
        &self,
        body: Body,
        slot: Option<TrailerSlot>,
    ) -> chunkd_core::ByteStream<'static> {
        body::byte_stream(body, self.idle_timeout, move |trailers| {
            let (Some(slot), Some(value)) = (&slot, trailers.get("upload-checksum")) else {
                return;
            };
            let parsed = value
                .to_str()
                .ok()
                .and_then(|v| headers::parse_checksum(v).ok());
            if let (Some(checksum), Ok(mut guard)) = (parsed, slot.lock()) {
                *guard = Some(checksum);
            }
        })
    }

    pub(super) async fn head(
        State(tus): State<Arc<Tus>>,
        Target { caller, id }: Target,
        req: Request,
    ) -> Answer {
        check_version(req.headers())?;
        let info = caller.settled_info(&id).await?;
        let origin = tus.origin(&req);
        let mut response = reply(StatusCode::OK);
        set(&mut response, "cache-control", "no-store");
        let waiting_final = info.is_final() && !info.is_finished();
        if !waiting_final {
            set(&mut response, "upload-offset", info.offset);
        }
        match info.length {
            Some(length) => set(&mut response, "upload-length", length),
            None => set(&mut response, "upload-defer-length", 1),
        }
        if !info.metadata.is_empty() {
            set(
                &mut response,
                "upload-metadata",
                headers::encode_metadata(&info.metadata),
            );
        }
        match &info.concat {
            ConcatKind::None => {}
            ConcatKind::Partial => set(&mut response, "upload-concat", "partial"),
            ConcatKind::Final(parts) => {
                let urls: Vec<String> = parts.iter().map(|p| tus.upload_url(&origin, p)).collect();
                set(
                    &mut response,
                    "upload-concat",
                    format!("final;{}", urls.join(" ")),
                );
            }
        }
        tus.set_expiry(&mut response, &info);
        Ok(response)
    }

    pub(super) async fn patch(
        State(tus): State<Arc<Tus>>,
        Target { caller, id }: Target,
        req: Request,
    ) -> Answer {
        let headers = req.headers();
        check_version(headers)?;
        if !has_offset_stream(headers) {
            return Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "ERR_INVALID_CONTENT_TYPE",
                "PATCH requires Content-Type: application/offset+octet-stream",
            ));
        }
        let offset = number(headers, "upload-offset", "ERR_INVALID_OFFSET")?
            .ok_or_else(|| Error::bad_request("ERR_INVALID_OFFSET", "missing Upload-Offset"))?;
        let declare_length = number(headers, "upload-length", "ERR_INVALID_UPLOAD_LENGTH")?;
        let (mut write, slot) = tus.write_request(headers, offset)?;
        write.declare_length = declare_length;
        let origin = tus.origin(&req);
        let stream = tus.body_stream(req.into_body(), slot);
        let info = caller.write(&id, write, stream).await?.stopped()?;
        let mut response = reply(StatusCode::NO_CONTENT);
        set(&mut response, "upload-offset", info.offset);
        tus.set_expiry(&mut response, &info);
        tus.mark_completed(&mut response, &origin, &info);
        Ok(response)
    }

    pub(super) async fn delete(Target { caller, id }: Target, req: Request) -> Answer {
        check_version(req.headers())?;
        caller.terminate(&id).await?;
        Ok(reply(StatusCode::NO_CONTENT))
    }

    pub(super) async fn download(Target { caller, id }: Target, req: Request) -> Answer {
        let range = text(req.headers(), header::RANGE.as_str());
        let mut response = download::respond(&caller, &id, range).await?;
        response
            .headers_mut()
            .insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
        Ok(response)
    }
}

/// A request announcing `Trailer: Upload-Checksum` sends the checksum after the body.
fn announces_checksum_trailer(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRAILER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|name| name.trim().eq_ignore_ascii_case("upload-checksum"))
}
