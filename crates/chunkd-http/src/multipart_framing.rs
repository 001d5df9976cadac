//! Bounds on a multipart body's framing. The parser buffers whatever comes before the
//! first boundary, and a part's headers until their blank line: a client sending
//! megabytes of either would cost that much memory. Bodies are watched on their way to
//! the parser (file data still streams through untouched), and a preamble or part
//! header block past its bound ends the body with an error, which the parser reports
//! as the 400 every front end answers a malformed form with.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use bytes::Bytes;
use futures::StreamExt;
use http::header;
use memchr::memmem::Finder;

/// Bytes before the first boundary (browsers send none).
pub(crate) const MAX_PREAMBLE: usize = 16 << 10;
/// Bytes of one part's headers (a disposition and a type: well under 1 KiB).
pub(crate) const MAX_PART_HEADERS: usize = 16 << 10;

/// The request's multipart form, with its framing bounded.
pub(crate) async fn multipart(
    req: Request,
) -> Result<Multipart, axum::extract::multipart::MultipartRejection> {
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(boundary_of);
    let req = match boundary {
        Some(boundary) => {
            let (parts, body) = req.into_parts();
            let mut framing = Framing::new(&boundary);
            let watched = body.into_data_stream().map(move |item| {
                let chunk = item.map_err(std::io::Error::other)?;
                framing.feed(&chunk).map_err(std::io::Error::other)?;
                Ok::<Bytes, std::io::Error>(chunk)
            });
            Request::from_parts(parts, Body::from_stream(watched))
        }
        // The parser refuses it with its own message.
        None => req,
    };
    Multipart::from_request(req, &()).await
}

/// `boundary=` of a `multipart/form-data` type, unquoted.
fn boundary_of(content_type: &str) -> Option<String> {
    content_type
        .split(';')
        .skip(1)
        .find_map(|param| {
            let (name, value) = param.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| value.trim().trim_matches('"').to_owned())
        })
        .filter(|b| !b.is_empty() && b.len() <= 200)
}

enum Stage {
    /// Before the first delimiter; this many bytes so far.
    Preamble(usize),
    /// A part's headers, until their blank line; this many bytes so far.
    Headers(usize),
    /// A part's content, until the next delimiter.
    Content,
}

/// Where a body stands in its framing, fed chunk by chunk.
pub(crate) struct Framing {
    /// `--boundary`: the first delimiter may open the body.
    first: Finder<'static>,
    /// `\r\n--boundary`: every later one follows a line break.
    next: Finder<'static>,
    blank_line: Finder<'static>,
    stage: Stage,
    /// The end of the previous chunk, where a delimiter may have begun.
    carry: Vec<u8>,
}

impl Framing {
    pub(crate) fn new(boundary: &str) -> Self {
        Framing {
            first: Finder::new(format!("--{boundary}").as_bytes()).into_owned(),
            next: Finder::new(format!("\r\n--{boundary}").as_bytes()).into_owned(),
            blank_line: Finder::new(b"\r\n\r\n").into_owned(),
            stage: Stage::Preamble(0),
            carry: Vec::new(),
        }
    }

