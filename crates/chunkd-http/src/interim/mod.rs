//! Interim (1xx) responses from handlers, over HTTP/1.1.
//!
//! hyper has no server API for informational responses, so chunkd owns the accept loop
//! ([`serve`]) and wraps every connection's socket. Each HTTP/1.1 request carries an
//! [`Interim`] handle in its extensions; a handler asks it to send, and the bytes go on
//! the wire at once, before the handler has read the request body. HTTP/1.0 clients do
//! not understand 1xx and HTTP/2 frames belong to hyper's codec: those requests carry no
//! handle and simply get no interim responses.

mod first_read;
mod io;
mod leftover;
mod serve;
#[cfg(test)]
mod tests;

use std::future::poll_fn;
use std::sync::Arc;

use axum::extract::Request;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

pub use serve::{ConnectionLimits, serve, serve_with};

/// Sends interim responses for the request it came with.
#[derive(Clone)]
pub struct Interim {
    sink: Arc<dyn io::Sink>,
}

impl std::fmt::Debug for Interim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interim")
    }
}

/// Why an interim response could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum InterimError {
    /// Only 1xx statuses (other than 101) are interim.
    #[error("{0} is not an interim status")]
    NotInterim(StatusCode),
    /// The client's connection is closed.
    #[error("the connection is gone: {0}")]
    Connection(#[from] std::io::Error),
}

impl Interim {
    /// The handle of a request served by [`serve`] over HTTP/1.1, if any.
    pub fn of(req: &Request) -> Option<Interim> {
        req.extensions().get::<Interim>().cloned()
    }

    /// Writes `status` with `headers` and waits until it is on the wire. 101 is not
    /// interim in this sense: it switches protocols.
    pub async fn send(&self, status: StatusCode, headers: &HeaderMap) -> Result<(), InterimError> {
        if !status.is_informational() || status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(InterimError::NotInterim(status));
        }
        let mut message = Some(encode(status, headers));
        poll_fn(|cx| self.sink.poll_send(cx, &mut message)).await?;
        Ok(())
    }
}

fn encode(status: StatusCode, headers: &HeaderMap) -> Bytes {
    let reason = match status.as_u16() {
        104 => "Upload Resumption Supported",
        _ => status.canonical_reason().unwrap_or("Informational"),
    };
    let mut out = BytesMut::with_capacity(64 + headers.len() * 48);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\r\n");
    // `HeaderValue` cannot hold CR or LF, so nothing here can split the message.
    for (name, value) in headers {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.freeze()
}
