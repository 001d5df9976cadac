//! chunkd inside another program's HTTP server (the Python package's WSGI and ASGI
//! apps). The host hands over each request as parts, feeds its body chunk by chunk from
//! its own thread, and takes the answer the same way: [`Call`]. Every step is a future
//! the host waits on as it must (the Python glue releases the interpreter lock and wakes
//! for signals); nothing here runs the host's code.
//!
//! An [`Engine`] belongs to one process: a forked child builds its own (a runtime's
//! threads do not survive `fork`).

mod call;

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use chunkd_core::Uploads;

pub use call::{BodyError, Call};

use crate::assemble::{self, Processes};
use crate::config::Config;
use crate::shutdown::Shutdown;

/// Threads of the engine's runtime per process: uploads wait on the disk (on tokio's
/// blocking pool) and on the host, rarely on these.
const WORKER_THREADS: usize = 2;
/// FsStore and SqliteState work on the blocking pool; several host processes each
/// have one, so it is kept smaller than tokio's default of 512.
const MAX_BLOCKING_THREADS: usize = 64;

/// chunkd's engine and front ends, with their runtime and background tasks (expiry
/// collection, post-event delivery).
pub struct Engine {
    runtime: tokio::runtime::Runtime,
    router: Router,
    uploads: Uploads,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Engine {
    /// Builds the engine `config` describes, for one of several processes that may
    /// share its data directory; `hooks`, given, receives its hook events (as
    /// webhooks do, with `[hooks]`' events, timeout and failure policy).
    pub fn start(
        config: &Config,
        hooks: Option<Arc<dyn chunkd_hooks::Receiver>>,
    ) -> anyhow::Result<Arc<Self>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_name("chunkd")
            .enable_all()
            .build()
            .context("cannot start chunkd's runtime")?;
        let uploads = runtime.block_on(assemble::uploads_for(config, Processes::Several, hooks))?;
        let router = {
            let _entered = runtime.enter();
            // WSGI and ASGI carry no request trailers.
            let mut config = config.clone();
            config.tus.request_trailers = false;
            assemble::router(&config, uploads.clone())?
        };
        let (stop, stopped) = Shutdown::new();
        runtime.spawn(crate::serve::collect_expired(
            uploads.clone(),
            config.gc_interval,
            stopped,
        ));
        runtime.spawn({
            let uploads = uploads.clone();
            async move { uploads.deliver_events().await }
        });
        Ok(Arc::new(Engine {
            runtime,
            router,
            uploads,
            stop,
        }))
    }

    /// Starts answering `request`, whose body comes through the returned [`Call`].
    pub fn call(&self, request: http::Request<()>) -> Call {
        let _entered = self.runtime.enter();
        Call::start(self.router.clone(), request)
    }

    /// What happens to uploads in this process from now on (other processes' uploads
    /// are theirs to tell). A receiver that falls 1024 events behind loses the oldest.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<chunkd_core::Event> {
        self.uploads.events()
    }

    /// Runs `future` to its end on this thread, with the engine's runtime at hand.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Stops taking bytes: uploads under way commit what they received and answer, as
    /// at the binary's shutdown; the background tasks end (post-events not yet
    /// delivered go out from the next engine on this data).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.uploads.shutdown();
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}
