//! In-memory implementations of every seam: for tests, embedding, and as the reference
//! the conformance suites are written against. `MemoryLocker` is also the production
//! locker for a single instance.

mod direct;
mod lock;
mod state;
mod store;

pub use direct::PutRefused;
pub use lock::MemoryLocker;
pub use state::MemoryState;
pub use store::MemoryStore;
