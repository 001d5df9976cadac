//! Browser-direct S3 multipart uploads, on the contract of Uppy's `@uppy/aws-s3`
//! companion endpoints: the browser PUTs parts straight to S3 with URLs chunkd signs,
//! and chunkd keeps the upload's record, so limits, owners, hooks and expiry apply and
//! an upload survives a page reload (list the parts, send the rest).
//!
//! | request | answer |
//! |---|---|
//! | `POST {path}/multipart` `{filename, type, metadata, size?}` | `{uploadId, key}` |
//! | `GET {path}/multipart/{uploadId}/{partNumber}?key=` | `{url, expires}` |
//! | `GET {path}/multipart/{uploadId}/batch?key=&partNumbers=1,2` | `{presignedUrls: {"1": url}}` |
//! | `GET {path}/multipart/{uploadId}?key=` | `[{PartNumber, Size, ETag}]` |
//! | `POST {path}/multipart/{uploadId}/complete?key=` `{parts: [{PartNumber, ETag}]}` | `{location, key, id, size}` |
//! | `DELETE {path}/multipart/{uploadId}?key=` | `{}` |
//!
//! `key` is chunkd's upload id (the object is `<prefix><id>` in the bucket); `uploadId`
//! is S3's and must belong to that key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chunkd_core::metadata::keys;
use chunkd_core::{Caller, Metadata, NewUpload, UploadId, Uploads};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::forward::{Completed, CompletedFile};
use crate::public_url::PublicUrl;
use crate::{identity, query};

#[cfg(test)]
mod tests;

/// Settings of the browser-direct front end.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Where the companion endpoints are mounted (`{path}/multipart/...`).
    pub path: String,
    /// How long a part URL stays valid.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub part_url_validity: Duration,
    /// How the public origin of answers' URLs is found (proxies, a fixed base).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub public_url: PublicUrl,
    /// Where finished uploads can be downloaded (the tus path).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub download_path: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: "/s3".to_owned(),
            part_url_validity: Duration::from_secs(15 * 60),
            public_url: PublicUrl::default(),
            download_path: None,
        }
    }
}

struct Direct {
    uploads: Uploads,
    validity: Duration,
    public_url: PublicUrl,
    download_path: Option<String>,
}

/// The endpoints; empty when the store cannot take parts from clients.
pub fn router<S>(uploads: Uploads, config: Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    if !uploads.supports_direct() {
        return Router::new();
    }
    let base = format!("/{}/multipart", config.path.trim_matches('/'));
    let replies = uploads.clone();
    let state = Arc::new(Direct {
        uploads,
        validity: config.part_url_validity,
        public_url: config.public_url,
        download_path: config
            .download_path
            .map(|p| format!("/{}", p.trim_matches('/'))),
    });
    let router = Router::new()
        .route(&base, post(create))
        .route(
            &format!("{base}/{{upload_id}}"),
            get(list_parts).delete(abort),
        )
        .route(&format!("{base}/{{upload_id}}/batch"), get(sign_batch))
        .route(&format!("{base}/{{upload_id}}/complete"), post(complete))
        .route(&format!("{base}/{{upload_id}}/{{part}}"), get(sign_one))
        .with_state(state);
    let router = crate::finish_reply::answer_finish_replies(router, &replies);
    crate::accounting::account(router, "s3-multipart")
}

/// A refusal as the companion answers it: a status and `{"error": ...}`.
struct Refusal(StatusCode, String, crate::refusal::HookHeaders);

impl Refusal {
    fn of(status: StatusCode, message: String) -> Self {
        Refusal(status, message, Default::default())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(json!({ "error": self.1 }))).into_response();
        self.2.apply(response.headers_mut());
        response
    }
}

impl From<crate::refusal::Refusal> for Refusal {
    fn from(refusal: crate::refusal::Refusal) -> Self {
        Refusal(refusal.status, refusal.message, refusal.headers)
    }
}

impl From<chunkd_core::Error> for Refusal {
    fn from(e: chunkd_core::Error) -> Self {
        crate::refusal::Refusal::from(e).into()
    }
}

type Answer = Result<Response, Refusal>;

#[derive(Deserialize)]
struct CreateBody {
    filename: Option<String>,
    #[serde(rename = "type")]
    content_type: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, Value>,
    size: Option<u64>,
}

async fn create(State(direct): State<Arc<Direct>>, req: Request) -> Answer {
    let caller = identity::caller_for(&direct.uploads, &req, "s3-multipart")?;
    let body = axum::body::to_bytes(req.into_body(), 64 << 10)
        .await
        .map_err(|_| Refusal::of(StatusCode::PAYLOAD_TOO_LARGE, "request too large".into()))?;
    let body: CreateBody = serde_json::from_slice(&body)
        .map_err(|e| Refusal::of(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))?;
    let mut metadata = Metadata::new();
    let filename = crate::disposition::clean_filename(body.filename)
        .map_err(|e| Refusal::of(StatusCode::BAD_REQUEST, e.into()))?;
    if let Some(name) = filename {
        metadata.insert(keys::FILENAME, name);
    }
    if let Some(t) = body
        .content_type
        .filter(|t| crate::disposition::is_media_type(t))
    {
        metadata.insert(keys::FILETYPE, t);
    }
    for (k, v) in body.metadata {
        // Plain strings only, under names that cannot clash with ours.
        if let (Value::String(v), true) = (
            v,
            k.len() <= 64 && k != keys::FILENAME && k != keys::FILETYPE,
        ) && !metadata.try_insert(k, v)
        {
            return Err(Refusal::of(
                StatusCode::BAD_REQUEST,
                "invalid metadata".into(),
            ));
        }
    }
    let info = caller
        .create(NewUpload {
            length: body.size,
            metadata,
            direct: true,
            ..Default::default()
        })
        .await?;
    let upload_id = direct.uploads.direct_session(&info).unwrap_or_default();
    Ok(Json(json!({ "uploadId": upload_id, "key": info.id.as_str() })).into_response())
}

