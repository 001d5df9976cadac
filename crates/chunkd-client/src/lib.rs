//! A resumable upload client for tus 1.0 and the IETF resumable-upload draft.
//!
//! [`Client::discover`] asks the server what it supports (tus `OPTIONS`: extensions,
//! checksum algorithms, maximum size) and fits the [`Settings`] to it;
//! [`Client::upload`] then sends a file in chunks streamed from disk, remembering its
//! upload URL in a [`StateFile`] under the file's [`Fingerprint`] before the first byte,
//! so the same call after a crash, `kill -9` or network loss continues at the server's
//! offset. Failed attempts are retried with exponential backoff and jitter, each time
//! after asking the server's offset again. With [`Settings::parallel`] above 1 a file
//! goes as several partial uploads at once, joined by tus concatenation.
//!
//! ```no_run
//! # async fn run() -> chunkd_client::Result<()> {
//! use std::sync::Arc;
//! use chunkd_client::{Client, Settings, StateFile, Unobserved};
//!
//! let endpoint = "http://127.0.0.1:1080/files/".parse().map_err(|e| {
//!     chunkd_client::Error::Invalid(format!("{e}"))
//! })?;
//! let client = Client::new(Settings::new(endpoint, StateFile::new("uploads.json")))?;
//! let plan = client.discover().await?;
//! let uploaded = client.upload("video.mp4".as_ref(), &plan, Arc::new(Unobserved)).await?;
//! println!("{}", uploaded.url);
//! # Ok(())
//! # }
//! ```
//!
//! Answers that break the protocol (an offset beyond the upload or going backwards, a
//! missing `Location`, a redirect loop) end the upload with [`Error::Protocol`]; no
//! answer makes the client loop or retry without bound.

mod body;
mod checksum;
mod error;
mod fingerprint;
mod http;
mod ietf;
mod metadata;
mod protocol;
mod retry;
mod size;
mod state;
mod tus;
mod upload;

pub use checksum::Algorithm;
pub use error::{Class, Error, Result};
pub use fingerprint::{FileFacts, Fingerprint};
pub use http::{Timeouts, parse_header};
pub use metadata::Metadata;
pub use protocol::{Capabilities, Protocol};
pub use retry::{Backoff, RETRY_AFTER_CAP};
pub use size::parse_size;
pub use state::{Entry, Part, StateFile};
pub use upload::{Cancelled, Client, Observer, Plan, Settings, Unobserved, Uploaded};
