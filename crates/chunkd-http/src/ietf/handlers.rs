//! The draft's requests, each checked, turned into engine calls, and answered in the
//! announced interop version's terms.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use chunkd_core::engine::ExpectedChecksum;
use chunkd_core::{
    Checksum, ChecksumAlgorithm, Metadata, NewUpload, UploadId, UploadInfo, WriteRequest,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tokio::sync::watch;

use super::Ietf;
use super::digest::{self, Digest, REPR_DIGEST_KEY};
use super::fields;
use super::problem::{Kind, Problem};
use super::version::{INTEROP_HEADER, Interop, Unsupported};
use crate::forward::Completed;
use crate::identity::{self, Owner};
use crate::interim::Interim;
use crate::{body, disposition};

const PARTIAL_UPLOAD: &str = "application/partial-upload";

type Answer = Result<Response, Problem>;

/// `{path}` and `{path}/`: discovery and creation.
pub(super) async fn collection(State(ietf): State<Arc<Ietf>>, req: Request) -> Response {
    let interop = match Interop::of(req.headers()) {
        Ok(interop) => interop,
        Err(unsupported) => return ietf.unsupported(unsupported),
    };
    let answer = match *req.method() {
        Method::OPTIONS => Ok(ietf.options(interop)),
        Method::POST | Method::PUT => ietf.create(interop, req).await,
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
    if identity::is_foreign(&ietf.uploads, &id, Owner::identified(&req)).await {
        return ietf.answer(interop, Err(Problem::not_found()));
    }
    let answer = match *req.method() {
        Method::HEAD | Method::GET => ietf.offset(interop, &id).await,
        Method::PATCH => ietf.patch(interop, &id, req).await,
        Method::DELETE => ietf.delete(interop, &id).await,
        _ => Ok(ietf.method_not_allowed(interop, "OPTIONS, HEAD, GET, PATCH, DELETE")),
    };
    ietf.answer(interop, answer)
}

fn set(response: &mut Response, name: &'static str, value: impl ToString) {
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
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    media_type(headers)
        .filter(|t| !t.eq_ignore_ascii_case(PARTIAL_UPLOAD))
        .filter(|t| t.split_once('/').is_some_and(|(a, b)| token(a) && token(b)))
        .map(str::to_ascii_lowercase)
}

fn checksum_of(digest: Option<Digest>) -> Option<ExpectedChecksum> {
    digest.map(|d| {
        ExpectedChecksum::Header(Checksum {
            algorithm: d.algorithm,
            digest: d.value,
        })
    })
}

/// What a completing response reports besides the upload itself.
struct Completion {
    status: StatusCode,
    origin: String,
    want: Option<ChecksumAlgorithm>,
    location: Option<String>,
    /// A `Repr-Digest` sent with this request (one sent at creation is in the metadata).
    repr_digest: Option<Digest>,
}

impl Ietf {
    fn origin(&self, req: &Request) -> String {
        self.public_url
            .origin(req.headers(), req.uri().authority().map(|a| a.as_str()))
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

    fn reply(&self, status: StatusCode, interop: Interop) -> Response {
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

    fn set_complete(&self, response: &mut Response, interop: Interop, complete: bool) {
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

    async fn create(&self, interop: Interop, req: Request) -> Answer {
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
            metadata.insert("filename", name);
        }
        if let Some(media_type) = representation_type(headers) {
            metadata.insert("filetype", media_type);
        }
        if let Some(digest) = Digest::from_headers(headers, "repr-digest")? {
            metadata.insert(REPR_DIGEST_KEY, digest.field());
        }
        let checksum = checksum_of(Digest::from_headers(headers, "content-digest")?);
        let want = digest::wanted(headers);
        let owner = Owner::of(&req);
        let origin = self.origin(&req);
        // A 104 only for a client that announced the version it speaks.
        let interim = Interim::of(&req).filter(|_| interop.announced().is_some());

        let info = self
            .uploads
            .create(NewUpload {
                length,
                metadata,
                owner: owner.0.clone(),
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
            owner: owner.0,
            ..WriteRequest::default()
        };
        if body_len == Some(0) && !complete {
            // Careful creation: the client only wants the URL.
            return Ok(self.created(interop, &info, location));
        }
        let info = self
            .append(
                interop,
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
            return self.completed(interop, &info, completion).await;
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

    async fn offset(&self, interop: Interop, id: &UploadId) -> Answer {
        // Waits for (and stops) a running append, so the offset is one the next PATCH
        // will be accepted at.
        let info = self.uploads.settled_info(id).await?;
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

    async fn patch(&self, interop: Interop, id: &UploadId, req: Request) -> Answer {
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
        let owner = Owner::of(&req);
        let completion = Completion {
            status: StatusCode::OK,
            origin: self.origin(&req),
            want: digest::wanted(headers),
            location: None,
            repr_digest: Digest::from_headers(headers, "repr-digest")?,
        };
        let interim = Interim::of(&req).filter(|_| interop.announced().is_some());

        let info = self.uploads.info(id).await?;
        if info.is_finished() {
            return self
                .append_to_completed(interop, info, offset, complete, body_len, completion)
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
            owner: owner.0,
            ..WriteRequest::default()
        };
        let info = self
            .append(
                interop,
                interim.as_ref(),
                id,
                write,
                complete,
                req.into_body(),
            )
            .await?;
        if complete {
            return self.completed(interop, &info, completion).await;
        }
        let mut response = self.reply(StatusCode::NO_CONTENT, interop);
        self.set_complete(&mut response, interop, false);
        // Interop 7 dropped this from appends, but tus-js-client still reads it.
        set(&mut response, "upload-offset", info.offset);
        Ok(response)
    }

    /// An append to a finished upload. An empty completing append at the end is a
    /// client asking again for a final answer it lost: it gets it. Anything else is
    /// refused as the draft says: content means an inconsistent length, an empty append
    /// a completed upload.
    async fn append_to_completed(
        &self,
        interop: Interop,
        info: UploadInfo,
        offset: u64,
        complete: bool,
        body_len: Option<u64>,
        completion: Completion,
    ) -> Answer {
        let empty = body_len == Some(0);
        if empty && complete && offset == info.offset {
            return self.completed(interop, &info, completion).await;
        }
        let problem = if empty {
            Problem {
                kind: Kind::CompletedUpload,
                ..Problem::new(StatusCode::GONE, "the upload is already complete")
            }
        } else {
            Problem::inconsistent_length("the upload is already complete")
        };
        Err(Problem {
            offset: Some(info.offset),
            complete: Some(true),
            ..problem
        })
    }

    /// Writes the body at the request's offset. When the client says this request ends
    /// the upload, the upload must be finished by it: a clean end with the length still
    /// open settles the length; a cut-off body leaves the upload open to resume.
    async fn append(
        &self,
        interop: Interop,
        interim: Option<&Interim>,
        id: &UploadId,
        write: WriteRequest,
        complete: bool,
        body: Body,
    ) -> Result<UploadInfo, Problem> {
        let owner = write.owner.clone();
        let (stream, end) = body::tracked(body::byte_stream(body, self.idle_timeout, |_| {}));
        let info = self
            .write_reporting(interop, interim, id, write, stream)
            .await?;
        if !complete || info.is_finished() {
            return Ok(info);
        }
        if !end.clean() {
            return Err(Problem {
                offset: Some(info.offset),
                complete: Some(false),
                ..Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the request body ended early; resume from Upload-Offset",
                )
            });
        }
        if let Some(length) = info.length {
            return Err(Problem::inconsistent_length(format!(
                "the upload is {length} bytes but the request completing it ends at {}",
                info.offset
            )));
        }
        let settle = WriteRequest {
            offset: info.offset,
            declare_length: Some(info.offset),
            owner,
            ..WriteRequest::default()
        };
        Ok(self
            .uploads
            .write(id, settle, Box::pin(futures::stream::empty()))
            .await?)
    }

    /// The engine write, with a 104 carrying each newly committed offset (at most one
    /// per `progress_interval`) for clients that understand progress 104s.
    async fn write_reporting(
        &self,
        interop: Interop,
        interim: Option<&Interim>,
        id: &UploadId,
        mut write: WriteRequest,
        stream: chunkd_core::ByteStream<'static>,
    ) -> Result<UploadInfo, chunkd_core::Error> {
        let Some(interim) = interim.filter(|_| interop.progress_interim()) else {
            return self.uploads.write(id, write, stream).await;
        };
        let (committed, mut offsets) = watch::channel(write.offset);
        write.committed = Some(Arc::new(committed));
        let writing = self.uploads.write(id, write, stream);
        tokio::pin!(writing);
        let mut last_report: Option<Instant> = None;
        loop {
            tokio::select! {
                result = &mut writing => return result,
                changed = offsets.changed() => {
                    if changed.is_err() {
                        return writing.await;
                    }
                    let offset = *offsets.borrow_and_update();
                    if last_report.is_some_and(|at| at.elapsed() < self.progress_interval) {
                        continue;
                    }
                    last_report = Some(Instant::now());
                    let mut progress = HeaderMap::new();
                    progress.insert("upload-offset", HeaderValue::from(offset));
                    if let Some(version) = interop.announced() {
                        progress.insert(INTEROP_HEADER, HeaderValue::from(u16::from(version)));
                    }
                    if let Err(e) = interim.send(upload_resumption_supported(), &progress).await {
                        tracing::debug!(error = %e, "progress 104 not delivered");
                    }
                }
            }
        }
    }

    /// The answer to the request that completed an upload: the upload resource's
    /// target processed the representation, so this is a file description, with the
    /// representation digest checked (and reported when asked for).
    async fn completed(&self, interop: Interop, info: &UploadInfo, c: Completion) -> Answer {
        let recorded = info
            .metadata
            .text(REPR_DIGEST_KEY)
            .and_then(Digest::parse_field);
        let mut known: Option<Digest> = None;
        for expected in recorded.into_iter().chain(c.repr_digest) {
            let actual = match known.take() {
                Some(d) if d.algorithm == expected.algorithm => d,
                _ => digest::of_upload(&self.uploads, &info.id, expected.algorithm).await?,
            };
            if actual != expected {
                // Resuming cannot fix this: the representation is complete and wrong.
                if let Err(e) = self.uploads.terminate(&info.id).await {
                    tracing::warn!(error = %e, "could not discard an upload failing its digest");
                }
                return Err(Problem {
                    complete: Some(true),
                    ..Problem::bad_request(
                        "the upload does not match its Repr-Digest and was discarded",
                    )
                });
            }
            known = Some(actual);
        }
        let mut response = self.reply(c.status, interop);
        if let Some(algorithm) = c.want {
            let digest = match known {
                Some(d) if d.algorithm == algorithm => d,
                _ => digest::of_upload(&self.uploads, &info.id, algorithm).await?,
            };
            set(&mut response, "repr-digest", digest.field());
        }
        let url = self
            .download_path
            .as_ref()
            .map(|p| format!("{}{p}/{}", c.origin, info.id));
        let file = serde_json::json!({
            "id": info.id.as_str(),
            "size": info.offset,
            "filename": info.metadata.text("filename"),
            "content_type": info.metadata.text("filetype"),
            "url": url,
        });
        *response.body_mut() = Body::from(file.to_string());
        set(&mut response, "content-type", "application/json");
        if let Some(location) = c.location {
            set(&mut response, "location", location);
        }
        self.set_complete(&mut response, interop, true);
        set(&mut response, "upload-offset", info.offset);
        response
            .extensions_mut()
            .insert(Completed::notify(vec![file]));
        Ok(response)
    }

    async fn delete(&self, interop: Interop, id: &UploadId) -> Answer {
        self.uploads.terminate(id).await?;
        Ok(self.reply(StatusCode::NO_CONTENT, interop))
    }
}

fn upload_resumption_supported() -> StatusCode {
    StatusCode::from_u16(104).unwrap_or(StatusCode::CONTINUE)
}
