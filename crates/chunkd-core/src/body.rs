//! Request bodies as the engine and stores see them.

use std::io;

use bytes::Bytes;
use futures::stream::BoxStream;

/// A body on its way to a store. An `Err` item means "abandon this write": the store
/// discards what it appended during the call. A clean end means "keep everything".
pub type ByteStream<'a> = BoxStream<'a, io::Result<Bytes>>;

/// The error item the engine injects when it abandons a body (checksum mismatch, length
/// exceeded, ...). Stores only need to know that the stream failed.
pub(crate) fn abandoned() -> io::Error {
    io::Error::other("upload body abandoned")
}
