//! Content-Range chunking, the contract of django-chunked-upload and drf-chunked-upload,
//! and blueimp jQuery-File-Upload's chunked mode.
//!
//! - `PUT {path}` or `POST {path}` with `Content-Range: bytes S-E/T` and a file part
//!   starts an upload; later chunks go to `PUT {path}/{id}` (drf) or `POST {path}` with
//!   an `upload_id` field (django, blueimp).
//! - A POST without `Content-Range` is a whole file (blueimp sends no header when the
//!   file fits in one chunk); an `md5` field makes it verified.
//! - Completion with the whole file's digest: `POST {path}/{id}` (drf) or
//!   `POST {path}/complete` with `upload_id` (django); 400 on mismatch.
//! - `GET {path}/{id}` tells where an upload stands (blueimp `uploadedBytes`);
//!   `GET {path}/{id}/content` downloads a finished one; `DELETE {path}/{id}` removes it.

mod error;
mod handlers;
pub mod header;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use chunkd_core::Uploads;

pub use error::Error;

use crate::public_url::PublicUrl;

/// Settings of the Content-Range front end.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Where uploads are started; an upload's resources live below it.
    pub path: String,
    /// How the public origin of answers' URLs is found (proxies, a fixed base).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub public_url: PublicUrl,
    /// A request body that sends nothing for this long is ended; what arrived is kept.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: "/chunked".to_owned(),
            public_url: PublicUrl::default(),
            idle_timeout: crate::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

pub(crate) struct ContentRangeUploads {
    uploads: Uploads,
    path: String,
    public_url: PublicUrl,
    idle_timeout: Duration,
}

/// The Content-Range endpoints below `config.path`.
pub fn router<S>(uploads: Uploads, config: Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let path = format!("/{}", config.path.trim_matches('/'));
    let replies = uploads.clone();
    let state = Arc::new(ContentRangeUploads {
        uploads,
        path: path.clone(),
        public_url: config.public_url,
        idle_timeout: config.idle_timeout,
    });
    let collection = post(handlers::receive_new)
        .put(handlers::receive_new)
        .fallback(handlers::not_allowed);
    let upload = get(handlers::state)
        .put(handlers::receive_chunk)
        .post(handlers::chunk_or_complete)
        .delete(handlers::delete)
        .fallback(handlers::not_allowed);
    let router = Router::new()
        .route(&path, collection.clone())
        .route(&format!("{path}/"), collection)
        .route(
            &format!("{path}/complete"),
            post(handlers::complete).fallback(handlers::not_allowed),
        )
        .route(&format!("{path}/{{id}}"), upload)
        .route(
            &format!("{path}/{{id}}/content"),
            get(handlers::content).fallback(handlers::not_allowed),
        )
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    let router = crate::finish_reply::answer_finish_replies(router, &replies);
    crate::accounting::account(router, "content-range")
}