impl Direct {
    /// The caller, and the upload the query's `key` names if `upload_id` is its S3
    /// upload and the caller may see it (the engine decides that).
    ///
    /// What the request says is read before the future starts, so the future does not
    /// borrow the request (whose body is not `Sync`) across an await.
    fn target<'a>(
        &'a self,
        upload_id: &'a str,
        req: &Request,
    ) -> impl Future<Output = Result<(Caller, UploadId), Refusal>> + Send + 'a {
        let named = query::value(req.uri().query(), "key")
            .ok_or_else(|| {
                Refusal::of(
                    StatusCode::BAD_REQUEST,
                    "the query must name the upload's key".into(),
                )
            })
            .and_then(|key| {
                Ok((
                    key,
                    identity::caller_for(&self.uploads, req, "s3-multipart")?,
                ))
            });
        async move {
            let (key, caller) = named?;
            let not_found = || Refusal::of(StatusCode::NOT_FOUND, "no such upload".into());
            let id: UploadId = key.parse().map_err(|_| not_found())?;
            let info = caller.info(&id).await?;
            let matches = self.uploads.direct_session(&info).as_deref() == Some(upload_id);
            if !matches || !info.direct {
                return Err(not_found());
            }
            Ok((caller, id))
        }
    }
}

fn part_number(s: &str) -> Result<u16, Refusal> {
    s.trim().parse().map_err(|_| {
        Refusal::of(
            StatusCode::BAD_REQUEST,
            format!("invalid part number {s:?}"),
        )
    })
}

async fn sign_one(
    State(direct): State<Arc<Direct>>,
    Path((upload_id, part)): Path<(String, String)>,
    req: Request,
) -> Answer {
    let (caller, id) = direct.target(&upload_id, &req).await?;
    let number = part_number(&part)?;
    let url = caller.sign_part(&id, number, direct.validity).await?;
    Ok(Json(json!({ "url": url, "expires": direct.validity.as_secs() })).into_response())
}

async fn sign_batch(
    State(direct): State<Arc<Direct>>,
    Path(upload_id): Path<String>,
    req: Request,
) -> Answer {
    let (caller, id) = direct.target(&upload_id, &req).await?;
    let numbers = query::value(req.uri().query(), "partNumbers").unwrap_or_default();
    let numbers: Vec<u16> = numbers
        .split(',')
        .filter(|s| !s.is_empty())
        .map(part_number)
        .collect::<Result<_, _>>()?;
    if numbers.is_empty() || numbers.len() > 1000 {
        return Err(Refusal::of(
            StatusCode::BAD_REQUEST,
            "name 1 to 1000 partNumbers".into(),
        ));
    }
    let mut urls = serde_json::Map::new();
    for number in numbers {
        let url = caller.sign_part(&id, number, direct.validity).await?;
        urls.insert(number.to_string(), Value::String(url));
    }
    Ok(Json(json!({ "presignedUrls": urls })).into_response())
}

async fn list_parts(
    State(direct): State<Arc<Direct>>,
    Path(upload_id): Path<String>,
    req: Request,
) -> Answer {
    let (caller, id) = direct.target(&upload_id, &req).await?;
    let parts = caller.direct_parts(&id).await?;
    let parts: Vec<Value> = parts
        .iter()
        .map(|p| json!({ "PartNumber": p.number, "Size": p.size, "ETag": p.etag }))
        .collect();
    Ok(Json(Value::Array(parts)).into_response())
}

#[derive(Deserialize)]
struct CompleteBody {
    parts: Vec<CompletePart>,
}

#[derive(Deserialize)]
struct CompletePart {
    #[serde(rename = "PartNumber")]
    number: u16,
    #[serde(rename = "ETag")]
    etag: String,
}

async fn complete(
    State(direct): State<Arc<Direct>>,
    Path(upload_id): Path<String>,
    req: Request,
) -> Answer {
    let origin = direct.public_url.of_request(&req);
    let (caller, id) = direct.target(&upload_id, &req).await?;
    let body = axum::body::to_bytes(req.into_body(), 2 << 20)
        .await
        .map_err(|_| Refusal::of(StatusCode::PAYLOAD_TOO_LARGE, "request too large".into()))?;
    let body: CompleteBody = serde_json::from_slice(&body)
        .map_err(|e| Refusal::of(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))?;
    let named: Vec<(u16, String)> = body.parts.into_iter().map(|p| (p.number, p.etag)).collect();
    let info = caller.complete_direct(&id, &named).await?;
    let location = direct
        .download_path
        .as_ref()
        .map(|p| format!("{origin}{p}/{}", info.id));
    let mut response = Json(json!({
        "location": location,
        "key": info.id.as_str(),
        "id": info.id.as_str(),
        "size": info.offset,
    }))
    .into_response();
    // The uploader reads `location` from this answer: the application is only told.
    response
        .extensions_mut()
        .insert(Completed::notify(vec![CompletedFile::of(&info, location)]));
    Ok(response)
}

async fn abort(
    State(direct): State<Arc<Direct>>,
    Path(upload_id): Path<String>,
    req: Request,
) -> Answer {
    let (caller, id) = direct.target(&upload_id, &req).await?;
    caller.terminate(&id).await?;
    Ok(Json(json!({})).into_response())
}
