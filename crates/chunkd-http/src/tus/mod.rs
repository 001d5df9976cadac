//! tus 1.0.0 with every extension the engine can back: creation, creation-with-upload,
//! creation-defer-length, expiration, checksum, checksum-trailer, termination,
//! concatenation and concatenation-unfinished. GET serves finished uploads.

mod error;
mod handlers;
pub mod headers;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{head, post};
use chunkd_core::Uploads;

pub use error::Error;

use crate::public_url::PublicUrl;
use crate::refusal::Refusal;
use crate::routing::{self, FrontEnd};

pub(crate) const TUS_RESUMABLE: &str = "tus-resumable";
pub(crate) const TUS_VERSION: &str = "1.0.0";

/// Settings of the tus front end.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Where the creation endpoint is mounted; uploads live below it.
    pub path: String,
    /// How the public origin of answers' URLs is found (proxies, a fixed base).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub public_url: PublicUrl,
    /// A request body that sends nothing for this long is ended; what arrived is kept.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub idle_timeout: Duration,
    /// Whether request trailers reach chunkd (not through WSGI or ASGI hosts): only
    /// then is `checksum-trailer` offered.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub request_trailers: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: "/files".to_owned(),
            public_url: PublicUrl::default(),
            idle_timeout: crate::DEFAULT_IDLE_TIMEOUT,
            request_trailers: true,
        }
    }
}

pub(crate) struct Tus {
    uploads: Uploads,
    /// Mount path without a trailing slash.
    path: String,
    public_url: PublicUrl,
    idle_timeout: Duration,
    extensions: String,
    checksum_algorithms: String,
}

impl FrontEnd for Tus {
    const PROTOCOL: &'static str = "tus";

    fn uploads(&self) -> &Uploads {
        &self.uploads
    }

    fn refuse(
        &self,
        _request: &http::request::Parts,
        refusal: Refusal,
    ) -> axum::response::Response {
        axum::response::IntoResponse::into_response(Error::from(refusal))
    }
}

/// The tus endpoints: `{path}` and `{path}/` (discovery, creation) and `{path}/{id}`.
pub fn router<S>(uploads: Uploads, config: Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let path = format!("/{}", config.path.trim_matches('/'));
    let path = if path == "/" { String::new() } else { path };
    let caps = uploads.capabilities();
    let mut extensions = vec![
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "concatenation",
        "concatenation-unfinished",
        "checksum",
    ];
    if config.request_trailers {
        extensions.push("checksum-trailer");
    }
    if caps.expiration {
        extensions.push("expiration");
    }
    let checksum_algorithms = caps
        .checksum_algorithms
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(",");
    let replies = uploads.clone();
    let tus = Arc::new(Tus {
        uploads,
        path: path.clone(),
        public_url: config.public_url,
        idle_timeout: config.idle_timeout,
        extensions: extensions.join(","),
        checksum_algorithms,
    });
    let collection = post(Tus::create)
        .options(Tus::options)
        .fallback(handlers::not_allowed);
    let upload = head(Tus::head)
        .patch(Tus::patch)
        .delete(Tus::delete)
        .get(Tus::download)
        .options(Tus::options)
        .fallback(handlers::not_allowed);
    let mut router = Router::new();
    router =
        routing::with_method_override(router, &format!("{path}/"), collection.clone(), tus.clone());
    router = routing::with_method_override(router, &format!("{path}/{{id}}"), upload, tus.clone());
    if !path.is_empty() {
        router = routing::with_method_override(router, &path, collection, tus);
    }
    let router = crate::finish_reply::answer_finish_replies(router, &replies);
    crate::accounting::account(router, Tus::PROTOCOL)
}
