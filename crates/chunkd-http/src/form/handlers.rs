//! Form POSTs and progress polls.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use chunkd_core::metadata::keys;
use chunkd_core::{Caller, ChecksumAlgorithm, Error as CoreError, NewUpload};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use super::FormUploads;
use super::progress::{Report, State as Progress, TrackError, valid_id};
use crate::form_data::{MAX_FIELDS, field_stream, is_multipart, read_text};
use crate::forward::{Completed, CompletedFile};
use crate::identity::{self, Owner};
use crate::refusal::{HookHeaders, Refusal};
use crate::{body, disposition, hex, query};

/// A refusal with a JSON `{"error": ...}` body.
#[derive(Debug)]
pub struct Error {
    status: StatusCode,
    message: String,
    hook_headers: HookHeaders,
}

impl Error {
    fn new(status: StatusCode, message: impl ToString) -> Self {
        Error {
            status,
            message: message.to_string(),
            hook_headers: HookHeaders::default(),
        }
    }

    fn bad_request(message: impl ToString) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        self.hook_headers.apply(response.headers_mut());
        response
    }
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Error {
            hook_headers: refusal.headers,
            ..Error::new(refusal.status, refusal.message)
        }
    }
}

impl From<CoreError> for Error {
    fn from(err: CoreError) -> Self {
        Refusal::from(err).into()
    }
}

/// The progress id: the `X-Progress-ID` header first, then the query argument.
fn progress_id(headers: &HeaderMap, query: Option<&str>) -> Result<Option<String>, Error> {
    let id = headers
        .get("x-progress-id")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| Error::bad_request("invalid X-Progress-ID"))
        })
        .transpose()?
        .or_else(|| query::value(query, "X-Progress-ID"));
    match id {
        Some(id) if !valid_id(&id) => Err(Error::bad_request(
            "X-Progress-ID must be 1 to 64 letters, digits, - or _",
        )),
        id => Ok(id),
    }
}

/// `POST {upload_path}`: the form's files, stored as they stream in.
pub(super) async fn upload(
    State(form): State<Arc<FormUploads>>,
    req: Request,
) -> Result<Response, Error> {
    form.upload(req).await
}

/// `GET {progress_path}`: how far the upload with this progress id has come.
pub(super) async fn progress(
    State(form): State<Arc<FormUploads>>,
    req: Request,
) -> Result<Response, Error> {
    form.progress(&req)
}

/// `DELETE {progress_path}`: forget a finished upload's progress.
pub(super) async fn clear_progress(
    State(form): State<Arc<FormUploads>>,
    req: Request,
) -> Result<Response, Error> {
    form.clear_progress(&req)
}

/// A method the route lacks (axum adds `Allow`).
pub(super) async fn not_allowed() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

impl FormUploads {
    /// The request's progress id, checked against the signer when one is configured.
    fn checked_progress_id(&self, req: &Request, owner: &Owner) -> Result<Option<String>, Error> {
        let id = progress_id(req.headers(), req.uri().query())?;
        if let (Some(signer), Some(id)) = (&self.signer, &id) {
            signer
                .verify(owner.as_deref(), id)
                .map_err(|e| Error::new(StatusCode::FORBIDDEN, format!("X-Progress-ID: {e}")))?;
        }
        Ok(id)
    }

