//! The bytes seam: where upload data lives.

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;

use crate::body::ByteStream;
use crate::error::Result;
use crate::upload::{StoreState, UploadInfo};

/// The outcome of one append.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Bytes appended and durable.
    pub bytes: u64,
    /// The store's bookkeeping after the append, saved with the new offset.
    pub store: StoreState,
}

/// Where upload bytes are kept.
///
/// # Contract
///
/// - Appends only: [`write`](DataStore::write) always continues at `info.offset`. If the
///   store holds bytes past `info.offset` (left by a crash before the state was saved),
///   it drops them first, so the state's offset is the only truth.
/// - When the body stream ends cleanly, every byte it yielded is stored and durable (as
///   far as the store's sync policy promises) before `write` returns.
/// - `write` may return once without reading its body, with 0 bytes and changed
///   bookkeeping that must be saved before it writes (the S3 store claims part numbers
///   so); the engine saves it and calls again, and a second such return is an error.
/// - When the body stream yields an error, nothing appended during that call is kept and
///   `write` returns an error; the upload stays at `info.offset`.
/// - [`finish`](DataStore::finish) is called once, when `info.offset == length`;
///   [`read`](DataStore::read) is only asked for finished uploads and ranges within them.
/// - [`delete`](DataStore::delete) is idempotent.
/// - Calls for one upload are never concurrent (the engine holds its lock); calls for
///   different uploads are.
#[async_trait]
pub trait DataStore: fmt::Debug + Send + Sync + 'static {
    /// A short name for logs and errors (`fs`, `memory`, `s3`).
    fn name(&self) -> &'static str;

    /// Prepares an empty upload.
    async fn create(&self, info: &UploadInfo) -> Result<StoreState>;

    /// Appends `body` at `info.offset`.
    async fn write(&self, info: &UploadInfo, body: ByteStream<'_>) -> Result<Written>;

    /// Makes a complete upload readable as one object.
    async fn finish(&self, info: &UploadInfo) -> Result<StoreState>;

    /// Streams `range` of a finished upload.
    async fn read(&self, info: &UploadInfo, range: Range<u64>) -> Result<ByteStream<'static>>;

    /// Removes everything stored for the upload. Succeeds if nothing is there.
    async fn delete(&self, info: &UploadInfo) -> Result<()>;

    /// Whether the store answers now (its directory takes a write, its bucket is
    /// there), for readiness probes; the error says what is wrong.
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Native concatenation, when the store can do better than streaming the parts.
    fn concat(&self) -> Option<&dyn Concat> {
        None
    }

    /// Clients sending parts straight to the store, when the store can sign for them.
    fn direct(&self) -> Option<&dyn DirectParts> {
        None
    }

    /// Where the upload's bytes are kept, for hooks and the application.
    fn location(&self, _info: &UploadInfo) -> Option<crate::hooks::Location> {
        None
    }

    /// Checks where a pre-create hook wants `info`'s bytes and returns the bookkeeping
    /// that makes [`create`](DataStore::create) and every later call use that place. A
    /// place that is unsafe (outside the store's directory or prefix, another bucket)
    /// or already taken is an error, never followed.
    fn place(&self, _info: &UploadInfo, _wanted: &crate::hooks::Placement) -> Result<StoreState> {
        Err(crate::error::Error::backend(
            self.name(),
            "this store cannot place uploads where a hook asks",
        ))
    }
}

/// One part a client stored directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Its part number, from 1.
    pub number: u16,
    /// The tag the store gave it, which completion quotes back.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Optional capability: browser-direct uploads. The client PUTs parts to URLs the store
/// signs (one part of one upload each, for a limited time); the engine keeps the record
/// and completes the upload from the parts the store lists.
#[async_trait]
pub trait DirectParts: Send + Sync {
    /// Every part but the last must be at least this large.
    fn min_part_size(&self) -> u64;
    /// The store's own name for the upload's multipart session (S3's `UploadId`),
    /// which clients quote back.
    fn session(&self, info: &UploadInfo) -> Option<String>;
    /// A URL the client PUTs part `number` of `info` to, valid for `valid_for`.
    fn sign_part(
        &self,
        info: &UploadInfo,
        number: u16,
        valid_for: std::time::Duration,
    ) -> Result<String>;
    /// The parts stored so far, by number.
    async fn parts(&self, info: &UploadInfo) -> Result<Vec<Part>>;
    /// Joins `parts` (checked against [`DirectParts::parts`]) into the readable object.
    async fn complete(&self, info: &UploadInfo, parts: &[Part]) -> Result<StoreState>;
}

/// Optional capability: build an upload from finished parts without the bytes passing
/// through the engine.
#[async_trait]
pub trait Concat: Send + Sync {
    /// `target` is created and empty; afterwards it holds the parts' bytes in order. The
    /// engine then calls [`DataStore::finish`] on it as for any complete upload.
    /// `Ok(None)`: the store cannot join these parts itself (S3 cannot copy a part below
    /// its minimum size), so the engine streams them instead.
    async fn concat(&self, target: &UploadInfo, parts: &[UploadInfo])
    -> Result<Option<StoreState>>;
}
