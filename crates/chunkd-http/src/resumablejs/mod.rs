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
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use chunkd_core::Uploads;
use handlers::Step;

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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Target for Resumable.js (`target` option).
    pub resumable_path: String,
    /// Target for Flow.js.
    pub flow_path: String,
    /// The most chunks one file may have: the status, cleanup and assembly requests
    /// look at each, so the client must not choose how many (at 1 MiB chunks, the
    /// libraries' default, the default allows files of 10 GiB; larger ones need larger
    /// chunks or a higher setting).
    pub max_chunks: u64,
    /// A chunk body that sends nothing for this long is ended; what arrived is kept.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub idle_timeout: Duration,
    /// Keys the anonymous uploader cookie: instances sharing uploads need the same one
    /// (`None`: a random key per process).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub uploader_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("resumable_path", &self.resumable_path)
            .field("flow_path", &self.flow_path)
            .field("max_chunks", &self.max_chunks)
            .field("idle_timeout", &self.idle_timeout)
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
            max_chunks: 10_000,
            uploader_key: None,
            idle_timeout: crate::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

pub(crate) struct Chunks {
    uploads: Uploads,
    max_chunks: u64,
    uploaders: uploader::Uploaders,
    idle_timeout: Duration,
}

/// Routes for both libraries. The assembled file is an ordinary finished upload, served
/// by any front end that reads uploads (tus `GET {path}/{id}`).
pub fn router<S>(uploads: Uploads, config: Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let replies = uploads.clone();
    let chunks = Arc::new(Chunks {
        uploads,
        max_chunks: config.max_chunks,
        uploaders: uploader::Uploaders::new(config.uploader_key.clone()),
        idle_timeout: config.idle_timeout,
    });
    let on = |dialect: Dialect, step: Step| {
        let chunks = chunks.clone();
        move |req: axum::extract::Request| handlers::handle(chunks.clone(), dialect, step, req)
    };
    let route = |dialect: Dialect| {
        get(on(dialect, Step::Test))
            .post(on(dialect, Step::Upload))
            .put(on(dialect, Step::Upload))
            .delete(on(dialect, Step::Cleanup))
            .fallback(handlers::not_allowed)
    };
    let status = |dialect: Dialect| get(on(dialect, Step::Status)).fallback(handlers::not_allowed);
    let router = Router::new()
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
        .layer(DefaultBodyLimit::disable());
    let router = crate::finish_reply::answer_finish_replies(router, &replies);
    crate::accounting::account(router, "resumablejs")
}

#[cfg(test)]
mod idle_timeout_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use axum::body::Body;
    use chunkd_core::memory::{MemoryState, MemoryStore};
    use futures::StreamExt;
    use http::Request;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_stalled_chunk_ends_after_the_configured_idle_timeout() {
        let uploads =
            Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build();
        let config = Config {
            idle_timeout: Duration::from_millis(100),
            ..Config::default()
        };
        let app: Router = router(uploads, config);
        // Four of the chunk's ten bytes, then nothing: only the idle timeout ends it.
        let stalled = futures::stream::once(async {
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"0123"))
        })
        .chain(futures::stream::pending());
        let req = Request::post(
            "/resumable?resumableChunkNumber=1&resumableChunkSize=10\
             &resumableCurrentChunkSize=10&resumableTotalSize=10&resumableTotalChunks=1\
             &resumableIdentifier=10-file&resumableFilename=file.bin",
        )
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(stalled))
        .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), app.oneshot(req)).await;
        assert!(answer.is_ok(), "the chunk waited past its idle timeout");
    }
}