    async fn upload(&self, req: Request) -> Result<Response, Error> {
        let caller = identity::caller_for(&self.uploads, &req, "form")?;
        let owner = caller.owner().clone();
        let id = self.checked_progress_id(&req, &owner)?;
        let multipart = is_multipart(req.headers());
        if !multipart {
            return Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected multipart/form-data",
            ));
        }
        let size = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let entry = match &id {
            Some(id) => Some(self.tracker.begin(owner.as_deref(), id, size).map_err(
                |TrackError::Busy| {
                    Error::new(
                        StatusCode::CONFLICT,
                        "an upload with this X-Progress-ID is still running",
                    )
                },
            )?),
            None => None,
        };
        // Count bytes as they arrive, before the form is parsed.
        let (parts, body) = req.into_parts();
        let counter = entry.clone();
        let counted = body::byte_stream(body, self.idle_timeout, |_| {}).inspect(move |item| {
            if let (Some(entry), Ok(bytes)) = (&counter, item) {
                entry.add(bytes.len() as u64);
            }
        });
        let req = Request::from_parts(parts, Body::from_stream(counted));
        let result = self.receive(req, &caller).await;
        if let Some(entry) = entry {
            entry.finish(match &result {
                Ok(_) => Progress::Done,
                Err(e) => Progress::Error(e.status.as_u16()),
            });
        }
        result
    }

    /// Stores the form's files, all or none: when a part is refused, the files stored
    /// before it are removed (the client got no id for them).
    async fn receive(&self, req: Request, caller: &Caller) -> Result<Response, Error> {
        let origin = self.public_url.of_request(&req);
        let mut files = Vec::new();
        let mut fields = Map::new();
        if let Err(refused) = self.read_form(req, caller, &mut files, &mut fields).await {
            for file in &files {
                let Ok(id) = file.id.parse::<chunkd_core::UploadId>() else {
                    continue;
                };
                if let Err(e) = caller.terminate(&id).await {
                    tracing::warn!(upload.id = %id, error = %e, "a refused form's file was kept");
                }
            }
            return Err(refused);
        }
        if files.is_empty() {
            return Err(Error::bad_request("the form has no file"));
        }
        let files: Vec<CompletedFile> = files
            .into_iter()
            .map(|f| self.with_url(&origin, f))
            .collect();
        let body = json!({ "files": files.clone(), "fields": fields });
        let mut res = (StatusCode::OK, Json(body)).into_response();
        res.extensions_mut()
            .insert(Completed::answered_by_application(files));
        Ok(res)
    }

    /// Reads the parts in order, storing each file as it streams in, into `files` and
    /// `fields`.
    async fn read_form(
        &self,
        req: Request,
        caller: &Caller,
        files: &mut Vec<CompletedFile>,
        fields: &mut Map<String, Value>,
    ) -> Result<(), Error> {
        let mut form = crate::multipart_framing::multipart(req)
            .await
            .map_err(|e| Error::bad_request(e.body_text()))?;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| Error::bad_request(e.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            let Some(filename) = field.file_name().map(str::to_owned) else {
                if fields.len() >= MAX_FIELDS {
                    return Err(Error::bad_request("too many form fields"));
                }
                let (name, value) = read_text(field).await.map_err(Error::bad_request)?;
                fields.insert(name, Value::String(value));
                continue;
            };
            if files.len() >= self.max_files {
                return Err(Error::bad_request(format!(
                    "a form may carry at most {} files",
                    self.max_files
                )));
            }
            let content_type = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            let filename = disposition::clean_filename(Some(filename))
                .map_err(Error::bad_request)?
                .ok_or_else(|| Error::bad_request(disposition::FILENAME_RULE))?;
            let mut metadata = chunkd_core::Metadata::new();
            metadata.insert(keys::FILENAME, filename.as_str());
            metadata.insert(keys::FILETYPE, content_type.as_str());
            metadata.insert(keys::FIELD, name.as_str());
            let new = NewUpload {
                metadata,
                ..Default::default()
            };
            // Digests are computed on the way through, so the answer can carry them.
            let hashers = Arc::new(Mutex::new((
                ChecksumAlgorithm::Md5.hasher(),
                ChecksumAlgorithm::Sha256.hasher(),
            )));
            let hashing = hashers.clone();
            let stream = field_stream(field)
                .inspect(move |item| {
                    if let (Ok(bytes), Ok(mut h)) = (item, hashing.lock()) {
                        h.0.update(bytes);
                        h.1.update(bytes);
                    }
                })
                .boxed();
            let info = caller.create_whole(new, stream).await?;
            let (md5, sha256) = match Arc::try_unwrap(hashers)
                .ok()
                .and_then(|m| m.into_inner().ok())
            {
                Some((md5, sha)) => (hex::encode(&md5.finalize()), hex::encode(&sha.finalize())),
                None => {
                    return Err(Error::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal server error",
                    ));
                }
            };
            files.push(CompletedFile::of(&info, None).with_digests(md5, sha256));
        }
        Ok(())
    }

    /// `file` with the URL it can be downloaded from, when downloads are mounted.
    fn with_url(&self, origin: &str, file: CompletedFile) -> CompletedFile {
        let url = self
            .download_path
            .as_ref()
            .map(|p| format!("{origin}{p}/{}", file.id));
        CompletedFile { url, ..file }
    }

    /// The owner and the progress id a progress request names.
    fn progress_of(&self, req: &Request) -> Result<(Owner, String), Error> {
        let owner = identity::owner_of(req)?;
        let id = self
            .checked_progress_id(req, &owner)?
            .ok_or_else(|| Error::bad_request("missing X-Progress-ID"))?;
        Ok((owner, id))
    }

    fn clear_progress(&self, req: &Request) -> Result<Response, Error> {
        let (owner, id) = self.progress_of(req)?;
        match self.tracker.clear(owner.as_deref(), &id) {
            Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
            Ok(false) => Err(Error::new(
                StatusCode::NOT_FOUND,
                "no finished upload with this X-Progress-ID",
            )),
            Err(TrackError::Busy) => Err(Error::new(
                StatusCode::CONFLICT,
                "the upload is still running",
            )),
        }
    }

    fn progress(&self, req: &Request) -> Result<Response, Error> {
        let (owner, id) = self.progress_of(req)?;
        let body = match self.tracker.report(owner.as_deref(), &id) {
            Report::Starting => json!({ "state": "starting" }),
            Report::Uploading { received, size } => {
                json!({ "state": "uploading", "received": received, "size": size })
            }
            Report::Done { received } => {
                json!({ "state": "done", "received": received, "size": received })
            }
            Report::Error { status } => json!({ "state": "error", "status": status }),
        };
        let callback = query::value(req.uri().query(), "callback").filter(|c| {
            !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.$".contains(&b))
        });
        let mut res = match callback {
            Some(cb) => (
                [(header::CONTENT_TYPE, "application/javascript")],
                format!("{cb}({body});\r\n"),
            )
                .into_response(),
            None => Json(body).into_response(),
        };
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(
            header::EXPIRES,
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:01 GMT"),
        );
        Ok(res)
    }
}
