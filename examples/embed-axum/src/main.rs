//! An axum application that embeds chunkd. It has routes, state and sign-in of its own;
//! chunkd's tus and IETF front ends are mounted beside them, learn who is asking from
//! the application's session middleware, and report finished uploads back through the
//! engine's events.
//!
//! ```text
//! embed-axum --data-dir /tmp/uploads --user alice:wonderland --user bob:builder
//! ```

mod sessions;
mod uploads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use chunkd_backends::{FsStore, SqliteState, SyncPolicy};
use chunkd_core::Uploads;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

use crate::sessions::{Sessions, authenticate};
use crate::uploads::Finished;

/// chunkd inside an axum application with its own sign-in.
#[derive(Parser)]
struct Args {
    /// Where upload bytes (`files/`) and records (`state.sqlite3`) are kept.
    #[arg(long, env = "EMBED_AXUM_DATA_DIR")]
    data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "EMBED_AXUM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Who may sign in, as NAME:PASSWORD; repeat for several users.
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = sessions::parse_user)]
    #[arg(required = true)]
    users: Vec<(String, String)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let store = FsStore::new(args.data_dir.join("files"), SyncPolicy::Always)
        .with_context(|| format!("cannot use {}", args.data_dir.display()))?;
    let state = SqliteState::open(args.data_dir.join("state.sqlite3"), SyncPolicy::Always)
        .context("cannot open the state database")?;
    let sessions = Sessions::new(args.users);

    let uploads = Uploads::builder(Arc::new(store), Arc::new(state)).build();
    let finished = Finished::following(uploads.events());
    let tus = chunkd_http::tus::router(uploads.clone(), chunkd_http::tus::Config::default());
    let ietf = chunkd_http::ietf::router(uploads.clone(), chunkd_http::ietf::Config::default());
    let app = my_routes(sessions.clone(), finished)
        .merge(tus)
        .merge(ietf)
        // The app's own sign-in says who is asking; chunkd reads it (identity::set_identity).
        .layer(middleware::from_fn_with_state(sessions, authenticate));
    let app = chunkd_http::cors(app);
    tokio::spawn(purge_expired(uploads.clone()));

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // The tests read this line to find the app.
    println!("embed-axum listening on http://{}", listener.local_addr()?);
    // axum::serve works too; chunkd_http::interim::serve adds 104 interim responses.
    chunkd_http::interim::serve(listener, app, shutdown_signal(uploads)).await?;
    Ok(())
}

/// The application's own routes: sign-in, and the caller's finished uploads.
fn my_routes(sessions: Sessions, finished: Finished) -> Router {
    let sign_in = Router::new()
        .route("/api/sessions", post(sessions::sign_in))
        .with_state(sessions);
    let listing = Router::new()
        .route("/api/uploads", get(uploads::list))
        .with_state(finished);
    sign_in.merge(listing)
}

/// Unfinished uploads past their expiry (a day, by default) are removed only when asked.
async fn purge_expired(uploads: Uploads) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        match uploads.purge_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired uploads removed"),
            Err(e) => tracing::warn!(error = %e, "cannot purge expired uploads"),
        }
    }
}

/// Waits for Ctrl-C or SIGTERM, then has in-flight writes stop and keep what arrived.
async fn shutdown_signal(uploads: Uploads) {
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: in-flight uploads keep what they received");
    uploads.shutdown();
}
