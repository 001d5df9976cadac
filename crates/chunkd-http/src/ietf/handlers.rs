//! The draft's requests, each checked, turned into engine calls, and answered in the
//! announced interop version's terms.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use chunkd_core::engine::ExpectedChecksum;
use chunkd_core::metadata::keys;
use chunkd_core::{Caller, Checksum, Metadata, NewUpload, UploadId, UploadInfo, WriteRequest};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use super::Ietf;
use super::append::Completion;
use super::digest::{self, Digest, REPR_DIGEST_KEY};
use super::fields;
use super::problem::Problem;
use super::version::{INTEROP_HEADER, Interop, Unsupported};
use crate::disposition;
use crate::identity;
use crate::interim::Interim;

const PARTIAL_UPLOAD: &str = "application/partial-upload";

pub(super) type Answer = Result<Response, Problem>;

/// `{path}` and `{path}/`: discovery and creation.
pub(super) async fn collection(State(ietf): State<Arc<Ietf>>, req: Request) -> Response {
    let interop = match Interop::of(req.headers()) {
        Ok(interop) => interop,
        Err(unsupported) => return ietf.unsupported(unsupported),
    };
    let answer = match *req.method() {
        Method::OPTIONS => Ok(ietf.options(interop)),
        Method::POST | Method::PUT => match identity::caller(&ietf.uploads, &req) {
            Ok(caller) => ietf.create(interop, &caller, req).await,
            Err(refusal) => Err(refusal.into()),
        },
        _ => Ok(ietf.method_not_allowed(interop, "OPTIONS, POST, PUT")),
    };
    ietf.answer(interop, answer)
}

/// `{path}/{id}`: one upload resource.
pub(super) async fn resource(
    State(ietf): State<Arc<Ietf>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let interop = match Interop::of(req.headers()) {
        Ok(interop) => interop,
        Err(unsupported) => return ietf.unsupported(unsupported),
    };
    if req.method() == Method::OPTIONS {
        return ietf.options(interop);
    }
    // An id we could never have issued is simply unknown, whatever it contains.
    let Ok(id) = id.parse::<UploadId>() else {
        return ietf.answer(interop, Err(Problem::not_found()));
    };
    let caller = match identity::caller(&ietf.uploads, &req) {
        Ok(caller) => caller,
        Err(refusal) => return ietf.answer(interop, Err(refusal.into())),
    };
    let answer = match *req.method() {
        Method::HEAD | Method::GET => ietf.offset(interop, &caller, &id).await,
        Method::PATCH => ietf.patch(interop, &caller, &id, req).await,
        Method::DELETE => ietf.delete(interop, &caller, &id).await,
        _ => Ok(ietf.method_not_allowed(interop, "OPTIONS, HEAD, GET, PATCH, DELETE")),
    };
    ietf.answer(interop, answer)
}

pub(super) fn set(response: &mut Response, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        response.headers_mut().insert(name, v);
    }
}

/// A structured-field integer header; a malformed value is ignored, as the draft says.
fn integer(headers: &HeaderMap, name: &str) -> Option<u64> {
    fields::non_negative(headers.get(name)?.as_bytes())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether this request ends the upload, in the version's own field.
fn completeness(headers: &HeaderMap, interop: Interop) -> Result<bool, Problem> {
    let (name, true_means_complete) = interop.completeness_header();
    match headers
        .get(name)
        .and_then(|v| fields::boolean(v.as_bytes()))
    {
        Some(value) => Ok(value == true_means_complete),
        None => interop.completeness_default().ok_or_else(|| {
            Problem::bad_request(format!(
                "{name} must be a structured-field boolean (?0 or ?1)"
            ))
        }),
    }
}

/// Every length indication must agree; the agreed length, if any.
fn consistent_length(indications: &[Option<u64>]) -> Result<Option<u64>, Problem> {
    let mut known = indications.iter().flatten();
    let first = known.next().copied();
    if let Some(first) = first
        && known.any(|&other| other != first)
    {
        return Err(Problem::inconsistent_length(
            "the length indications of the upload disagree",
        ));
    }
    Ok(first)
}

fn media_type(headers: &HeaderMap) -> Option<&str> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(ct.split(';').next().unwrap_or_default().trim())
}

/// The representation's media type, kept as `filetype` when it is well formed.
fn representation_type(headers: &HeaderMap) -> Option<String> {
    media_type(headers)
        .filter(|t| !t.eq_ignore_ascii_case(PARTIAL_UPLOAD))
        .filter(|t| disposition::is_media_type(t))
        .map(str::to_ascii_lowercase)
}

/// 104s go only to a client that announced the interop version it speaks.
fn interim_for(req: &Request, interop: Interop) -> Option<Interim> {
    Interim::of(req).filter(|_| interop.announced().is_some())
}

