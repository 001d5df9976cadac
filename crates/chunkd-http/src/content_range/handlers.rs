//! Chunk, state, completion and download requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use chunkd_core::metadata::keys;
use chunkd_core::{
    ByteStream, Caller, ChecksumAlgorithm, Error as CoreError, NewUpload, UploadId, UploadInfo,
    Uploads, WriteRequest,
};
use futures::StreamExt;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use super::ContentRangeUploads;
use super::error::{Error, bad_request, detail, engine_error, offsets_do_not_match};
use super::header::ContentRange;
use crate::form_data::{MAX_FIELD, MAX_FIELDS, field_stream, is_multipart, read_text};
use crate::forward::{Completed, CompletedFile};
use crate::identity;
use crate::refusal::Refusal;
use crate::routing::{FrontEnd, Target};
use crate::{body, disposition, download, hex, query};

type Answer = Result<Response, Error>;

/// `2013-07-18T17:56:22.186Z`, as Django's JSON encoder writes datetimes.
fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// `Content-Range`: absent is `None`; present but malformed is a 400.
fn content_range(headers: &HeaderMap) -> Result<Option<ContentRange>, Error> {
    match headers.get(header::CONTENT_RANGE) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(ContentRange::parse)
            .map(Some)
            .ok_or_else(|| bad_request("Error in request headers")),
    }
}

fn clean_filename(name: Option<String>) -> Result<Option<String>, Error> {
    disposition::clean_filename(name).map_err(bad_request)
}

/// Text fields of a small form (multipart or urlencoded).
async fn read_fields(req: Request) -> Result<HashMap<String, String>, Error> {
    if is_multipart(req.headers()) {
        let mut form = crate::multipart_framing::multipart(req)
            .await
            .map_err(|e| bad_request(e.body_text()))?;
        let mut fields = HashMap::new();
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| bad_request(e.body_text()))?
        {
            read_text_field(field, &mut fields).await?;
        }
        return Ok(fields);
    }
    let bytes = axum::body::to_bytes(req.into_body(), MAX_FIELD)
        .await
        .map_err(|_| bad_request("form too large"))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad_request("form is not text"))?;
    Ok(query::pairs(text).into_iter().collect())
}

async fn read_text_field(
    field: axum::extract::multipart::Field<'_>,
    fields: &mut HashMap<String, String>,
) -> Result<(), Error> {
    if fields.len() >= MAX_FIELDS {
        return Err(bad_request("too many form fields"));
    }
    let (name, value) = read_text(field).await.map_err(bad_request)?;
    fields.insert(name, value);
    Ok(())
}

/// Passes at most `limit` bytes; more sets `overflow` and ends the body there.
fn at_most<'a>(body: ByteStream<'a>, limit: u64, overflow: Arc<AtomicBool>) -> ByteStream<'a> {
    body.scan(limit, move |left, item| {
        let out = match item {
            Ok(mut chunk) => {
                if chunk.len() as u64 > *left {
                    overflow.store(true, Ordering::SeqCst);
                    chunk.truncate(*left as usize);
                }
                *left -= chunk.len() as u64;
                Ok(chunk)
            }
            Err(e) => Err(e),
        };
        let done = overflow.load(Ordering::SeqCst);
        futures::future::ready(if done && out.as_ref().is_ok_and(|c| c.is_empty()) {
            None
        } else {
            Some(out)
        })
    })
    .boxed()
}

/// What a chunk request says about its file.
struct Chunk {
    caller: Caller,
    range: Option<ContentRange>,
    filename: Option<String>,
    filetype: Option<String>,
}

impl FrontEnd for ContentRangeUploads {
    const PROTOCOL: &'static str = "content-range";

    fn uploads(&self) -> &Uploads {
        &self.uploads
    }

    fn refuse(&self, _request: &Parts, refusal: Refusal) -> Response {
        Error::from(refusal).into_response()
    }
}

