//! How hard backends work to make acknowledged data survive a crash.

use serde::{Deserialize, Serialize};

/// When data and records are forced to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncPolicy {
    /// fsync the upload file before every offset is saved, fsync the directory on finish,
    /// and commit state with SQLite `synchronous=FULL`: an offset a client is told
    /// survives a power loss.
    #[default]
    Always,
    /// Leave flushing to the operating system: an offset survives a process crash
    /// (`kill -9`) but not necessarily a power loss or kernel panic.
    Never,
}
