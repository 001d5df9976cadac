//! Storage backends for chunkd: where bytes and records live.
//!
//! - [`FsStore`] (feature `fs`, default): upload bytes as files on local disk.
//! - [`SqliteState`] (feature `sqlite`, default): upload records in an embedded SQLite
//!   database, safe to share between the server and `chunkd gc` on one machine.

#[cfg(feature = "fs")]
pub mod fs;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sync;

#[cfg(feature = "fs")]
pub use fs::FsStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteState;
pub use sync::SyncPolicy;
