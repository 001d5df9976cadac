//! Test GETs and chunk uploads.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chunkd_core::metadata::keys;
use chunkd_core::{
    ByteStream, Caller, ConcatKind, Error as CoreError, NewUpload, UploadId, UploadInfo,
    WriteRequest,
};
use futures::StreamExt;
use http::{StatusCode, header};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::params::ChunkParams;
use super::uploader::Uploader;
use super::{Chunks, Dialect};
use crate::form_data::{MAX_FIELD, MAX_FIELDS, field_stream, is_multipart, read_text};
use crate::forward::{Completed, CompletedFile};
use crate::refusal::Refusal;
use crate::{identity, query};

type Answer = Result<Response, Response>;

/// Who a request's chunk sets belong to: its owner when identified, else its uploader
/// token (see [`super::uploader`]).
struct Scope {
    caller: Caller,
    uploader: Option<Uploader>,
}

impl Scope {
    fn of(chunks: &Chunks, req: &Request) -> Result<Scope, Refusal> {
        let caller = identity::caller_for(&chunks.uploads, req, "resumablejs")?;
        let uploader = caller
            .owner()
            .is_anonymous()
            .then(|| chunks.uploaders.of(req));
        Ok(Scope { caller, uploader })
    }

    /// The part of a file's key that says whose it is.
    fn whose(&self) -> String {
        match (&self.uploader, self.caller.owner().as_deref()) {
            (Some(uploader), _) => format!("anonymous:{}", uploader.token),
            (None, owner) => format!("owner:{}", owner.unwrap_or_default()),
        }
    }

    fn answer(&self, answer: Answer) -> Response {
        let mut response = answer.unwrap_or_else(|r| r);
        if let Some(uploader) = &self.uploader {
            uploader.remember(&mut response);
        }
        response
    }
}

/// What a request of either library asks for; the router picks it by path and method.
#[derive(Clone, Copy, Debug)]
pub(super) enum Step {
    /// `GET {path}`: is this chunk stored (the libraries' test request)?
    Test,
    /// `POST` or `PUT {path}`: a chunk.
    Upload,
    /// `DELETE {path}`: drop a file's chunks.
    Cleanup,
    /// `GET {path}/status`: which chunks are stored (python-resumable's check_status).
    Status,
}

pub(super) async fn handle(
    chunks: Arc<Chunks>,
    dialect: Dialect,
    step: Step,
    req: Request,
) -> Response {
    let scope = match Scope::of(&chunks, &req) {
        Ok(scope) => scope,
        Err(refusal) => return refused(refusal),
    };
    let answer = match step {
        Step::Test => chunks.test(&scope, dialect, req).await,
        Step::Upload => chunks.upload(&scope, dialect, req).await,
        Step::Cleanup => chunks.cleanup(&scope, dialect, req).await,
        Step::Status => chunks.status(&scope, dialect, req).await,
    };
    scope.answer(answer)
}

/// A method the route lacks (axum adds `Allow`).
pub(super) async fn not_allowed() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

fn bad_request(message: impl ToString) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.to_string() })),
    )
        .into_response()
}

/// Both libraries read only the status; the body says why for people.
fn refused(refusal: Refusal) -> Response {
    let mut response = (refusal.status, Json(json!({ "error": refusal.message }))).into_response();
    refusal.headers.apply(response.headers_mut());
    response
}

fn engine_error(err: CoreError) -> Response {
    refused(err.into())
}

fn query_values(req: &Request) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| {
            query::pairs(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default()
}

/// Parameters from the query and, for a urlencoded body (resumable.py), from the body.
async fn request_values(req: Request) -> Result<HashMap<String, String>, Response> {
    let mut values = query_values(&req);
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if form {
        let body = axum::body::to_bytes(req.into_body(), MAX_FIELD)
            .await
            .map_err(|_| bad_request("form too large"))?;
        let text = std::str::from_utf8(&body).map_err(|_| bad_request("form is not text"))?;
        values.extend(query::pairs(text));
    }
    Ok(values)
}

/// The file this chunk belongs to, as a stable key.
fn file_key(dialect: Dialect, scope: &Scope, p: &ChunkParams) -> String {
    format!(
        "{}\0{}\0{}\0{}\0{}\0{}",
        dialect.prefix(),
        scope.whose(),
        p.identifier,
        p.total_size,
        p.chunk_size,
        p.total_chunks
    )
}

fn derived_id(parts: &[&str]) -> UploadId {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0xff]);
    }
    let hex = crate::hex::encode(&h.finalize()[..16]);
    // 32 lowercase hex characters always form a valid id.
    hex.parse().unwrap_or_else(|_| UploadId::generate())
}

fn file_id(key: &str) -> UploadId {
    derived_id(&[key, "file"])
}

fn chunk_id(key: &str, number: u64) -> UploadId {
    derived_id(&[key, "chunk", &number.to_string()])
}

