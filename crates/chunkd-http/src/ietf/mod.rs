//! The IETF "Resumable Uploads for HTTP" draft (draft-ietf-httpbis-resumable-upload),
//! interop versions 3 to 8, on the same engine as tus.
//!
//! Creation is a POST (or PUT) to `{path}` with `Upload-Complete` (`Upload-Incomplete`
//! for interop 3); the upload resource is `{path}/{id}`, with HEAD (or GET) for the
//! offset, PATCH to append and DELETE to cancel. When the client announces an interop
//! version and the connection is HTTP/1.1 under [`crate::interim::serve`], the upload's
//! URL is sent in a `104 Upload Resumption Supported` before the body is read, so even a
//! request cut off in its first byte can be resumed; long appends report committed
//! offsets in further 104s.

mod append;
pub(crate) mod digest;
pub(crate) mod fields;
mod handlers;
mod problem;
#[cfg(test)]
mod tests;
mod version;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{head, post};
use chunkd_core::Uploads;

use crate::public_url::PublicUrl;

pub use version::SUPPORTED as SUPPORTED_INTEROP_VERSIONS;

/// Settings of the IETF draft front end.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Where uploads are created; upload resources live below it.
    pub path: String,
    /// How the public origin of answers' URLs is found (proxies, a fixed base).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub public_url: PublicUrl,
    /// A request body that sends nothing for this long is ended; what arrived is kept.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub idle_timeout: Duration,
    /// Least time between two progress 104s of one request; each names a committed
    /// offset, so they come at most once per checkpoint.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub progress_interval: Duration,
    /// Where finished uploads can be downloaded (the tus path), for the completion answer.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub download_path: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: "/uploads".to_owned(),
            public_url: PublicUrl::default(),
            idle_timeout: crate::DEFAULT_IDLE_TIMEOUT,
            progress_interval: Duration::from_secs(1),
            download_path: None,
        }
    }
}

pub(crate) struct Ietf {
    uploads: Uploads,
    /// Mount path without a trailing slash.
    path: String,
    public_url: PublicUrl,
    idle_timeout: Duration,
    progress_interval: Duration,
    download_path: Option<String>,
}

/// The draft's endpoints: `{path}` and `{path}/` (discovery, creation), `{path}/{id}`.
pub fn router<S>(uploads: Uploads, config: Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let path = format!("/{}", config.path.trim_matches('/'));
    let path = if path == "/" { String::new() } else { path };
    let replies = uploads.clone();
    let ietf = Arc::new(Ietf {
        uploads,
        path: path.clone(),
        public_url: config.public_url,
        idle_timeout: config.idle_timeout,
        progress_interval: config.progress_interval,
        download_path: config
            .download_path
            .map(|p| format!("/{}", p.trim_matches('/'))),
    });
    let collection = post(handlers::create)
        .put(handlers::create)
        .options(handlers::options)
        .fallback(handlers::not_allowed);
    let upload = head(handlers::offset)
        .get(handlers::offset)
        .patch(handlers::patch)
        .delete(handlers::delete)
        .options(handlers::options)
        .fallback(handlers::not_allowed);
    let mut router = Router::new()
        .route(&format!("{path}/"), collection.clone())
        .route(&format!("{path}/{{id}}"), upload);
    if !path.is_empty() {
        router = router.route(&path, collection);
    }
    let router = crate::finish_reply::answer_finish_replies(router.with_state(ietf), &replies);
    crate::accounting::account(router, "ietf")
}
