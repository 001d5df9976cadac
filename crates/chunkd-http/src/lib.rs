//! Protocol front ends for the chunkd engine, each an axum [`Router`](axum::Router).
//!
//! ```no_run
//! # async fn demo(uploads: chunkd_core::Uploads) {
//! let app = axum::Router::new()
//!     .merge(chunkd_http::tus::router(uploads, chunkd_http::tus::Config::default()));
//! let app = chunkd_http::cors(app);
//! # let _: axum::Router = app;
//! # }
//! ```
//!
//! With the `serde` feature, each front end's `Config` (and [`PublicUrl`]) reads from
//! and writes to any serde format; keys left out keep their defaults, durations are
//! humantime strings (`"15m"`), and what a binary supplies itself (the public URL, the
//! idle timeout, download paths, the signer) is not part of the format.

#![warn(missing_docs)]

pub mod accounting;
mod body;
#[cfg(test)]
mod client_limit_tests;
pub mod completed;
#[cfg(feature = "content-range")]
pub mod content_range;
mod cors;
pub mod disposition;
pub mod download;
pub mod events;
mod finish_reply;
#[cfg(all(
    test,
    feature = "tus",
    feature = "ietf",
    feature = "content-range",
    feature = "resumablejs"
))]
mod finish_reply_tests;
pub mod form;
mod form_data;
pub mod forward;
#[cfg(all(
    any(test, feature = "fuzzing"),
    feature = "tus",
    feature = "ietf",
    feature = "resumablejs",
    feature = "content-range"
))]
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod hex;
mod hook_request;
pub mod identity;
#[cfg(feature = "ietf")]
pub mod ietf;
pub mod interim;
pub mod listener;
mod multipart_framing;
#[cfg(test)]
mod ownership_tests;
pub mod public_url;
pub mod query;
pub mod range;
pub mod refusal;
#[cfg(all(
    test,
    feature = "tus",
    feature = "ietf",
    feature = "content-range",
    feature = "resumablejs"
))]
mod rejection_tests;
#[cfg(feature = "resumablejs")]
pub mod resumablejs;
#[cfg(any(feature = "tus", feature = "ietf", feature = "content-range"))]
mod routing;
pub mod s3_multipart;
#[cfg(all(
    test,
    feature = "serde",
    feature = "tus",
    feature = "ietf",
    feature = "resumablejs",
    feature = "content-range"
))]
mod serde_config;
pub mod signed_ids;
#[cfg(all(
    test,
    feature = "tus",
    feature = "ietf",
    feature = "content-range",
    feature = "resumablejs"
))]
mod storage_full_tests;
#[cfg(test)]
mod test_support;
#[cfg(feature = "tus")]
pub mod tls;
pub mod tus;
#[cfg(feature = "ui")]
pub mod ui;

pub use cors::cors;
pub use public_url::PublicUrl;
pub use refusal::{Kind, Refusal};

/// How long a request body may send nothing before it is ended, unless a front end's
/// `Config` says otherwise (what arrived is kept).
pub const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
