//! Checksums of request bodies, computed while the bytes stream through.

use std::fmt;
use std::str::FromStr;

use md5::Md5;
use sha1::{Digest as _, Sha1};
use sha2::{Sha256, Sha512};

/// A digest algorithm a body's checksum can be computed with (tus `Upload-Checksum`,
/// the IETF draft's `Content-Digest`, the digests of form uploads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// MD5, 16 bytes; not collision-resistant, still what many clients send.
    Md5,
    /// SHA-1, 20 bytes; the one algorithm the tus checksum extension requires.
    Sha1,
    /// SHA-256, 32 bytes.
    Sha256,
    /// SHA-512, 64 bytes.
    Sha512,
    /// CRC-32 (IEEE), digest as 4 big-endian bytes.
    Crc32,
}

impl ChecksumAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Md5,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Sha512,
        ChecksumAlgorithm::Crc32,
    ];

    /// The lowercase name protocols use for it (`sha1`), as [`FromStr`] accepts it.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Md5 => "md5",
            ChecksumAlgorithm::Sha1 => "sha1",
            ChecksumAlgorithm::Sha256 => "sha256",
            ChecksumAlgorithm::Sha512 => "sha512",
            ChecksumAlgorithm::Crc32 => "crc32",
        }
    }

    /// How many bytes its digest has, so a malformed checksum is refused before any
    /// hashing.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Md5 => 16,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
            ChecksumAlgorithm::Sha512 => 64,
            ChecksumAlgorithm::Crc32 => 4,
        }
    }

    /// A fresh incremental hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            ChecksumAlgorithm::Md5 => Hasher::Md5(Md5::new()),
            ChecksumAlgorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            ChecksumAlgorithm::Sha512 => Hasher::Sha512(Sha512::new()),
            ChecksumAlgorithm::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
        }
    }
}

/// A checksum algorithm name that is not one of [`ChecksumAlgorithm::ALL`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown checksum algorithm")]
pub struct UnknownAlgorithm;

impl FromStr for ChecksumAlgorithm {
    type Err = UnknownAlgorithm;
    fn from_str(s: &str) -> Result<Self, UnknownAlgorithm> {
        ChecksumAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or(UnknownAlgorithm)
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An expected digest of some bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    /// How `digest` was computed.
    pub algorithm: ChecksumAlgorithm,
    /// The raw digest bytes (not hex or base64), [`ChecksumAlgorithm::digest_len`] long.
    pub digest: Vec<u8>,
}

/// Incremental hasher for any supported algorithm.
#[derive(Clone)]
pub enum Hasher {
    /// Computing MD5.
    Md5(Md5),
    /// Computing SHA-1.
    Sha1(Sha1),
    /// Computing SHA-256.
    Sha256(Sha256),
    /// Computing SHA-512.
    Sha512(Sha512),
    /// Computing CRC-32.
    Crc32(crc32fast::Hasher),
}

impl Hasher {
    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Crc32(h) => h.update(data),
        }
    }

    /// The digest of everything fed, in the raw form [`Checksum::digest`] holds.
    pub fn finalize(self) -> Vec<u8> {
        match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_of_hello_world_matches_the_tus_spec_example() {
        let mut h = ChecksumAlgorithm::Sha1.hasher();
        h.update(b"hello world");
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(h.finalize());
        assert_eq!(b64, "Kq5sNclPz7QV2+lfQIuc6R7oRu0=");
    }

    #[test]
    fn every_algorithm_yields_its_digest_length() {
        for a in ChecksumAlgorithm::ALL {
            let mut h = a.hasher();
            h.update(b"abc");
            assert_eq!(h.finalize().len(), a.digest_len(), "{a}");
        }
    }

    #[test]
    fn parses_names_case_insensitively() {
        assert_eq!("SHA256".parse(), Ok(ChecksumAlgorithm::Sha256));
        assert_eq!("crc32".parse(), Ok(ChecksumAlgorithm::Crc32));
        assert!("blake9".parse::<ChecksumAlgorithm>().is_err());
    }
}
