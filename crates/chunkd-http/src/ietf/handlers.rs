//! The draft's requests, each checked, turned into engine calls, and answered in the
//! announced interop version's terms.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use chunkd_core::engine::ExpectedChecksum;
use chunkd_core::metadata::keys;
use chunkd_core::{
    Caller, Checksum, Metadata, NewUpload, UploadId, UploadInfo, Uploads, WriteRequest,
};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::Ietf;
use super::append::Completion;
use super::digest::{self, Digest, REPR_DIGEST_KEY};
use super::fields;
use super::problem::Problem;
use super::version::{INTEROP_HEADER, Interop, Unsupported};
use crate::disposition;
use crate::interim::Interim;
use crate::refusal::Refusal;
use crate::routing::{Acting, FrontEnd, Target};

const PARTIAL_UPLOAD: &str = "application/partial-upload";

pub(super) type Answer = Result<Response, Problem>;

/// The announced interop version, which every answer speaks; an unsupported one is
/// refused before anything else is looked at.
impl FromRequestParts<Arc<Ietf>> for Interop {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ietf: &Arc<Ietf>) -> Result<Self, Response> {
        Interop::of(&parts.headers).map_err(|unsupported| ietf.unsupported(unsupported))
    }
}

impl FrontEnd for Ietf {
    const PROTOCOL: &'static str = "ietf";

    fn uploads(&self) -> &Uploads {
        &self.uploads
    }

    fn refuse(&self, request: &Parts, refusal: Refusal) -> Response {
        let interop = Interop::of(&request.headers).unwrap_or_default();
        self.answer(interop, Err(refusal.into()))
    }
}

/// Discovery, asked without identity.
pub(super) async fn options(State(ietf): State<Arc<Ietf>>, interop: Interop) -> Response {
    ietf.options(interop)
}

/// A method the route lacks (axum adds `Allow`).
pub(super) async fn not_allowed(State(ietf): State<Arc<Ietf>>, interop: Interop) -> Response {
    ietf.reply(StatusCode::METHOD_NOT_ALLOWED, interop)
}

/// `POST` or `PUT` on `{path}`: a new upload, with as much of its content as is sent.
pub(super) async fn create(
    State(ietf): State<Arc<Ietf>>,
    interop: Interop,
    Acting(caller): Acting,
    req: Request,
) -> Response {
    let answer = ietf.create(interop, &caller, req).await;
    ietf.answer(interop, answer)
}

/// `HEAD` (or `GET`) on an upload: its offset.
pub(super) async fn offset(
    State(ietf): State<Arc<Ietf>>,
    interop: Interop,
    Target { caller, id }: Target,
) -> Response {
    let answer = ietf.offset(interop, &caller, &id).await;
    ietf.answer(interop, answer)
}

/// `PATCH`: an append.
pub(super) async fn patch(
    State(ietf): State<Arc<Ietf>>,
    interop: Interop,
    Target { caller, id }: Target,
    req: Request,
) -> Response {
    let answer = ietf.patch(interop, &caller, &id, req).await;
    ietf.answer(interop, answer)
}

/// `DELETE`: the upload is cancelled.
pub(super) async fn delete(
    State(ietf): State<Arc<Ietf>>,
    interop: Interop,
    Target { caller, id }: Target,
) -> Response {
    let answer = ietf.delete(interop, &caller, &id).await;
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
                finished_now: true,
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
            finished_now: true,
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
