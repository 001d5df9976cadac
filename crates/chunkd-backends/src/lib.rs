//! Storage backends for chunkd: where bytes and records live.
//!
//! - [`FsStore`] (feature `fs`, default): upload bytes as files on local disk.
//! - [`SqliteState`] (feature `sqlite`, default): upload records in an embedded SQLite
//!   database, safe to share between the server and `chunkd gc` on one machine.
//! - [`PgState`] and [`PgLocker`] (feature `postgres`): records and upload locks in
//!   PostgreSQL, for several instances sharing one deployment.

#[cfg(feature = "fs")]
pub mod fs;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sync;

#[cfg(feature = "fs")]
pub use fs::FsStore;
#[cfg(feature = "postgres")]
pub use postgres::{Pg, PgLocker, PgState};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteState;
pub use sync::SyncPolicy;
