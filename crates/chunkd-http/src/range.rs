//! `Range: bytes=...` requests on finished uploads (RFC 9110 §14).

use std::ops::Range;

/// What to serve for a `Range` header value against a representation of `length` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranged {
    /// Serve everything (no header, a syntax we ignore, or several ranges).
    Full,
    /// Serve this part with 206.
    Part(Range<u64>),
    /// 416 with `Content-Range: bytes */length`.
    Unsatisfiable,
}

/// What to serve for a request's `Range` value (when sent) against `length` bytes.
pub fn parse(header: Option<&str>, length: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranged::Full;
    };
    if spec.contains(',') {
        return Ranged::Full;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ranged::Full;
    };
    let digits = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (start.trim(), end.trim()) {
        ("", suffix) => match digits(suffix) {
            // Nothing to serve a suffix of: RFC 9110 §14.1.1 calls that unsatisfiable.
            Some(0) => Ranged::Unsatisfiable,
            Some(_) if length == 0 => Ranged::Unsatisfiable,
            Some(n) => Ranged::Part(length.saturating_sub(n)..length),
            None => Ranged::Full,
        },
        (start, end) => {
            let Some(start) = digits(start) else {
                return Ranged::Full;
            };
            let end = match end {
                "" => length.saturating_sub(1),
                e => match digits(e) {
                    Some(e) if e >= start => e.min(length.saturating_sub(1)),
                    _ => return Ranged::Full,
                },
            };
            if start >= length {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(start..end + 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(parse(Some("bytes=0-99"), 1000), Ranged::Part(0..100));
        assert_eq!(parse(Some("bytes=900-"), 1000), Ranged::Part(900..1000));
        assert_eq!(parse(Some("bytes=-10"), 1000), Ranged::Part(990..1000));
        assert_eq!(parse(Some("bytes=990-5000"), 1000), Ranged::Part(990..1000));
        assert_eq!(parse(Some("bytes=1000-"), 1000), Ranged::Unsatisfiable);
        assert_eq!(parse(Some("bytes=5-2"), 1000), Ranged::Full);
        assert_eq!(parse(Some("bytes=0-1,5-6"), 1000), Ranged::Full);
        assert_eq!(parse(Some("items=0-1"), 1000), Ranged::Full);
        assert_eq!(parse(None, 1000), Ranged::Full);
    }

    #[test]
    fn an_empty_representation_has_no_part() {
        for h in ["bytes=-5", "bytes=0-", "bytes=0-0", "bytes=-1"] {
            assert_eq!(parse(Some(h), 0), Ranged::Unsatisfiable, "{h}");
        }
        assert_eq!(parse(None, 0), Ranged::Full);
    }

    proptest! {
        #[test]
        fn parts_always_lie_within_the_representation(
            h in "bytes=[0-9-]{0,24}",
            len in prop_oneof![0u64..4, 0u64..u64::MAX],
        ) {
            if let Ranged::Part(r) = parse(Some(&h), len) {
                prop_assert!(r.start < r.end);
                prop_assert!(r.end <= len);
            }
        }
    }
}