fn checksum_of(digest: Option<Digest>) -> Option<ExpectedChecksum> {
    digest.map(|d| {
        ExpectedChecksum::Header(Checksum {
            algorithm: d.algorithm,
            digest: d.value,
        })
    })
}

impl Ietf {
    fn origin(&self, req: &Request) -> String {
        self.public_url.of_request(req)
    }

    fn upload_url(&self, origin: &str, id: &UploadId) -> String {
        format!("{origin}{}/{id}", self.path)
    }

    /// `Upload-Limit` for this version: the size cap and the remaining lifetime.
    fn limits(&self, interop: Interop, info: Option<&UploadInfo>) -> String {
        let mut parts = Vec::new();
        if let Some(max) = self.uploads.capabilities().max_size {
            parts.push(format!("max-size={max}"));
        }
        let age = match info {
            Some(info) if info.is_finished() => None,
            Some(info) => info.expires_at.map(|at| {
                at.duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .as_secs()
            }),
            None => self.uploads.limits().expire_after.map(|d| d.as_secs()),
        };
        if let Some(age) = age {
            parts.push(format!("{}={age}", interop.age_key()));
        }
        if parts.is_empty() {
            // The draft asks for a value even without limits.
            "min-size=0".to_owned()
        } else {
            parts.join(", ")
        }
    }

    pub(super) fn reply(&self, status: StatusCode, interop: Interop) -> Response {
        let mut response = status.into_response();
        if let Some(version) = interop.announced() {
            response
                .headers_mut()
                .insert(INTEROP_HEADER, HeaderValue::from(u16::from(version)));
        }
        response
    }

    fn answer(&self, interop: Interop, answer: Answer) -> Response {
        answer.unwrap_or_else(|problem| problem.render(interop, &self.limits(interop, None)))
    }

    fn unsupported(&self, Unsupported(version): Unsupported) -> Response {
        let supported = super::version::SUPPORTED;
        Problem::bad_request(format!(
            "interop version {version} is not spoken here; versions {} to {} are",
            supported.start(),
            supported.end()
        ))
        .render(Interop::default(), "min-size=0")
    }

    fn method_not_allowed(&self, interop: Interop, allow: &'static str) -> Response {
        let mut response = self.reply(StatusCode::METHOD_NOT_ALLOWED, interop);
        set(&mut response, "allow", allow);
        response
    }

    fn options(&self, interop: Interop) -> Response {
        let mut response = self.reply(StatusCode::NO_CONTENT, interop);
        set(&mut response, "upload-limit", self.limits(interop, None));
        set(&mut response, "accept-patch", PARTIAL_UPLOAD);
        set(
            &mut response,
            "allow",
            "OPTIONS, POST, PUT, HEAD, GET, PATCH, DELETE",
        );
        response
    }

    pub(super) fn set_complete(&self, response: &mut Response, interop: Interop, complete: bool) {
        let (name, true_means_complete) = interop.completeness_header();
        let value = if complete == true_means_complete {
            "?1"
        } else {
            "?0"
        };
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }

    async fn create(&self, interop: Interop, caller: &Caller, req: Request) -> Answer {
        let headers = req.headers();
        let complete = completeness(headers, interop)?;
        let body_len = content_length(headers);
        let length = consistent_length(&[
            integer(headers, "upload-length"),
            body_len.filter(|_| complete),
        ])?;
        let mut metadata = Metadata::new();
        let filename = disposition::clean_filename(disposition::filename(headers))
            .map_err(Problem::bad_request)?;
        if let Some(name) = filename {
            metadata.insert(keys::FILENAME, name);
        }
        if let Some(media_type) = representation_type(headers) {
            metadata.insert(keys::FILETYPE, media_type);
        }
        if let Some(digest) = Digest::from_headers(headers, "repr-digest")? {
            metadata.insert(REPR_DIGEST_KEY, digest.field());
        }
        let checksum = checksum_of(Digest::from_headers(headers, "content-digest")?);
        let want = digest::wanted(headers);
        let origin = self.origin(&req);
        let interim = interim_for(&req, interop);

        let info = caller
            .create(NewUpload {
                length,
                metadata,
                ..Default::default()
            })
            .await?;
        let location = self.upload_url(&origin, &info.id);
        if let Some(interim) = &interim {
            let mut announce = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&location) {
                announce.insert(header::LOCATION, v);
            }
            if let Some(version) = interop.announced() {
                announce.insert(INTEROP_HEADER, HeaderValue::from(u16::from(version)));
            }
            if let Ok(v) = HeaderValue::from_str(&self.limits(interop, Some(&info))) {
                announce.insert("upload-limit", v);
            }
            if let Err(e) = interim.send(upload_resumption_supported(), &announce).await {
                tracing::debug!(error = %e, "104 not delivered");
            }
        }