fn complete(info: &UploadInfo, p: &ChunkParams) -> Response {
    let body = json!({
        "complete": true,
        "id": info.id.as_str(),
        "filename": p.filename,
        "relative_path": p.relative_path,
        "size": info.length.unwrap_or(info.offset),
    });
    let mut res = (StatusCode::OK, Json(body)).into_response();
    res.extensions_mut()
        .insert(Completed::answered_by_application(vec![CompletedFile::of(
            info, None,
        )]));
    res
}

fn chunk_stored(p: &ChunkParams) -> Response {
    (
        StatusCode::OK,
        Json(json!({ "complete": false, "chunk": p.number })),
    )
        .into_response()
}

/// Drops the first `skip` bytes of a body (the part of a chunk an earlier, interrupted
/// attempt already stored).
fn skip_prefix(body: ByteStream<'_>, skip: u64) -> ByteStream<'_> {
    body.scan(skip, |left, item| {
        let item = item.map(|mut chunk: Bytes| {
            let drop = (*left).min(chunk.len() as u64) as usize;
            *left -= drop as u64;
            chunk.split_off(drop)
        });
        futures::future::ready(Some(item))
    })
    .boxed()
}

impl Chunks {
    /// The test GET: 200 when the chunk (or the whole file) is already here, else 204
    /// ("send it"; Flow.js would fail the whole file on 404). resumable.py sends the
    /// parameters form-encoded in the body rather than the query.
    async fn test(&self, scope: &Scope, dialect: Dialect, req: Request) -> Answer {
        let caller = &scope.caller;
        let values = request_values(req).await?;
        let params = ChunkParams::parse(dialect, &values)
            .and_then(|p| p.within(self.max_chunks))
            .map_err(bad_request)?;
        let key = file_key(dialect, scope, &params);
        if let Ok(info) = caller.info(&file_id(&key)).await
            && info.is_finished()
        {
            return Ok(StatusCode::OK.into_response());
        }
        match caller.info(&chunk_id(&key, params.number)).await {
            Ok(info) if info.is_finished() => Ok(StatusCode::OK.into_response()),
            Ok(_) | Err(CoreError::NotFound(_) | CoreError::Expired(_)) => {
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            Err(e) => Err(engine_error(e)),
        }
    }

    async fn status(&self, scope: &Scope, dialect: Dialect, req: Request) -> Answer {
        let caller = &scope.caller;
        let params = ChunkParams::parse_file(dialect, &request_values(req).await?)
            .and_then(|p| p.within(self.max_chunks))
            .map_err(bad_request)?;
        let key = file_key(dialect, scope, &params);
        if let Some(file) = self.finished_file(caller, &file_id(&key)).await? {
            let body = json!({ "complete": true, "id": file.id.as_str(), "total_chunks": params.total_chunks });
            return Ok(Json(body).into_response());
        }
        let mut stored = Vec::new();
        for n in 1..=params.total_chunks {
            if let Ok(info) = caller.info(&chunk_id(&key, n)).await
                && info.is_finished()
            {
                stored.push(n);
            }
        }
        let body =
            json!({ "complete": false, "chunks": stored, "total_chunks": params.total_chunks });
        Ok(Json(body).into_response())
    }

    /// Removes the stored chunks of an unfinished file (python-resumable's cleanup).
    async fn cleanup(&self, scope: &Scope, dialect: Dialect, req: Request) -> Answer {
        let caller = &scope.caller;
        let params = ChunkParams::parse_file(dialect, &request_values(req).await?)
            .and_then(|p| p.within(self.max_chunks))
            .map_err(bad_request)?;
        let key = file_key(dialect, scope, &params);
        let mut removed = 0;
        for n in 1..=params.total_chunks {
            match caller.terminate(&chunk_id(&key, n)).await {
                Ok(()) => removed += 1,
                Err(CoreError::NotFound(_) | CoreError::Expired(_)) => {}
                Err(e) => return Err(engine_error(e)),
            }
        }
        Ok(Json(json!({ "removed": removed })).into_response())
    }

    async fn upload(&self, scope: &Scope, dialect: Dialect, req: Request) -> Answer {
        let mut values = query_values(&req);
        let multipart = is_multipart(req.headers());
        if !multipart {
            let params = ChunkParams::parse(dialect, &values)
                .and_then(|p| p.within(self.max_chunks))
                .map_err(bad_request)?;
            let body = crate::body::byte_stream(req.into_body(), self.idle_timeout, |_| {});
            return self.store_chunk(scope, dialect, &params, body).await;
        }
        let mut form = crate::multipart_framing::multipart(req)
            .await
            .map_err(|e| bad_request(e.body_text()))?;
        let mut fields = 0;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| bad_request(e.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                // Parameters come before the file in both libraries' forms.
                let params = ChunkParams::parse(dialect, &values)
                    .and_then(|p| p.within(self.max_chunks))
                    .map_err(bad_request)?;
                let body = field_stream(field);
                return self.store_chunk(scope, dialect, &params, body).await;
            }
            fields += 1;
            if fields > MAX_FIELDS {
                return Err(bad_request("too many form fields"));
            }
            let (name, value) = read_text(field).await.map_err(bad_request)?;
            values.insert(name, value);
        }
        Err(bad_request("the form has no file field"))
    }

    async fn store_chunk(
        &self,
        scope: &Scope,
        dialect: Dialect,
        p: &ChunkParams,
        body: ByteStream<'_>,
    ) -> Answer {
        let caller = &scope.caller;
        if let Some(max) = caller.engine().capabilities().max_size
            && p.total_size > max
        {
            return Err(engine_error(CoreError::TooLarge { max }));
        }
        let key = file_key(dialect, scope, p);
        if let Ok(info) = caller.info(&file_id(&key)).await
            && info.is_finished()
        {
            return Ok(complete(&info, p));
        }
        let id = chunk_id(&key, p.number);
        let part = match caller.info(&id).await {
            Ok(info) => info,
            // An expired chunk is purged soon; until then its id is taken.
            Err(CoreError::NotFound(_)) => {
                let new = NewUpload {
                    id: Some(id.clone()),
                    length: Some(p.current_size),
                    concat: ConcatKind::Partial,
                    ..Default::default()
                };
                match caller.create(new).await {
                    Ok(info) => info,
                    // A duplicate of this chunk created it a moment ago.
                    Err(CoreError::AlreadyExists(_)) => {
                        caller.info(&id).await.map_err(engine_error)?
                    }
                    Err(e) => return Err(engine_error(e)),
                }
            }
            Err(e) => return Err(engine_error(e)),
        };
        if !part.is_finished() {
            let write = WriteRequest {
                offset: part.offset,
                ..Default::default()
            };
            let stored = caller
                .write(&id, write, skip_prefix(body, part.offset))
                .await
                .and_then(|outcome| outcome.stopped())
                .map_err(engine_error)?;
            if !stored.is_finished() {
                return Err(bad_request(format!(
                    "chunk {} ended after {} of {} bytes",
                    p.number, stored.offset, p.current_size
                )));
            }
        }
        match self.assemble(caller, &key, p).await? {
            Some(file) => Ok(complete(&file, p)),
            None => Ok(chunk_stored(p)),
        }
    }

    /// Builds the file once every chunk is here; `None` while some are missing.
    async fn assemble(
        &self,
        caller: &Caller,
        key: &str,
        p: &ChunkParams,
    ) -> Result<Option<UploadInfo>, Response> {
        let file = file_id(key);
        // Backwards: chunks mostly arrive in order, so a missing one is found at once.
        for n in (1..=p.total_chunks).rev() {
            match caller.info(&chunk_id(key, n)).await {
                Ok(info) if info.is_finished() => {}
                Ok(_) => return Ok(None),
                // Missing: not sent yet, or already cleaned up after assembly.
                Err(CoreError::NotFound(_)) => return self.finished_file(caller, &file).await,
                Err(e) => return Err(engine_error(e)),
            }
        }
        let mut metadata = chunkd_core::Metadata::new();
        metadata.insert(keys::FILENAME, p.filename.as_str());
        if let Some(path) = &p.relative_path {
            metadata.insert(keys::RELATIVE_PATH, path.as_str());
        }
        if let Some(t) = &p.file_type {
            metadata.insert(keys::FILETYPE, t.as_str());
        }
        let new = NewUpload {
            id: Some(file.clone()),
            metadata,
            concat: ConcatKind::Final((1..=p.total_chunks).map(|n| chunk_id(key, n)).collect()),
            ..Default::default()
        };
        match caller.create(new).await {
            Ok(info) if info.is_finished() => {
                self.clean_up_chunks(caller, &info).await;
                Ok(Some(info))
            }
            Ok(_) => Ok(None),
            // Another request completing the same file won the race.
            Err(CoreError::AlreadyExists(_) | CoreError::InvalidConcat(_)) => {
                self.finished_file(caller, &file).await
            }
            Err(e) => Err(engine_error(e)),
        }
    }

    /// The assembled file, if finished. Settled: an assembly a crash cut off is
    /// completed here, since no later chunk would start it again.
    async fn finished_file(
        &self,
        caller: &Caller,
        file: &UploadId,
    ) -> Result<Option<UploadInfo>, Response> {
        match caller.settled_info(file).await {
            Ok(info) if info.is_finished() => Ok(Some(info)),
            Ok(_) | Err(CoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(engine_error(e)),
        }
    }

    /// The file holds a copy of the chunks now; they are only taking space.
    async fn clean_up_chunks(&self, caller: &Caller, file: &UploadInfo) {
        if let ConcatKind::Final(parts) = &file.concat {
            for part in parts {
                match caller.terminate(part).await {
                    Ok(()) | Err(CoreError::NotFound(_)) => {}
                    Err(e) => tracing::warn!(upload.id = %part, error = %e, "chunk not cleaned up"),
                }
            }
        }
    }
}
