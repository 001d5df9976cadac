//! The chunkd upload engine.
//!
//! Every protocol front end drives one [`Uploads`] engine, which writes bytes to a
//! [`DataStore`] and records upload state in a [`StateStore`], serialising writers with a
//! [`Locker`]. Nothing here knows about HTTP, a cloud SDK or a database driver.

#![warn(missing_docs)]

pub mod body;
pub mod checksum;
pub mod engine;
pub mod error;
pub mod hooks;
pub mod id;
pub mod lock;
pub mod memory;
pub mod metadata;
pub mod metrics;
pub mod noted;
pub mod owner;
pub mod relay;
pub mod state;
pub mod store;
pub mod upload;

#[cfg(feature = "testing")]
pub mod testing;

pub use body::ByteStream;
pub use checksum::{Checksum, ChecksumAlgorithm};
pub use engine::{
    BodyEnd, Caller, Capabilities, Delivery, Limits, Uploads, UploadsBuilder, WriteOutcome,
    WriteRequest,
};
pub use error::{Error, Result};
pub use hooks::{
    Access, Changes, Delivered, DeliveryError, Event, HookEvent, HookKind, Hooks, InvalidStatus,
    Location, NoHooks, Placement, Rejection, Reply, ReplySlot, RequestInfo, Verdict,
};
pub use id::UploadId;
pub use lock::{Lease, Locker};
pub use metadata::Metadata;
pub use owner::Owner;
pub use relay::EventRelay;
pub use state::{OutboxEvent, StateStore};
pub use store::{Concat, DataStore, DirectParts, Part, Written};
pub use upload::{ConcatKind, NewUpload, Status, StoreState, UploadInfo, UploadLimits};
