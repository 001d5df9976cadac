//! Storage backends for chunkd: where bytes and records live.
//!
//! - [`FsStore`] (feature `fs`, default): upload bytes as files on local disk.
//! - [`SqliteState`] (feature `sqlite`, default): upload records in an embedded SQLite
//!   database, safe to share between the server and `chunkd gc` on one machine.
//! - [`FlockLocker`] (unix): upload locks shared by the processes using one data
//!   directory (`flock` on a file per upload), for the server beside `chunkd gc` or
//!   several workers.
//! - [`PgState`] and [`PgLocker`] (feature `postgres`): records and upload locks in
//!   PostgreSQL, for several instances sharing one deployment, reached as [`PgConfig`]
//!   says.
//! - [`S3Store`] (feature `s3`): upload bytes in an S3-compatible bucket, as multipart
//!   uploads, with one part of memory per request, reached as [`S3Config`] says.
//!
//! With the `serde` feature, [`S3Config`] and [`PgConfig`] read from and write to any
//! serde format; keys left out keep their defaults and durations are humantime strings.

#![warn(missing_docs)]

#[cfg(unix)]
pub mod flock;
#[cfg(feature = "fs")]
pub mod fs;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sync;

#[cfg(unix)]
pub use flock::FlockLocker;
#[cfg(feature = "fs")]
pub use fs::FsStore;
#[cfg(feature = "postgres")]
pub use postgres::{Pg, PgConfig, PgEventRelay, PgLocker, PgState};
#[cfg(feature = "s3")]
pub use s3::{S3Config, S3Store};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteState;
pub use sync::SyncPolicy;
