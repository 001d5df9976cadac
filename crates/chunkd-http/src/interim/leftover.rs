//! What a handler left unread of an HTTP/1.1 request body. A refusal is often answered
//! before the body is read (a tus 409, a drf 400 for a stale chunk); hyper then closes
//! the connection, and a client that pools connections fails its next request on it.
//! So, as Go's server does, a small rest is read and dropped (the connection stays
//! usable), and a large or slow one makes the answer say `Connection: close`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

/// How much of an unread body is read to keep the connection (Go reads 256 KiB).
pub(crate) const DRAIN_LIMIT: u64 = 256 << 10;
/// How long reading it may take before the connection is given up instead.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Where a request body is, once the handler is done with it.
struct Shared<B> {
    /// Read to its end.
    ended: bool,
    /// Dropped unread by the handler, handed back for draining.
    returned: Option<B>,
}

/// The request body as the handler sees it.
pub(crate) struct Tracked<B> {
    inner: Option<B>,
    shared: Arc<Mutex<Shared<B>>>,
}

/// The server's side: asked once the response is made.
pub(crate) struct Leftover<B> {
    shared: Arc<Mutex<Shared<B>>>,
}

pub(crate) fn track<B: Body + Unpin>(body: B) -> (Tracked<B>, Leftover<B>) {
    let shared = Arc::new(Mutex::new(Shared {
        ended: body.is_end_stream(),
        returned: None,
    }));
    let tracked = Tracked {
        inner: Some(body),
        shared: shared.clone(),
    };
    (tracked, Leftover { shared })
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *inner).poll_frame(cx);
        let ended = matches!(polled, Poll::Ready(None)) || inner.is_end_stream();
        if ended && let Ok(mut shared) = self.shared.lock() {
            shared.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        if let (Some(inner), Ok(mut shared)) = (self.inner.take(), self.shared.lock())
            && !shared.ended
        {
            shared.returned = Some(inner);
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Leftover<B> {
    /// Reads what the handler left of the body, up to [`DRAIN_LIMIT`] within
    /// [`DRAIN_TIME`]; when the body did not end, `response` says `Connection: close`.
    pub(crate) async fn settle<T>(self, response: &mut Response<T>) {
        let (ended, returned) = match self.shared.lock() {
            Ok(mut shared) => (shared.ended, shared.returned.take()),
            Err(_) => (false, None),
        };
        if ended {
            return;
        }
        // A body the handler still holds (or one too large) cannot be waited for.
        let drained = match returned {
            Some(body) => tokio::time::timeout(DRAIN_TIME, drain(body))
                .await
                .unwrap_or(false),
            None => false,
        };
        if !drained {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

/// Whether `body` ended within [`DRAIN_LIMIT`] bytes.
async fn drain<B: Body<Data = Bytes> + Unpin>(mut body: B) -> bool {
    let mut read = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return false;
        };
        if let Some(data) = frame.data_ref() {
            read += data.len() as u64;
            if read > DRAIN_LIMIT {
                return false;
            }
        }
    }
    true
}
