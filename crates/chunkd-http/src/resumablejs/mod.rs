//! Resumable.js and Flow.js: numbered chunks, any order, several at once.
//!
//! Each chunk becomes a partial upload and the file the final concatenation of them, so
//! the stores only ever append. Ids are derived from the client's description of the file
//! (dialect, owner, identifier, sizes), never from its text used as a path, so a chunk
//! request finds its upload without a lookup table, and two requests completing the
//! same file race on one insert: the file is assembled exactly once.

mod handlers;
pub mod params;
#[cfg(test)]
mod tests;
mod uploader;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::any;
use chunkd_core::Uploads;

/// Which library's parameter names and status rules to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Resumable.js: parameters `resumable*`.
    Resumable,
    /// Flow.js: parameters `flow*`; a 404 on a test GET would fail the whole file.
    Flow,
}

impl Dialect {
    fn prefix(self) -> &'static str {
        match self {
            Dialect::Resumable => "resumable",
            Dialect::Flow => "flow",
        }
    }
}

/// Settings of the Resumable.js / Flow.js front end.
#[derive(Clone)]
pub struct Config {
    /// Target for Resumable.js (`target` option).
    pub resumable_path: String,
    /// Target for Flow.js.
    pub flow_path: String,
    /// Keys the anonymous uploader cookie: instances sharing uploads need the same one
    /// (`None`: a random key per process).
    pub uploader_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("resumable_path", &self.resumable_path)
            .field("flow_path", &self.flow_path)
            .field(
                "uploader_key",
                &self.uploader_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resumable_path: "/resumable".to_owned(),
            flow_path: "/flow".to_owned(),
            uploader_key: None,
        }
    }
}

pub(crate) struct Chunks {
    uploads: Uploads,
    uploaders: uploader::Uploaders,
}

/// Routes for both libraries. The assembled file is an ordinary finished upload, served
/// by any front end that reads uploads (tus `GET {path}/{id}`).
pub fn router<S>(uploads: Uploads, config: Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let chunks = Arc::new(Chunks {
        uploads,
        uploaders: uploader::Uploaders::new(config.uploader_key.clone()),
    });
    let route = |dialect: Dialect| {
        let chunks = chunks.clone();
        any(move |req: axum::extract::Request| handlers::handle(chunks.clone(), dialect, req))
    };
    let status = |dialect: Dialect| {
        let chunks = chunks.clone();
        axum::routing::get(move |req: axum::extract::Request| {
            handlers::status(chunks.clone(), dialect, req)
        })
    };
    Router::new()
        .route(&config.resumable_path, route(Dialect::Resumable))
        .route(
            &format!("{}/status", config.resumable_path),
            status(Dialect::Resumable),
        )
        .route(&config.flow_path, route(Dialect::Flow))
        .route(
            &format!("{}/status", config.flow_path),
            status(Dialect::Flow),
        )
        // Chunk sizes are the client's choice; the engine enforces upload limits.
        .layer(DefaultBodyLimit::disable())
}
