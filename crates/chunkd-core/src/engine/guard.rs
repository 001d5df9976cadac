//! The body guard: enforces the length limit, verifies checksums, turns a client
//! disconnect into a clean end (keep what arrived) and stops early when the lease is
//! contended or the server shuts down.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;

use crate::body::{ByteStream, abandoned};
use crate::checksum::{Checksum, ChecksumAlgorithm, Hasher};
use crate::error::Error;

/// Where the digest to verify comes from.
#[derive(Clone, Debug)]
pub enum ExpectedChecksum {
    /// Known before the body (tus `Upload-Checksum` header).
    Header(Checksum),
    /// Delivered after the body (tus checksum-trailer); filled in by the front end when
    /// the trailer arrives, read when the body ends.
    Trailer(TrailerSlot),
}

/// A slot the front end fills with the trailer's checksum.
pub type TrailerSlot = Arc<Mutex<Option<Checksum>>>;

/// Why the guard ended the body before the client did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Contended,
    Shutdown,
}

impl Stop {
    /// The error for a write that had to be abandoned, kept at `offset`.
    pub(crate) fn error_at(self, offset: u64) -> Error {
        match self {
            Stop::Contended => Error::Interrupted { offset },
            Stop::Shutdown => Error::ShuttingDown { offset },
        }
    }
}

/// Why a write must be abandoned (nothing of this call kept).
#[derive(Debug)]
pub(crate) enum Abort {
    /// An all-or-nothing body was stopped; the write path knows the offset kept.
    Stopped(Stop),
    Failed(Error),
}

impl Abort {
    /// The error the request ends with, `offset` being what is kept.
    pub(crate) fn error_at(self, offset: u64) -> Error {
        match self {
            Abort::Failed(reason) => reason,
            Abort::Stopped(stop) => stop.error_at(offset),
        }
    }
}

type StopFuture = Pin<Box<dyn Future<Output = Stop> + Send>>;

pub(crate) struct GuardedBody<'a> {
    inner: ByteStream<'a>,
    /// Bytes still allowed.
    allowance: u64,
    /// The error for a body that goes past the allowance.
    overflow: Box<dyn Fn() -> Error + Send + 'a>,
    hashers: Vec<Hasher>,
    expected: Option<ExpectedChecksum>,
    atomic: bool,
    stop: StopFuture,
    /// Set once the body is over, for whatever reason.
    pub(crate) ended: bool,
    /// Set when the client's connection failed mid-body.
    pub(crate) disconnected: bool,
    pub(crate) stopped: Option<Stop>,
    /// Why the write must be abandoned, if it must.
    pub(crate) abort: Option<Abort>,
}

impl<'a> GuardedBody<'a> {
    pub(crate) fn new(
        inner: ByteStream<'a>,
        allowance: u64,
        overflow: Box<dyn Fn() -> Error + Send + 'a>,
        expected: Option<ExpectedChecksum>,
        atomic: bool,
        stop: StopFuture,
    ) -> Self {
        let hashers = match &expected {
            None => Vec::new(),
            Some(ExpectedChecksum::Header(c)) => vec![c.algorithm.hasher()],
            // The algorithm is only known at the end: hash with all of them.
            Some(ExpectedChecksum::Trailer(_)) => {
                ChecksumAlgorithm::ALL.iter().map(|a| a.hasher()).collect()
            }
        };
        GuardedBody {
            inner,
            allowance,
            overflow,
            hashers,
            expected,
            atomic,
            stop,
            ended: false,
            disconnected: false,
            stopped: None,
            abort: None,
        }
    }

    /// With a checksum, or when asked, the write is all-or-nothing, so it cannot be cut
    /// into checkpoints.
    pub(crate) fn all_or_nothing(&self) -> bool {
        self.expected.is_some() || self.atomic
    }

    fn fail(&mut self, why: Abort) -> Poll<Option<io::Result<Bytes>>> {
        self.ended = true;
        self.abort = Some(why);
        Poll::Ready(Some(Err(abandoned())))
    }

    fn verify(&mut self) -> Result<(), Error> {
        let expected = match self.expected.take() {
            None => return Ok(()),
            Some(ExpectedChecksum::Header(c)) => c,
            Some(ExpectedChecksum::Trailer(slot)) => {
                let got = slot.lock().map(|mut g| g.take()).unwrap_or(None);
                got.ok_or(Error::ChecksumMissing)?
            }
        };
        let hashers = std::mem::take(&mut self.hashers);
        let index = match hashers.len() {
            1 => 0,
            _ => ChecksumAlgorithm::ALL
                .iter()
                .position(|a| *a == expected.algorithm)
                .unwrap_or(0),
        };
        let digest = hashers
            .into_iter()
            .nth(index)
            .map(Hasher::finalize)
            .unwrap_or_default();
        if digest == expected.digest {
            Ok(())
        } else {
            Err(Error::ChecksumMismatch)
        }
    }
}

impl Stream for GuardedBody<'_> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(stop) = this.stop.as_mut().poll(cx) {
            this.stopped = Some(stop);
            if this.all_or_nothing() {
                return this.fail(Abort::Stopped(stop));
            }
            this.ended = true;
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let len = chunk.len() as u64;
                if len > this.allowance {
                    let err = (this.overflow)();
                    return this.fail(Abort::Failed(err));
                }
                this.allowance -= len;
                for h in &mut this.hashers {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(err))) => {
                tracing::debug!(error = %err, "request body ended early");
                this.disconnected = true;
                if this.all_or_nothing() {
                    // A cut-off body can never match its checksum, nor be a whole file.
                    let err = match this.expected {
                        Some(_) => Error::ChecksumMismatch,
                        None => Error::IncompleteBody,
                    };
                    return this.fail(Abort::Failed(err));
                }
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(None) => match this.verify() {
                Ok(()) => {
                    this.ended = true;
                    Poll::Ready(None)
                }
                Err(err) => this.fail(Abort::Failed(err)),
            },
        }
    }
}

/// A window of at most `limit` bytes over a guarded body, so a long request can be
/// committed in checkpoints. Chunks crossing the boundary are split.
pub(crate) struct Segment<'g, 'a> {
    body: &'g mut GuardedBody<'a>,
    carry: &'g mut Option<Bytes>,
    left: u64,
}

impl<'g, 'a> Segment<'g, 'a> {
    pub(crate) fn new(
        body: &'g mut GuardedBody<'a>,
        carry: &'g mut Option<Bytes>,
        limit: u64,
    ) -> Self {
        Segment {
            body,
            carry,
            left: limit,
        }
    }
}

impl Stream for Segment<'_, '_> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.left == 0 {
            return Poll::Ready(None);
        }
        let chunk = match this.carry.take() {
            Some(c) => c,
            None => match Pin::new(&mut *this.body).poll_next(cx) {
                Poll::Ready(Some(Ok(c))) => c,
                other => return other,
            },
        };
        let mut chunk = chunk;
        if chunk.len() as u64 > this.left {
            let rest = chunk.split_off(this.left as usize);
            *this.carry = Some(rest);
        }
        this.left -= chunk.len() as u64;
        Poll::Ready(Some(Ok(chunk)))
    }
}