/// A method the route lacks (axum adds `Allow`).
pub(super) async fn not_allowed() -> Response {
    StatusCode::METHOD_NOT_ALLOWED.into_response()
}

/// `POST` or `PUT` on `{path}`: the first chunk, a later one naming its `upload_id`
/// field, or a whole file.
pub(super) async fn receive_new(
    State(this): State<Arc<ContentRangeUploads>>,
    req: Request,
) -> Answer {
    this.receive(req, None).await
}

/// `PUT {path}/{id}` or `POST` with `Content-Range`: a chunk of that upload (drf).
pub(super) async fn receive_chunk(
    State(this): State<Arc<ContentRangeUploads>>,
    Target { id, .. }: Target,
    req: Request,
) -> Answer {
    this.receive(req, Some(id)).await
}

/// `POST {path}/{id}`: a chunk when it has `Content-Range`, else completion (drf).
pub(super) async fn chunk_or_complete(
    State(this): State<Arc<ContentRangeUploads>>,
    Target { id, .. }: Target,
    req: Request,
) -> Answer {
    if req.headers().contains_key(header::CONTENT_RANGE) {
        this.receive(req, Some(id)).await
    } else {
        this.complete_upload(Some(id), req).await
    }
}

/// `POST {path}/complete` with an `upload_id` field (django).
pub(super) async fn complete(State(this): State<Arc<ContentRangeUploads>>, req: Request) -> Answer {
    this.complete_upload(None, req).await
}

/// `GET {path}/{id}`: where the upload stands.
pub(super) async fn state(
    State(this): State<Arc<ContentRangeUploads>>,
    Target { caller, id }: Target,
    parts: http::request::Parts,
) -> Answer {
    let origin = this.public_url.of_parts(&parts);
    this.state(&id, &caller, &origin).await
}

