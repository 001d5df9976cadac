//! Upload identifiers: validated before they ever reach a store or a filesystem path.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest identifier accepted; generated ones are 32 characters.
pub const MAX_ID_LEN: usize = 64;

/// An upload identifier made only of ASCII letters, digits, `-` and `_` (1 to 64 chars),
/// so it is safe as a file name, an object key and a URL path segment.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UploadId(String);

/// A string that is not a valid [`UploadId`] (empty, too long, or other characters).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid upload id")]
pub struct InvalidId;

impl UploadId {
    /// A fresh random identifier (128 bits from the OS, hex encoded).
    pub fn generate() -> Self {
        let mut raw = [0u8; 16];
        // The OS RNG failing is unrecoverable for id generation; fall back to time+counter
        // entropy rather than panicking, so ids stay unique within the process.
        if getrandom::fill(&mut raw).is_err() {
            fallback_entropy(&mut raw);
        }
        let mut s = String::with_capacity(32);
        for b in raw {
            s.push_str(&format!("{b:02x}"));
        }
        UploadId(s)
    }

    /// The identifier as text, as it appears in URLs and file names.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn fallback_entropy(raw: &mut [u8; 16]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    raw[..8].copy_from_slice(&nanos.to_le_bytes());
    raw[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
}

impl FromStr for UploadId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(UploadId(s.to_owned()))
        } else {
            Err(InvalidId)
        }
    }
}

impl TryFrom<String> for UploadId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        s.parse()
    }
}

impl From<UploadId> for String {
    fn from(id: UploadId) -> String {
        id.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UploadId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = UploadId::generate();
        let b = UploadId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert_eq!(a.as_str().parse::<UploadId>(), Ok(a.clone()));
    }

    #[test]
    fn rejects_path_characters() {
        for bad in [
            "",
            "..",
            "a/b",
            "a\\b",
            "a\0b",
            "a.b",
            "%2e%2e",
            &"x".repeat(65),
        ] {
            assert!(bad.parse::<UploadId>().is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn accepted_ids_never_contain_path_syntax(s in ".{0,80}") {
            if let Ok(id) = s.parse::<UploadId>() {
                prop_assert!(!id.as_str().contains('/'));
                prop_assert!(!id.as_str().contains('.'));
                prop_assert!(!id.as_str().contains('\0'));
                prop_assert!(id.as_str().len() <= MAX_ID_LEN);
            }
        }
    }
}
