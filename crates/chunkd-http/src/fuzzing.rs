//! Entry points for fuzzing every parser of client input, one [`Target`] each. A target
//! takes arbitrary bytes, must never panic, and checks what its parser promises (a
//! parsed value re-encodes to itself, a range stays inside its file, a body's framing
//! verdict does not depend on how the body was split into chunks): a broken promise
//! panics, which the fuzzer reports as a crash. `fuzz/` drives these under AFL++; the
//! seeds in `fuzz/corpus` are replayed by this crate's tests.

// Panicking is how a target reports a broken promise.
#![allow(clippy::expect_used)]

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue};

use crate::content_range::header::ContentRange;
use crate::identity::TokenRules;
use crate::ietf::{digest, fields};
use crate::multipart_framing::Framing;
use crate::resumablejs::Dialect;
use crate::resumablejs::params::ChunkParams;
use crate::signed_ids::Signer;
use crate::{disposition, query, range, tus};

/// One parser of client input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// tus `Upload-Metadata`.
    TusMetadata,
    /// tus `Upload-Concat`.
    TusConcat,
    /// tus `Upload-Checksum`.
    TusChecksum,
    /// tus `Upload-Offset` and `Upload-Length`.
    TusNumber,
    /// A request's `Content-Range`.
    ContentRange,
    /// A download's `Range`, against a length taken from the input.
    Range,
    /// IETF structured fields: items, booleans, integers, dictionaries.
    IetfFields,
    /// IETF `Content-Digest`, `Repr-Digest`, `Want-Repr-Digest`.
    IetfDigest,
    /// Resumable.js and Flow.js chunk parameters, from a query string.
    ResumablejsParams,
    /// A multipart body's framing, fed whole and in pieces.
    MultipartFraming,
    /// Signed upload ids.
    SignedId,
    /// Bearer tokens (HS256 JWTs).
    Jwt,
    /// `Content-Disposition` file names and media types.
    Disposition,
}

impl Target {
    /// Every target, in the order the fuzz script runs them.
    pub const ALL: [Target; 13] = [
        Target::TusMetadata,
        Target::TusConcat,
        Target::TusChecksum,
        Target::TusNumber,
        Target::ContentRange,
        Target::Range,
        Target::IetfFields,
        Target::IetfDigest,
        Target::ResumablejsParams,
        Target::MultipartFraming,
        Target::SignedId,
        Target::Jwt,
        Target::Disposition,
    ];

    /// The target's name, as the fuzz binary and the corpus folders spell it.
    pub fn name(self) -> &'static str {
        match self {
            Target::TusMetadata => "tus_metadata",
            Target::TusConcat => "tus_concat",
            Target::TusChecksum => "tus_checksum",
            Target::TusNumber => "tus_number",
            Target::ContentRange => "content_range",
            Target::Range => "range",
            Target::IetfFields => "ietf_fields",
            Target::IetfDigest => "ietf_digest",
            Target::ResumablejsParams => "resumablejs_params",
            Target::MultipartFraming => "multipart_framing",
            Target::SignedId => "signed_id",
            Target::Jwt => "jwt",
            Target::Disposition => "disposition",
        }
    }

    /// The target called `name`.
    pub fn named(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Runs the target on `data`; panics only when a parser breaks its promise.
    pub fn run(self, data: &[u8]) {
        match self {
            Target::MultipartFraming => multipart_framing(data),
            Target::Range => range(data),
            Target::IetfFields => ietf_fields(data),
            Target::IetfDigest => ietf_digest(data),
            text_target => {
                // Header values and query strings reach the parsers as text.
                let Ok(text) = std::str::from_utf8(data) else {
                    return;
                };
                match text_target {
                    Target::TusMetadata => tus_metadata(text),
                    Target::TusConcat => tus_concat(text),
                    Target::TusChecksum => tus_checksum(text),
                    Target::TusNumber => tus_number(text),
                    Target::ContentRange => content_range(text),
                    Target::ResumablejsParams => resumablejs_params(text),
                    Target::SignedId => signed_id(text),
                    Target::Jwt => jwt(text),
                    _ => disposition(text),
                }
            }
        }
    }
}

fn tus_metadata(text: &str) {
    if let Ok(metadata) = tus::headers::parse_metadata(text) {
        let encoded = tus::headers::encode_metadata(&metadata);
        let again = tus::headers::parse_metadata(&encoded).expect("encoded metadata parses");
        assert_eq!(again, metadata, "metadata round trip");
    }
}

fn tus_concat(text: &str) {
    if let Some(tus::headers::UploadConcat::Final(urls)) = tus::headers::parse_concat(text) {
        assert!(!urls.is_empty() && urls.iter().all(|u| !u.is_empty()));
    }
}

fn tus_checksum(text: &str) {
    if let Ok(checksum) = tus::headers::parse_checksum(text) {
        // Whatever its length, comparing it with a computed digest must not panic.
        let _ = checksum.digest.len() == checksum.algorithm.digest_len();
    }
}

fn tus_number(text: &str) {
    if let Some(n) = tus::headers::parse_u64(text) {
        assert!(text.bytes().all(|b| b.is_ascii_digit()), "digits only");
        assert_eq!(text.parse::<u64>().ok(), Some(n));
    }
}

