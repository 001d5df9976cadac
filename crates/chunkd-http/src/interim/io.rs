//! A connection's byte stream, shared by hyper and by the handlers that send interim
//! responses on it.
//!
//! hyper writes a response only after the handler returns, so while a handler runs the
//! socket carries nothing of the current exchange. The one thing to respect is hyper's
//! own unfinished output: the previous response may still sit in its write buffer, and a
//! `100 Continue` may be half written. hyper calls `poll_flush` on the socket only once its
//! buffer is empty, so "flushed since the last write" means "at a message boundary", and
//! that is the only moment an interim response is put on the wire. Once queued, interim
//! bytes go out before anything hyper writes next.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The socket as hyper sees it.
pub(crate) struct InterimIo<T> {
    shared: Arc<Mutex<Shared<T>>>,
}

struct Shared<T> {
    io: T,
    /// Interim bytes queued at a boundary and not yet written.
    pending: Bytes,
    /// Everything hyper wrote has been flushed.
    at_boundary: bool,
    /// The write side failed or was shut down: interim responses are pointless now.
    closed: bool,
    /// Tasks waiting for a boundary or for the socket.
    waiters: Vec<Waker>,
}

impl<T> Shared<T> {
    fn park(&mut self, waker: &Waker) {
        if !self.waiters.iter().any(|w| w.will_wake(waker)) {
            self.waiters.push(waker.clone());
        }
    }

    fn wake_all(&mut self) {
        for waker in self.waiters.drain(..) {
            waker.wake();
        }
    }
}

impl<T: AsyncWrite + Unpin> Shared<T> {
    /// Writes queued interim bytes; `Ready(Ok)` once none are left.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending.has_remaining() {
            match Pin::new(&mut self.io).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => {
                    self.fail();
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.pending.advance(n),
                Poll::Ready(Err(e)) => {
                    self.fail();
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    self.park(cx.waker());
                    return Poll::Pending;
                }
            }
        }
        self.wake_all();
        Poll::Ready(Ok(()))
    }

    fn fail(&mut self) {
        self.closed = true;
        self.pending.clear();
        self.wake_all();
    }
}

/// The handlers' side: queues one complete interim response.
pub(crate) trait Sink: Send + Sync {
    /// Queues `message` (taking it) at the next boundary and writes it out.
    fn poll_send(&self, cx: &mut Context<'_>, message: &mut Option<Bytes>) -> Poll<io::Result<()>>;
}

impl<T: AsyncWrite + Unpin + Send + 'static> InterimIo<T> {
    /// The socket for hyper, and the handle through which interim responses reach it.
    pub(crate) fn new(io: T) -> (Self, Arc<dyn Sink>) {
        let shared = Arc::new(Mutex::new(Shared {
            io,
            pending: Bytes::new(),
            at_boundary: true,
            closed: false,
            waiters: Vec::new(),
        }));
        (
            InterimIo {
                shared: shared.clone(),
            },
            shared,
        )
    }
}

fn lock<T>(shared: &Mutex<Shared<T>>) -> MutexGuard<'_, Shared<T>> {
    // A panic while holding the lock leaves plain bytes and flags behind; carry on.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T: AsyncWrite + Unpin + Send> Sink for Mutex<Shared<T>> {
    fn poll_send(&self, cx: &mut Context<'_>, message: &mut Option<Bytes>) -> Poll<io::Result<()>> {
        let mut shared = lock(self);
        if shared.closed {
            message.take();
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if message.is_some() {
            if !shared.at_boundary || shared.pending.has_remaining() {
                shared.park(cx.waker());
                return Poll::Pending;
            }
            shared.pending = message.take().unwrap_or_default();
        }
        // Whoever polls next writes the queued bytes, this sender or hyper.
        std::task::ready!(shared.drain(cx))?;
        let flushed = Pin::new(&mut shared.io).poll_flush(cx);
        if flushed.is_pending() {
            shared.park(cx.waker());
        }
        flushed
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for InterimIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut lock(&self.shared).io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for InterimIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.shared);
        shared.at_boundary = false;
        std::task::ready!(shared.drain(cx))?;
        Pin::new(&mut shared.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.shared);
        shared.at_boundary = false;
        std::task::ready!(shared.drain(cx))?;
        Pin::new(&mut shared.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        lock(&self.shared).io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.shared);
        std::task::ready!(shared.drain(cx))?;
        let flushed = Pin::new(&mut shared.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            // hyper flushes only with an empty buffer: a boundary.
            shared.at_boundary = true;
            shared.wake_all();
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.shared);
        std::task::ready!(shared.drain(cx))?;
        let done = Pin::new(&mut shared.io).poll_shutdown(cx);
        if done.is_ready() {
            shared.closed = true;
            shared.wake_all();
        }
        done
    }
}