        let write = WriteRequest {
            offset: 0,
            body_len,
            checksum,
            ..WriteRequest::default()
        };
        if body_len == Some(0) && !complete {
            // Careful creation: the client only wants the URL.
            return Ok(self.created(interop, &info, location));
        }
        let info = self
            .append(
                interop,
                caller,
                interim.as_ref(),
                &info.id,
                write,
                complete,
                req.into_body(),
            )
            .await
            .map_err(|mut problem| {
                // Whoever missed the 104 can still resume after a server-side failure.
                if problem.status.is_server_error() {
                    problem.location = Some(location.clone());
                }
                problem
            })?;
        if complete {
            let completion = Completion {
                status: StatusCode::CREATED,
                origin,
                want,
                location: Some(location),
                repr_digest: None,
            };
            return self.completed(interop, caller, &info, completion).await;
        }
        Ok(self.created(interop, &info, location))
    }

    /// 201 for a creation that leaves the upload open.
    fn created(&self, interop: Interop, info: &UploadInfo, location: String) -> Response {
        let mut response = self.reply(StatusCode::CREATED, interop);
        set(&mut response, "location", location);
        self.set_complete(&mut response, interop, false);
        set(&mut response, "upload-offset", info.offset);
        set(
            &mut response,
            "upload-limit",
            self.limits(interop, Some(info)),
        );
        response
    }

    async fn offset(&self, interop: Interop, caller: &Caller, id: &UploadId) -> Answer {
        // Waits for (and stops) a running append, so the offset is one the next PATCH
        // will be accepted at.
        let info = caller.settled_info(id).await?;
        let mut response = self.reply(StatusCode::NO_CONTENT, interop);
        set(&mut response, "upload-offset", info.offset);
        self.set_complete(&mut response, interop, info.is_finished());
        if let Some(length) = info.length {
            set(&mut response, "upload-length", length);
        }
        set(
            &mut response,
            "upload-limit",
            self.limits(interop, Some(&info)),
        );
        set(&mut response, "cache-control", "no-store");
        Ok(response)
    }

    async fn patch(
        &self,
        interop: Interop,
        caller: &Caller,
        id: &UploadId,
        req: Request,
    ) -> Answer {
        let headers = req.headers();
        if interop.requires_partial_upload_type()
            && !media_type(headers).is_some_and(|t| t.eq_ignore_ascii_case(PARTIAL_UPLOAD))
        {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "an append needs Content-Type: application/partial-upload",
            ));
        }
        let offset = integer(headers, "upload-offset").ok_or_else(|| {
            Problem::bad_request("Upload-Offset must be a structured-field integer")
        })?;
        let complete = completeness(headers, interop)?;
        let upload_length = integer(headers, "upload-length");
        let body_len = content_length(headers);
        let checksum = checksum_of(Digest::from_headers(headers, "content-digest")?);
        let completion = Completion {
            status: StatusCode::OK,
            origin: self.origin(&req),
            want: digest::wanted(headers),
            location: None,
            repr_digest: Digest::from_headers(headers, "repr-digest")?,
        };
        let interim = interim_for(&req, interop);

        let info = caller.info(id).await?;
        if info.is_finished() {
            return self
                .append_to_completed(
                    interop, caller, info, offset, complete, body_len, completion,
                )
                .await;
        }
        let implied = match (complete, body_len) {
            (true, Some(n)) => Some(offset.checked_add(n).ok_or_else(|| {
                Problem::inconsistent_length("Upload-Offset plus Content-Length overflows")
            })?),
            _ => None,
        };
        let length = consistent_length(&[info.length, upload_length, implied])?;
        let write = WriteRequest {
            offset,
            declare_length: length.filter(|_| info.length.is_none()),
            body_len,
            checksum,
            ..WriteRequest::default()
        };
        let info = self
            .append(
                interop,
                caller,
                interim.as_ref(),
                id,
                write,
                complete,
                req.into_body(),
            )
            .await?;
        if complete {
            return self.completed(interop, caller, &info, completion).await;
        }
        let mut response = self.reply(StatusCode::NO_CONTENT, interop);
        self.set_complete(&mut response, interop, false);
        // Interop 7 dropped this from appends, but tus-js-client still reads it.
        set(&mut response, "upload-offset", info.offset);
        Ok(response)
    }

    async fn delete(&self, interop: Interop, caller: &Caller, id: &UploadId) -> Answer {
        caller.terminate(id).await?;
        Ok(self.reply(StatusCode::NO_CONTENT, interop))
    }
}

pub(super) fn upload_resumption_supported() -> StatusCode {
    StatusCode::from_u16(104).unwrap_or(StatusCode::CONTINUE)
}