/// `DELETE {path}/{id}`.
pub(super) async fn delete(Target { caller, id }: Target) -> Answer {
    caller.terminate(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET {path}/{id}/content`: the finished file.
pub(super) async fn content(Target { caller, id }: Target, headers: HeaderMap) -> Answer {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    Ok(download::respond(&caller, &id, range).await?)
}

impl ContentRangeUploads {
    fn url(&self, origin: &str, id: &UploadId) -> String {
        format!("{origin}{}/{id}", self.path)
    }

    /// The record, marked for forward mode when this request finished the file.
    fn finished_record(&self, origin: &str, info: &UploadInfo) -> Response {
        let mut res = self.record(origin, info);
        if info.is_finished() {
            let url = self.url(origin, &info.id);
            let file = CompletedFile::of(info, Some(format!("{url}/content")));
            res.extensions_mut()
                .insert(Completed::answered_by_application(vec![file]));
        }
        res
    }

    /// The upload's state in the shapes drf, django and blueimp clients read.
    fn record(&self, origin: &str, info: &UploadInfo) -> Response {
        let url = self.url(origin, &info.id);
        let filename = info.metadata.text(keys::FILENAME).unwrap_or("");
        let filetype = info.metadata.text(keys::FILETYPE).unwrap_or("");
        let body: Value = json!({
            "upload_id": info.id.as_str(),
            "id": info.id.as_str(),
            "url": url,
            "offset": info.offset,
            "size": info.length,
            "filename": filename,
            "status": if info.is_finished() { "complete" } else { "uploading" },
            "expires": info.expires_at.filter(|_| !info.is_finished()).map(iso8601),
            "files": [{ "name": filename, "size": info.offset, "type": filetype, "url": format!("{url}/content") }],
        });
        let mut res = (StatusCode::OK, Json(body)).into_response();
        // blueimp continues after the number following the first `-`.
        if info.offset > 0
            && let Ok(v) = HeaderValue::from_str(&format!("0-{}", info.offset - 1))
        {
            res.headers_mut().insert(header::RANGE, v);
        }
        res
    }

    async fn receive(&self, req: Request, target: Option<UploadId>) -> Answer {
        let headers = req.headers().clone();
        let origin = self.public_url.of_request(&req);
        let method = req.method().clone();
        let range = content_range(&headers)?;
        let caller = identity::caller_for(&self.uploads, &req, "content-range")?;
        if !is_multipart(&headers) {
            let chunk = Chunk {
                caller,
                range,
                filename: clean_filename(disposition::filename(&headers))?,
                filetype: headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            };
            let body = body::byte_stream(req.into_body(), self.idle_timeout, |_| {});
            let info = self.store(target, chunk, body).await?;
            return Ok(self.answer_chunk(method, &origin, &info));
        }
        let mut form = crate::multipart_framing::multipart(req)
            .await
            .map_err(|e| bad_request(e.body_text()))?;
        let mut fields = HashMap::new();
        loop {
            let Some(field) = form
                .next_field()
                .await
                .map_err(|e| bad_request(e.body_text()))?
            else {
                return Err(bad_request("No chunk file was submitted"));
            };
            let Some(part_name) = field.file_name().map(str::to_owned) else {
                read_text_field(field, &mut fields).await?;
                continue;
            };
            let target = match (target, fields.get("upload_id").filter(|v| !v.is_empty())) {
                (Some(id), _) => Some(id),
                (None, Some(v)) => Some(
                    v.parse()
                        .map_err(|_| detail(StatusCode::NOT_FOUND, "Not found."))?,
                ),
                (None, None) => None,
            };
            let chunk = Chunk {
                caller: caller.clone(),
                range,
                filename: clean_filename(fields.get("filename").cloned().or(Some(part_name)))?,
                filetype: field.content_type().map(str::to_owned),
            };
            let body = field_stream(field);
            let mut info = self.store(target, chunk, body).await?;
            // A whole-file upload may carry its digest after the file.
            while let Some(field) = form
                .next_field()
                .await
                .map_err(|e| bad_request(e.body_text()))?
            {
                read_text_field(field, &mut fields).await?;
            }
            if range.is_none() && info.is_finished() {
                let id = info.id.clone();
                match self.verify(&caller, info, &fields, false).await {
                    Ok(verified) => info = verified,
                    // A whole file that is not what the client sent is not kept.
                    Err(refused) => {
                        caller.terminate(&id).await?;
                        return Err(refused);
                    }
                }
            }
            return Ok(self.answer_chunk(method, &origin, &info));
        }
    }

    /// drf (PUT chunks) finishes a file with its md5 completion, which tells the
    /// application; the other clients' last chunk is their last word.
    fn answer_chunk(&self, method: Method, origin: &str, info: &UploadInfo) -> Response {
        match method {
            Method::PUT => self.record(origin, info),
            _ => self.finished_record(origin, info),
        }
    }

    async fn store(
        &self,
        target: Option<UploadId>,
        chunk: Chunk,
        body: ByteStream<'_>,
    ) -> Result<UploadInfo, Error> {
        let (info, range) = match target {
            Some(id) => {
                let info = chunk.caller.info(&id).await?;
                if info.is_finished() {
                    return Err(bad_request(
                        "Upload has already been marked as \"complete\"",
                    ));
                }
                let range = chunk.range.ok_or_else(|| {
                    bad_request("Content-Range is required to continue an upload")
                })?;
                if info.length != Some(range.total) {
                    return Err(bad_request(
                        "Content-Range total does not match the upload's size",
                    ));
                }
                if range.start != info.offset {
                    return Err(offsets_do_not_match(info.offset, range.start));
                }
                (info, range)
            }
            None => {
                let mut metadata = chunkd_core::Metadata::new();
                if let Some(name) = &chunk.filename {
                    metadata.insert(keys::FILENAME, name.as_str());
                }
                if let Some(t) = &chunk.filetype {
                    metadata.insert(keys::FILETYPE, t.as_str());
                }
                let new = NewUpload {
                    length: chunk.range.map(|r| r.total),
                    metadata,
                    ..Default::default()
                };
                let Some(range) = chunk.range else {
                    // No Content-Range: the whole file in this request.
                    return chunk
                        .caller
                        .create_whole(new, body)
                        .await
                        .map_err(engine_error);
                };
                if range.start != 0 {
                    return Err(offsets_do_not_match(0, range.start));
                }
                (chunk.caller.create(new).await.map_err(engine_error)?, range)
            }
        };
        let offset = info.offset;
        let overflow = Arc::new(AtomicBool::new(false));
        let body = at_most(body, range.size(), overflow.clone());
        let write = WriteRequest {
            offset,
            ..Default::default()
        };
        let info = chunk.caller.write(&info.id, write, body).await?.stopped()?;
        let stored = info.offset - offset;
        if overflow.load(Ordering::SeqCst) || stored != range.size() {
            let body = json!({
                "detail": "File size doesn't match headers",
                "offset": info.offset,
                "upload_id": info.id.as_str(),
            });
            return Err(Error::new(StatusCode::BAD_REQUEST, body));
        }
        Ok(info)
    }

    /// Compares the digest a client sent (`md5`, or `sha256`/`sha1`) with the stored bytes.
    /// With `required`, a missing digest is a 400.
    async fn verify(
        &self,
        caller: &Caller,
        info: UploadInfo,
        fields: &HashMap<String, String>,
        required: bool,
    ) -> Result<UploadInfo, Error> {
        let given = [
            ChecksumAlgorithm::Md5,
            ChecksumAlgorithm::Sha256,
            ChecksumAlgorithm::Sha1,
        ]
        .into_iter()
        .find_map(|a| fields.get(a.name()).map(|v| (a, v.trim().to_owned())));
        let Some((algorithm, expected)) = given else {
            return match required {
                true => Err(bad_request("Both 'upload_id' and 'md5' are required")),
                false => Ok(info),
            };
        };
        if !info.is_finished() {
            return Err(bad_request("Upload is not complete yet"));
        }
        let (_, mut stream) = caller.read(&info.id, None).await?;
        let mut hasher = algorithm.hasher();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk.map_err(|e| engine_error(CoreError::backend("read", e)))?);
        }
        let actual = hex::encode(&hasher.finalize());
        if actual != expected {
            return Err(bad_request(format!(
                "{} checksum does not match",
                algorithm.name()
            )));
        }
        Ok(info)
    }

    async fn complete_upload(&self, id: Option<UploadId>, req: Request) -> Answer {
        let drf = id.is_some();
        let origin = self.public_url.of_request(&req);
        let caller = identity::caller_for(&self.uploads, &req, "content-range")?;
        let fields = read_fields(req).await?;
        let has_digest = ["md5", "sha256", "sha1"]
            .iter()
            .any(|k| fields.contains_key(*k));
        if !has_digest || (id.is_none() && !fields.contains_key("upload_id")) {
            return Err(bad_request("Both 'upload_id' and 'md5' are required"));
        }
        let id = match id {
            Some(id) => id,
            None => fields
                .get("upload_id")
                .ok_or_else(|| bad_request("Both 'upload_id' and 'md5' are required"))?
                .parse()
                .map_err(|_| detail(StatusCode::NOT_FOUND, "Not found."))?,
        };
        let info = caller.info(&id).await?;
        let info = self.verify(&caller, info, &fields, true).await?;
        // drf's completion (`POST {path}/{id}`) is where its file is done; django's
        // (`POST {path}/complete`) follows POSTed chunks, whose last one told already.
        Ok(match drf {
            true => self.finished_record(&origin, &info),
            false => self.record(&origin, &info),
        })
    }

    /// Where the upload stands, once any write still running on it has stopped and kept
    /// what it received (newest request wins): the offset a client resumes from.
    async fn state(&self, id: &UploadId, caller: &Caller, origin: &str) -> Answer {
        let info = caller.settled_info(id).await?;
        Ok(self.record(origin, &info))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn formats_times_as_django_does() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_374_170_182_186);
        assert_eq!(iso8601(t), "2013-07-18T17:56:22.186Z");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
