//! Plain `multipart/form-data` uploads with a progress side channel (the infrae.fileupload
//! and nginx upload progress model). Each file part is streamed to storage as it arrives
//! and described in the JSON answer; a POST tagged with `X-Progress-ID` (header or query)
//! can be watched at the progress endpoint while its body arrives.

mod handlers;
mod progress;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use chunkd_core::Uploads;

use crate::public_url::PublicUrl;
use crate::signed_ids::Signer;

/// Settings of the form front end.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Where forms are posted.
    pub upload_path: String,
    /// Where progress is polled (`GET`) and cleared (`DELETE`).
    pub progress_path: String,
    /// Most file parts one form may carry; a form with more is refused whole.
    pub max_files: usize,
    /// Where stored files can be downloaded by id (e.g. the tus mount, `/files`).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub download_path: Option<String>,
    /// How the public origin of answers' URLs is found (proxies, a fixed base).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub public_url: PublicUrl,
    /// A request body that sends nothing for this long is ended; what arrived is kept.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub idle_timeout: Duration,
    /// When set, progress ids must be identifiers this signer issued to the uploader.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub signer: Option<Signer>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            upload_path: "/upload".to_owned(),
            progress_path: "/progress".to_owned(),
            max_files: 100,
            download_path: None,
            public_url: PublicUrl::default(),
            idle_timeout: crate::DEFAULT_IDLE_TIMEOUT,
            signer: None,
        }
    }
}

pub(crate) struct FormUploads {
    uploads: Uploads,
    max_files: usize,
    tracker: progress::Tracker,
    download_path: Option<String>,
    public_url: PublicUrl,
    idle_timeout: Duration,
    signer: Option<Signer>,
}

/// The form upload and progress endpoints.
pub fn router<S>(uploads: Uploads, config: Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let replies = uploads.clone();
    let state = Arc::new(FormUploads {
        uploads,
        max_files: config.max_files,
        tracker: progress::Tracker::default(),
        download_path: config
            .download_path
            .map(|p| format!("/{}", p.trim_matches('/'))),
        public_url: config.public_url,
        idle_timeout: config.idle_timeout,
        signer: config.signer,
    });
    let router = Router::new()
        .route(
            &config.upload_path,
            post(handlers::upload).fallback(handlers::not_allowed),
        )
        .route(
            &config.progress_path,
            get(handlers::progress)
                .delete(handlers::clear_progress)
                .fallback(handlers::not_allowed),
        )
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    let router = crate::finish_reply::answer_finish_replies(router, &replies);
    crate::accounting::account(router, "form")
}
