//! `Content-Range: bytes S-E/T` on a request (end inclusive), parsed strictly as the
//! Django chunked-upload family does: `^bytes (\d+)-(\d+)/(\d+)$` with `S <= E < T`.

use std::ops::Range;

/// A parsed request `Content-Range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    /// First byte of the chunk.
    pub start: u64,
    /// Inclusive.
    pub end: u64,
    /// The whole file's length.
    pub total: u64,
}

impl ContentRange {
    /// `None` unless the value is exactly `bytes S-E/T` with `S <= E < T`.
    pub fn parse(header: &str) -> Option<Self> {
        let rest = header.strip_prefix("bytes ")?;
        let (span, total) = rest.split_once('/')?;
        let (start, end) = span.split_once('-')?;
        let number = |s: &str| -> Option<u64> {
            if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let range = ContentRange {
            start: number(start)?,
            end: number(end)?,
            total: number(total)?,
        };
        (range.start <= range.end && range.end < range.total).then_some(range)
    }

    /// Bytes in this chunk.
    pub fn size(&self) -> u64 {
        self.end - self.start + 1
    }

    /// The chunk's bytes as a half-open range.
    pub fn bytes(&self) -> Range<u64> {
        self.start..self.end + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_blueimp_ranges() {
        let r = ContentRange::parse("bytes 0-1048575/3145728").expect("valid");
        assert_eq!(
            (r.start, r.end, r.total, r.size()),
            (0, 1_048_575, 3_145_728, 1_048_576)
        );
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "bytes 5-4/10",
            "bytes 0-10/10",
            "bytes */10",
            "bytes 0-1/*",
            "bytes  0-1/10",
            "bytes=0-1/10",
            "bytes -1-2/10",
            "bytes 0-1/10 ",
            "bytes 0-99999999999999999999999/1",
            "",
        ] {
            assert_eq!(ContentRange::parse(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn accepted_ranges_lie_within_the_total(s in "bytes [0-9]{1,6}-[0-9]{1,6}/[0-9]{1,6}") {
            if let Some(r) = ContentRange::parse(&s) {
                prop_assert!(r.size() >= 1 && r.end < r.total);
            }
        }

        #[test]
        fn round_trips(start in 0u64..1 << 40, len in 1u64..1 << 30, extra in 0u64..1 << 30) {
            let total = start + len + extra;
            let header = format!("bytes {}-{}/{}", start, start + len - 1, total);
            prop_assert_eq!(ContentRange::parse(&header), Some(ContentRange { start, end: start + len - 1, total }));
        }

        #[test]
        fn never_panics(s in ".{0,60}") {
            let _ = ContentRange::parse(&s);
        }
    }
}