fn content_range(text: &str) {
    if let Some(r) = ContentRange::parse(text) {
        assert!(r.start <= r.end && r.end < r.total);
        let bytes = r.bytes();
        assert_eq!(bytes.end - bytes.start, r.size());
    }
}

/// The first eight bytes are the representation's length, the rest the header.
fn range(data: &[u8]) {
    let (length, header) = split_u64(data);
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    if let range::Ranged::Part(part) = range::parse(Some(header), length) {
        assert!(
            part.start < part.end && part.end <= length,
            "{part:?} of {length}"
        );
    }
}

fn ietf_fields(data: &[u8]) {
    let _ = fields::boolean(data);
    let _ = fields::non_negative(data);
    if let Some(fields::Bare::Bytes(bytes)) = fields::item(data) {
        let encoded = fields::byte_sequence(&bytes);
        assert_eq!(
            fields::item(encoded.as_bytes()),
            Some(fields::Bare::Bytes(bytes)),
            "byte sequence round trip"
        );
    }
    if let Some(members) = fields::dictionary(data) {
        assert!(members.len() <= fields::MAX_MEMBERS);
    }
}

fn ietf_digest(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert("repr-digest", value.clone());
    headers.insert("want-repr-digest", value);
    if let Ok(Some(found)) = digest::Digest::from_headers(&headers, "repr-digest") {
        assert_eq!(found.value.len(), found.algorithm.digest_len());
        let again = digest::Digest::parse_field(&found.field());
        assert_eq!(again, Some(found), "digest round trip");
    }
    let _ = digest::wanted(&headers);
}

fn resumablejs_params(text: &str) {
    let values: HashMap<String, String> = query::pairs(text).into_iter().collect();
    for dialect in [Dialect::Resumable, Dialect::Flow] {
        for params in [
            ChunkParams::parse(dialect, &values),
            ChunkParams::parse_file(dialect, &values),
        ]
        .into_iter()
        .flatten()
        {
            // A valid chunk lies inside its file, and its file has at least one chunk.
            assert!(params.number >= 1 && params.number <= params.total_chunks);
            let end = params.offset().checked_add(params.expected_size());
            assert!(
                end.is_some_and(|e| e <= params.total_size.max(params.expected_size())),
                "{params:?}"
            );
            let _ = params.within(10_000);
        }
    }
}

/// The first byte picks the boundary's length (1 to 70, from the bytes that follow),
/// the next ones where the body is cut into chunks; the rest is the body.
fn multipart_framing(data: &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let len = usize::from(len % 70) + 1;
    if rest.len() < len + 2 {
        return;
    }
    let (boundary, rest) = rest.split_at(len);
    let Ok(boundary) = std::str::from_utf8(boundary) else {
        return;
    };
    let (cuts, body) = rest.split_at(2);
    let step = usize::from(u16::from_le_bytes([cuts[0], cuts[1]])) % 97 + 1;

    let whole = Framing::new(boundary).feed(body);
    let mut framing = Framing::new(boundary);
    let pieces = body.chunks(step).try_for_each(|c| framing.feed(c));
    assert_eq!(whole, pieces, "verdict depends on chunks of {step}");
}

fn signed_id(text: &str) {
    let signer = Signer::new(*b"fuzzing-key-fuzzing-key-fuzzing!");
    for owner in [None, Some("alice")] {
        let _ = signer.verify(owner, text);
    }
    let issued = signer.issue(Some(text));
    assert_eq!(
        signer.verify(Some(text), &issued),
        Ok(()),
        "own id verifies"
    );
}

fn jwt(text: &str) {
    let rules = TokenRules::new(*b"fuzzing-key-fuzzing-key-fuzzing!").expect("long key");
    if let Ok(subject) = rules.verify(text, 1_800_000_000) {
        assert!(!subject.is_empty());
    }
}

fn disposition(text: &str) {
    let Ok(value) = HeaderValue::from_str(text) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_DISPOSITION, value);
    if let Ok(Some(name)) = disposition::clean_filename(disposition::filename(&headers)) {
        assert!(!name.is_empty() && name.len() <= 255 && !name.contains(['/', '\\']));
        // What is served back must be a valid header value whatever the name.
        let served = disposition::attachment(Some(&name));
        assert!(HeaderValue::from_str(&served).is_ok(), "{served:?}");
    }
    let _ = disposition::is_media_type(text);
}

fn split_u64(data: &[u8]) -> (u64, &[u8]) {
    match data.split_first_chunk::<8>() {
        Some((head, rest)) => (u64::from_le_bytes(*head) % (1 << 40), rest),
        None => (0, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn corpus() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
    }

    #[test]
    fn every_target_has_seeds_and_passes_them() {
        for target in Target::ALL {
            assert_eq!(Target::named(target.name()), Some(target));
            let dir = corpus().join(target.name());
            let seeds: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|entry| std::fs::read(entry.expect("entry").path()).expect("seed"))
                .collect();
            assert!(seeds.len() >= 2, "{} has too few seeds", target.name());
            for seed in seeds {
                target.run(&seed);
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_break_no_promise(
            pick in 0..Target::ALL.len(),
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            Target::ALL[pick].run(&data);
        }
    }
}
