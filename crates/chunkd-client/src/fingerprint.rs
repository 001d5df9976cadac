//! Which local file an upload is of: its canonical path, size, modification time and a
//! hash of its first and last 64 KiB, with the endpoint and protocol. A file whose size
//! or modification time changed, or whose first or last 64 KiB did, gets another
//! fingerprint and so a new upload. Nothing else is read: an edit in place between
//! those samples that keeps the size and the modification time (restored with
//! `touch -d`, or on a filesystem with coarse times) is not noticed, and resumes into
//! the old upload.

use std::fmt;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

const SAMPLE: u64 = 64 * 1024;

/// A file as it stands now: what the fingerprint covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileFacts {
    /// The canonical (absolute, symlinks resolved) path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, in nanoseconds since the epoch.
    pub modified: u128,
}

impl FileFacts {
    /// Looks at `path` (a regular file).
    pub fn of(path: &Path) -> Result<FileFacts> {
        let canonical = std::fs::canonicalize(path).map_err(|e| Error::file(path, e))?;
        let meta = std::fs::metadata(&canonical).map_err(|e| Error::file(path, e))?;
        if !meta.is_file() {
            return Err(Error::file(path, "not a regular file"));
        }
        let modified = meta
            .modified()
            .unwrap_or(SystemTime::UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(FileFacts {
            path: canonical,
            size: meta.len(),
            modified,
        })
    }
}

/// The hex SHA-256 naming one file's upload to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of the file `facts` describes, uploaded to `endpoint` with
    /// `protocol`; reads at most 128 KiB of it.
    pub fn of(facts: &FileFacts, endpoint: &str, protocol: &str) -> Result<Fingerprint> {
        let fail = |e: std::io::Error| Error::file(&facts.path, e);
        let mut hash = Sha256::new();
        hash.update(b"chunkd-upload fingerprint 1\0");
        hash.update(facts.path.as_os_str().as_encoded_bytes());
        hash.update(b"\0");
        hash.update(facts.size.to_le_bytes());
        hash.update(facts.modified.to_le_bytes());
        hash.update(endpoint.as_bytes());
        hash.update(b"\0");
        hash.update(protocol.as_bytes());
        hash.update(b"\0");
        let mut file = std::fs::File::open(&facts.path).map_err(fail)?;
        let mut buffer = Vec::with_capacity(SAMPLE as usize);
        (&mut file)
            .take(SAMPLE)
            .read_to_end(&mut buffer)
            .map_err(fail)?;
        hash.update(&buffer);
        if facts.size > SAMPLE {
            buffer.clear();
            file.seek(SeekFrom::Start(
                facts.size.saturating_sub(SAMPLE).max(SAMPLE),
            ))
            .map_err(fail)?;
            file.take(SAMPLE).read_to_end(&mut buffer).map_err(fail)?;
            hash.update(&buffer);
        }
        let digest = hash.finalize();
        Ok(Fingerprint(
            digest.iter().map(|b| format!("{b:02x}")).collect(),
        ))
    }

    /// The fingerprint as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn from_stored(text: String) -> Fingerprint {
        Fingerprint(text)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(path: &Path, endpoint: &str) -> Fingerprint {
        let facts = FileFacts::of(path).unwrap_or_else(|e| panic!("{e}"));
        Fingerprint::of(&facts, endpoint, "tus").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn same_file_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 300_000]).unwrap_or_else(|e| panic!("{e}"));
        let a = fingerprint(&path, "http://h/files/");
        assert_eq!(
            a,
            fingerprint(&dir.path().join(".").join("f"), "http://h/files/")
        );
        assert_ne!(a, fingerprint(&path, "http://other/files/"));
    }

    #[test]
    fn changed_content_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("f");
        let mut data = vec![7u8; 300_000];
        std::fs::write(&path, &data).unwrap_or_else(|e| panic!("{e}"));
        let facts = FileFacts::of(&path).unwrap_or_else(|e| panic!("{e}"));
        let before = Fingerprint::of(&facts, "e", "tus").unwrap_or_else(|e| panic!("{e}"));
        // Same size, last byte changed; the recorded mtime is kept to show the sample
        // hash alone tells the files apart.
        *data.last_mut().unwrap_or_else(|| panic!("empty")) = 8;
        std::fs::write(&path, &data).unwrap_or_else(|e| panic!("{e}"));
        let after = Fingerprint::of(&facts, "e", "tus").unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(before, after);
        // And a different size or time alone changes it too.
        let longer = FileFacts {
            size: facts.size + 1,
            ..facts.clone()
        };
        assert_ne!(
            after,
            Fingerprint::of(&longer, "e", "tus").unwrap_or_else(|e| panic!("{e}"))
        );
        let touched = FileFacts {
            modified: facts.modified + 1,
            ..facts.clone()
        };
        assert_ne!(
            after,
            Fingerprint::of(&touched, "e", "tus").unwrap_or_else(|e| panic!("{e}"))
        );
        assert_ne!(
            after,
            Fingerprint::of(&facts, "e", "ietf").unwrap_or_else(|e| panic!("{e}"))
        );
    }

    #[test]
    fn refuses_directories() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(FileFacts::of(dir.path()).is_err());
    }
}
