//! A request body kept as the chunks it arrived in. A part is gathered from the client's
//! request without copying it into one 8 MiB buffer: no copy, and no large allocations,
//! which the system allocator keeps after a burst of uploads instead of returning them.
//! Cloning it for a retry only counts references.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

#[derive(Clone, Debug, Default)]
pub(crate) struct Chunks {
    chunks: VecDeque<Bytes>,
    len: u64,
}

impl Chunks {
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len() as u64;
            self.chunks.push_back(chunk);
        }
    }

    /// Takes the first `n` bytes (all there are if fewer); a chunk across the cut is
    /// split, sharing its memory.
    pub(crate) fn split_to(&mut self, n: u64) -> Chunks {
        let mut front = Chunks::default();
        while front.len < n {
            let Some(mut chunk) = self.chunks.pop_front() else {
                break;
            };
            let want = n - front.len;
            if chunk.len() as u64 > want {
                let rest = chunk.split_off(want as usize);
                self.chunks.push_front(rest);
            }
            self.len -= chunk.len() as u64;
            front.push(chunk);
        }
        front
    }
}

impl From<Bytes> for Chunks {
    fn from(chunk: Bytes) -> Self {
        let mut chunks = Chunks::default();
        chunks.push(chunk);
        chunks
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let frame = this.chunks.pop_front().map(|chunk| {
            this.len -= chunk.len() as u64;
            Ok(Frame::data(chunk))
        });
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Exact, so the request carries the `Content-Length` S3 requires.
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(pieces: &[&'static [u8]]) -> Chunks {
        let mut chunks = Chunks::default();
        for p in pieces {
            chunks.push(Bytes::from_static(p));
        }
        chunks
    }

    fn bytes(chunks: &Chunks) -> Vec<u8> {
        chunks
            .chunks
            .iter()
            .flat_map(|c| c.iter().copied())
            .collect()
    }

    #[test]
    fn split_cuts_across_chunks_and_keeps_the_rest() {
        let mut chunks = of(&[b"abc", b"", b"defg", b"h"]);
        assert_eq!(chunks.len(), 8);
        let front = chunks.split_to(5);
        assert_eq!(bytes(&front), b"abcde");
        assert_eq!(front.len(), 5);
        assert_eq!(bytes(&chunks), b"fgh");
        assert_eq!(chunks.len(), 3);
        let all = chunks.split_to(10);
        assert_eq!(bytes(&all), b"fgh");
        assert!(chunks.is_empty());
    }

    #[tokio::test]
    async fn a_body_yields_every_byte_with_an_exact_length() {
        use http_body_util::BodyExt;
        let chunks = of(&[b"ab", b"cde"]);
        assert_eq!(chunks.size_hint().exact(), Some(5));
        let collected = chunks.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"abcde");
    }
}
