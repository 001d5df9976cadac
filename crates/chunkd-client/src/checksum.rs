//! Checksums of each chunk: tus's `Upload-Checksum` and the draft's `Content-Digest`.

use std::path::Path;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::error::{Error, Result};

/// A digest algorithm a chunk's checksum can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// SHA-1, the one tus requires of every server with the checksum extension.
    Sha1,
    /// SHA-256, the one the IETF draft's `Content-Digest` shares with chunkd.
    Sha256,
    /// MD5.
    Md5,
}

impl Algorithm {
    /// The name in `Tus-Checksum-Algorithm` and `Upload-Checksum`.
    pub fn tus_name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Md5 => "md5",
        }
    }

    /// The name in a `Content-Digest` field (RFC 9530), where there is one.
    pub fn digest_field_name(self) -> Option<&'static str> {
        match self {
            Algorithm::Sha256 => Some("sha-256"),
            Algorithm::Sha1 | Algorithm::Md5 => None,
        }
    }

    fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Md5 => Hasher::Md5(md5::Md5::new()),
        }
    }

    /// The digest of `len` bytes of `path` from `start`, read in small pieces so a
    /// chunk of any size costs one buffer.
    pub async fn digest_range(self, path: &Path, start: u64, len: u64) -> Result<Vec<u8>> {
        let fail = |e: std::io::Error| Error::file(path, e);
        let mut file = tokio::fs::File::open(path).await.map_err(fail)?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(fail)?;
        let mut reader = file.take(len);
        let mut hasher = self.hasher();
        let mut buffer = vec![0; 64 * 1024];
        let mut read = 0u64;
        loop {
            let n = reader.read(&mut buffer).await.map_err(fail)?;
            if n == 0 {
                break;
            }
            read += n as u64;
            hasher.update(&buffer[..n]);
        }
        if read != len {
            return Err(Error::file(
                path,
                "the file shrank while it was being uploaded",
            ));
        }
        Ok(hasher.finish())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sha1" | "sha-1" => Ok(Algorithm::Sha1),
            "sha256" | "sha-256" => Ok(Algorithm::Sha256),
            "md5" => Ok(Algorithm::Md5),
            other => Err(Error::Invalid(format!(
                "checksum algorithm {other:?}: sha1, sha256 or md5"
            ))),
        }
    }
}

enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Md5(md5::Md5),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
        }
    }
}

/// `Upload-Checksum: <algorithm> <base64>`.
pub(crate) fn tus_header(algorithm: Algorithm, digest: &[u8]) -> String {
    format!("{} {}", algorithm.tus_name(), STANDARD.encode(digest))
}

/// `Content-Digest: sha-256=:<base64>:`, where the algorithm has a field name.
pub(crate) fn digest_field(algorithm: Algorithm, digest: &[u8]) -> Option<String> {
    Some(format!(
        "{}=:{}:",
        algorithm.digest_field_name()?,
        STANDARD.encode(digest)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn digests_a_range_of_a_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("f");
        std::fs::write(&path, b"xxhello worldyy").unwrap_or_else(|e| panic!("{e}"));
        let digest = Algorithm::Sha1
            .digest_range(&path, 2, 11)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // The tus specification's example.
        assert_eq!(
            tus_header(Algorithm::Sha1, &digest),
            "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="
        );
        assert!(Algorithm::Md5.digest_range(&path, 10, 10).await.is_err());
    }

    #[test]
    fn parses_names() {
        assert_eq!("SHA256".parse::<Algorithm>().ok(), Some(Algorithm::Sha256));
        assert_eq!("sha-1".parse::<Algorithm>().ok(), Some(Algorithm::Sha1));
        assert!("crc32".parse::<Algorithm>().is_err());
    }
}