    /// What the current stage ends at.
    fn finder(&self) -> &Finder<'static> {
        match self.stage {
            Stage::Preamble(_) => &self.first,
            Stage::Headers(_) => &self.blank_line,
            Stage::Content => &self.next,
        }
    }

    /// Counts `counted` more bytes in the current stage, and moves to the next stage
    /// when its end was `found`; an error once a bound is passed.
    fn advance(&mut self, counted: usize, found: bool) -> Result<(), &'static str> {
        self.stage = match self.stage {
            Stage::Preamble(n) if n + counted > MAX_PREAMBLE => {
                return Err("multipart preamble over 16 KiB");
            }
            Stage::Headers(n) if n + counted > MAX_PART_HEADERS => {
                return Err("multipart part headers over 16 KiB");
            }
            Stage::Preamble(_) | Stage::Content if found => Stage::Headers(0),
            Stage::Headers(_) if found => Stage::Content,
            Stage::Preamble(n) => Stage::Preamble(n + counted),
            Stage::Headers(n) => Stage::Headers(n + counted),
            Stage::Content => Stage::Content,
        };
        Ok(())
    }

    /// Follows `chunk`; an error once a preamble or a part's headers pass their bound.
    /// Each byte is counted once: the few kept back (a delimiter may begin there) are
    /// counted with the next chunk. The chunk itself is never copied: only a match that
    /// begins in those kept bytes is looked for in a small window across the seam.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<(), &'static str> {
        if self.carry.is_empty() {
            return self.scan(chunk);
        }
        let carried = std::mem::take(&mut self.carry);
        let needle = self.finder().needle().len();
        if chunk.len() < needle - 1 {
            // Too short to settle the kept bytes: scan them with it (both are small).
            return self.scan(&[carried.as_slice(), chunk].concat());
        }
        let window = [carried.as_slice(), &chunk[..needle - 1]].concat();
        match self.finder().find(&window) {
            // A match across the seam; one wholly in the chunk is found by the scan.
            Some(found) if found < carried.len() => {
                self.advance(found, true)?;
                self.scan(&chunk[found + needle - carried.len()..])
            }
            _ => {
                self.advance(carried.len(), false)?;
                self.scan(chunk)
            }
        }
    }

    /// [`feed`](Self::feed) for bytes with nothing kept before them.
    fn scan(&mut self, buf: &[u8]) -> Result<(), &'static str> {
        let mut at = 0;
        loop {
            let finder = self.finder();
            let needle = finder.needle().len();
            let rest = &buf[at..];
            let (counted, found) = match finder.find(rest) {
                Some(found) => (found, true),
                None => (rest.len() - rest.len().min(needle - 1), false),
            };
            self.advance(counted, found)?;
            if !found {
                self.carry = rest[counted..].to_vec();
                return Ok(());
            }
            at += counted + needle;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(boundary: &str, body: &[u8], chunk: usize) -> Result<(), &'static str> {
        let mut framing = Framing::new(boundary);
        body.chunks(chunk.max(1)).try_for_each(|c| framing.feed(c))
    }

    fn form(preamble: usize, header_pad: usize, content: usize) -> Vec<u8> {
        let mut body = vec![b'p'; preamble];
        body.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\nX-Pad: ",
        );
        body.extend(std::iter::repeat_n(b'h', header_pad));
        body.extend_from_slice(b"\r\n\r\n");
        body.extend(std::iter::repeat_n(b'c', content));
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        body
    }

    #[test]
    fn ordinary_forms_pass_in_any_chunking() {
        // Content far larger than both bounds is not framing.
        let body = form(0, 10, 100_000);
        for chunk in [1, 2, 7, 64, 4096, body.len()] {
            assert_eq!(fed("XyZ", &body, chunk), Ok(()), "chunks of {chunk}");
        }
        // Content that holds the boundary text, though not after a line break.
        let mut tricky = form(0, 0, 1000);
        tricky.splice(300..300, b"--XyZ".iter().copied());
        assert_eq!(fed("XyZ", &tricky, 3), Ok(()));
    }

    #[test]
    fn a_long_preamble_or_header_block_is_refused_in_any_chunking() {
        for chunk in [1, 5, 4096, 1 << 20] {
            assert!(
                fed("XyZ", &form(MAX_PREAMBLE + 1, 0, 0), chunk).is_err(),
                "{chunk}"
            );
            assert!(
                fed("XyZ", &form(0, MAX_PART_HEADERS, 0), chunk).is_err(),
                "{chunk}"
            );
            assert_eq!(
                fed("XyZ", &form(MAX_PREAMBLE - 10, 100, 0), chunk),
                Ok(()),
                "{chunk}"
            );
        }
        // A body that never names its boundary is refused once past the bound.
        assert!(fed("XyZ", &vec![b'x'; 30 << 20], 65536).is_err());
    }

    #[test]
    fn boundaries_are_read_as_browsers_and_curl_send_them() {
        assert_eq!(
            boundary_of("multipart/form-data; boundary=----WebKitFormBoundaryX").as_deref(),
            Some("----WebKitFormBoundaryX")
        );
        assert_eq!(
            boundary_of("multipart/form-data; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary_of("multipart/form-data"), None);
    }
}
