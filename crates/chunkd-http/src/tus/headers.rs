//! tus request headers, parsed strictly: anything malformed is a 400, never a panic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chunkd_core::{Checksum, ChecksumAlgorithm, Metadata};

/// A non-negative decimal integer as tus requires (no sign, no spaces, no overflow).
pub fn parse_u64(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Why an `Upload-Metadata` header is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// A pair that is not `key` or `key base64value`, or a bad key.
    #[error("malformed Upload-Metadata pair")]
    Malformed,
    /// A value that is not base64.
    #[error("Upload-Metadata value is not valid base64")]
    Base64,
    /// A key given twice.
    #[error("duplicate Upload-Metadata key")]
    DuplicateKey,
}

/// `key base64value,key2,key3 base64value3` (tus 1.0 §Upload-Metadata).
pub fn parse_metadata(header: &str) -> Result<Metadata, MetadataError> {
    let mut metadata = Metadata::new();
    for element in header.split(',') {
        let element = element.trim();
        if element.is_empty() {
            continue;
        }
        let mut parts = element.split(' ');
        let key = parts.next().unwrap_or_default();
        let value = parts.next();
        if parts.next().is_some() || !valid_key(key) {
            return Err(MetadataError::Malformed);
        }
        let value = match value {
            None | Some("") => Vec::new(),
            Some(v) => STANDARD.decode(v).map_err(|_| MetadataError::Base64)?,
        };
        if !metadata.try_insert(key, value) {
            return Err(MetadataError::DuplicateKey);
        }
    }
    Ok(metadata)
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 1024 && key.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

/// Metadata as an `Upload-Metadata` value (keys without value stand alone).
pub fn encode_metadata(metadata: &Metadata) -> String {
    metadata
        .iter()
        .map(|(k, v)| match v.is_empty() {
            true => k.to_owned(),
            false => format!("{k} {}", STANDARD.encode(v)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `Upload-Concat` as sent on creation.
#[derive(Debug, PartialEq, Eq)]
pub enum UploadConcat<'a> {
    /// A part of an upload to be concatenated later.
    Partial,
    /// The listed upload URLs, absolute or relative, in order.
    Final(Vec<&'a str>),
}

/// `partial` or `final;<url> <url>...`; `None` for anything else.
pub fn parse_concat(header: &str) -> Option<UploadConcat<'_>> {
    let header = header.trim();
    if header == "partial" {
        return Some(UploadConcat::Partial);
    }
    let urls: Vec<&str> = header.strip_prefix("final;")?.split_whitespace().collect();
    if urls.is_empty() {
        return None;
    }
    Some(UploadConcat::Final(urls))
}

/// Why an `Upload-Checksum` header is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    /// An algorithm this server does not compute (tus: 400).
    #[error("unsupported checksum algorithm")]
    UnknownAlgorithm,
    /// Not `<algorithm> <base64 digest>`.
    #[error("malformed Upload-Checksum")]
    Malformed,
}

/// `Upload-Checksum: <algorithm> <base64 digest>`.
pub fn parse_checksum(header: &str) -> Result<Checksum, ChecksumError> {
    let (name, digest) = header
        .trim()
        .split_once(' ')
        .ok_or(ChecksumError::Malformed)?;
    let algorithm: ChecksumAlgorithm = name.parse().map_err(|_| ChecksumError::UnknownAlgorithm)?;
    let digest = STANDARD
        .decode(digest.trim())
        .map_err(|_| ChecksumError::Malformed)?;
    // A digest of the wrong length for its algorithm is well-formed and can never match:
    // tus calls that a mismatch (460), found when the bytes are compared.
    Ok(Checksum { algorithm, digest })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_spec_example() {
        let m = parse_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential")
            .expect("parse");
        assert_eq!(m.text("filename"), Some("world_domination_plan.pdf"));
        assert_eq!(m.get("is_confidential"), Some(&b""[..]));
    }

    #[test]
    fn rejects_bad_metadata() {
        assert_eq!(parse_metadata("a !!!"), Err(MetadataError::Base64));
        assert_eq!(
            parse_metadata("a YQ==,a YQ=="),
            Err(MetadataError::DuplicateKey)
        );
        assert_eq!(parse_metadata("a YQ== YQ=="), Err(MetadataError::Malformed));
        assert_eq!(
            parse_metadata("k\u{1}ey YQ=="),
            Err(MetadataError::Malformed)
        );
        assert!(parse_metadata("").expect("empty").is_empty());
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1.0",
            "18446744073709551616",
            "0x10",
            "1e3",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_concat() {
        assert_eq!(parse_concat("partial"), Some(UploadConcat::Partial));
        assert_eq!(
            parse_concat("final;/files/a http://x/files/b"),
            Some(UploadConcat::Final(vec!["/files/a", "http://x/files/b"]))
        );
        assert_eq!(parse_concat("final;"), None);
        assert_eq!(parse_concat("final; "), None);
        assert_eq!(parse_concat("whole"), None);
    }

    #[test]
    fn parses_checksums() {
        let c = parse_checksum("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").expect("sha1");
        assert_eq!(c.algorithm, ChecksumAlgorithm::Sha1);
        assert_eq!(
            parse_checksum("blake3 AAAA"),
            Err(ChecksumError::UnknownAlgorithm)
        );
        assert_eq!(parse_checksum("sha1 AAAA").map(|c| c.digest.len()), Ok(3));
        assert_eq!(parse_checksum("sha1"), Err(ChecksumError::Malformed));
    }

    fn metadata_strategy() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
        proptest::collection::vec(
            (
                "[a-zA-Z0-9_.-]{1,12}",
                proptest::collection::vec(any::<u8>(), 0..40),
            ),
            0..6,
        )
    }

    proptest! {
        #[test]
        fn metadata_round_trips(pairs in metadata_strategy()) {
            let mut m = Metadata::new();
            for (k, v) in pairs {
                m.insert(k, v);
            }
            prop_assert_eq!(parse_metadata(&encode_metadata(&m)), Ok(m));
        }

        #[test]
        fn metadata_parser_never_panics(s in ".{0,200}") {
            let _ = parse_metadata(&s);
        }

        #[test]
        fn u64_parser_agrees_with_decimal(n in any::<u64>()) {
            prop_assert_eq!(parse_u64(&n.to_string()), Some(n));
            prop_assert_eq!(parse_u64(&format!("-{n}")), None);
        }

        #[test]
        fn concat_and_checksum_parsers_never_panic(s in ".{0,120}") {
            let _ = parse_concat(&s);
            let _ = parse_checksum(&s);
        }
    }
}
