//! The upload record and the request to create one.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::id::UploadId;
use crate::metadata::Metadata;

/// Lifecycle of an upload. Terminated and expired uploads are removed, not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Accepting bytes.
    Open,
    /// All bytes stored and the store has finished it; readable.
    Finished,
}

/// How an upload takes part in concatenation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConcatKind {
    /// A plain upload.
    #[default]
    None,
    /// A piece meant to be concatenated into a final upload.
    Partial,
    /// The concatenation of these partial uploads, in order.
    Final(Vec<UploadId>),
}

/// Backend bookkeeping (file names, multipart ids, part tags), opaque to the engine and
/// saved with the offset in the same state update so there is one source of truth.
pub type StoreState = BTreeMap<String, String>;

/// Limits a pre-create hook set for one upload: a size below the server's largest, and
/// its own idle expiry instead of the server's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadLimits {
    /// Largest size the upload may reach, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Unfinished, it is purged this many seconds after its last write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after_secs: Option<u64>,
}

impl UploadLimits {
    /// Whether nothing is set (the server's limits apply).
    pub fn is_empty(&self) -> bool {
        self == &UploadLimits::default()
    }
}

/// The record a [`crate::StateStore`] persists for every upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    /// Its identifier, unique within the state store.
    pub id: UploadId,
    /// Total size, once known (tus deferred length leaves it open).
    pub length: Option<u64>,
    /// Bytes durably stored so far.
    pub offset: u64,
    /// What the client said about the file (name, type, its own keys).
    pub metadata: Metadata,
    /// Whether it still takes bytes or is finished.
    pub status: Status,
    /// Whether it is a plain upload, a part of a concatenation or the concatenation.
    #[serde(default)]
    pub concat: ConcatKind,
    /// The identity that created the upload, when the front end knows one.
    #[serde(default)]
    pub owner: Option<String>,
    /// When it was created.
    pub created_at: SystemTime,
    /// Unfinished uploads are purged after this instant.
    pub expires_at: Option<SystemTime>,
    /// The data store's own bookkeeping for it (see [`StoreState`]).
    #[serde(default)]
    pub store: StoreState,
    /// Final uploads waiting for this partial to finish (tus concatenation-unfinished).
    #[serde(default)]
    pub pending_finals: Vec<UploadId>,
    /// The client sends parts straight to the store (browser-direct); nothing is
    /// appended through the engine.
    #[serde(default)]
    pub direct: bool,
    /// What a pre-create hook set for this upload alone.
    #[serde(default, skip_serializing_if = "UploadLimits::is_empty")]
    pub limits: UploadLimits,
    /// Compare-and-swap token, bumped by every [`crate::StateStore::update`].
    pub revision: u64,
}

impl UploadInfo {
    /// Whether every byte is stored and it is readable.
    pub fn is_finished(&self) -> bool {
        self.status == Status::Finished
    }

    /// Whether it is the concatenation of partial uploads.
    pub fn is_final(&self) -> bool {
        matches!(self.concat, ConcatKind::Final(_))
    }

    /// Whether it can expire: an unfinished upload, or a partial one (finished or not),
    /// which only lives to be joined. A finished file of its own is kept.
    pub fn may_expire(&self) -> bool {
        self.status == Status::Open || self.concat == ConcatKind::Partial
    }

    /// Whether it [may expire](Self::may_expire) and its expiry is at or before `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.may_expire() && self.expires_at.is_some_and(|t| t <= now)
    }
}

/// What a front end asks for when it creates an upload. The owner is the caller's
/// ([`crate::Uploads::for_owner`]).
#[derive(Clone, Debug, Default)]
pub struct NewUpload {
    /// A caller-chosen id (derived from the client's own file key, say); creation fails
    /// with `AlreadyExists` if it is taken. `None` generates a random one.
    pub id: Option<UploadId>,
    /// The total size, when known at creation (left open for a deferred length).
    pub length: Option<u64>,
    /// What the client says about the file.
    pub metadata: Metadata,
    /// A final upload concatenates the listed uploads, in order; unfinished ones are
    /// allowed, and the final upload finishes when the last of them does. Its length is
    /// theirs, so `length` is ignored for it.
    pub concat: ConcatKind,
    /// Parts go straight to the store ([`crate::store::DirectParts`]).
    pub direct: bool,
}
