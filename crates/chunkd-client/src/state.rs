//! The state file: for each unfinished upload, by fingerprint, where it went and its
//! upload URL(s). Every change is made under a lock and written atomically (a temporary
//! file, fsync, rename, fsync of the directory), so a crash or `kill -9` at any moment
//! leaves either the old or the new file, and two clients at once lose neither's entry.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::protocol::Protocol;

const VERSION: u32 = 1;

/// One remembered upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Stored", from = "Stored")]
pub struct Entry {
    /// The file's canonical path (any the OS has: stored as its bytes in base64 beside a
    /// readable copy, so names that are not UTF-8 round-trip).
    pub path: PathBuf,
    /// The file's size when the upload began.
    pub size: u64,
    /// Where it was created.
    pub endpoint: String,
    /// The protocol it speaks.
    pub protocol: Protocol,
    /// Its uploads: one, or the partial uploads of a concatenation, in file order.
    pub parts: Vec<Part>,
    /// Whether the parts are joined by a final concatenation.
    pub concat: bool,
    /// The final upload joining the parts, once its creation answered: a later run asks
    /// it (`HEAD`) rather than creating a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
}

/// An [`Entry`] as the file holds it.
#[derive(Serialize, Deserialize)]
struct Stored {
    /// Readable, and lossy when the path is not UTF-8.
    path: String,
    /// The path's OS bytes in base64; wins over `path` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_bytes: Option<String>,
    size: u64,
    endpoint: String,
    protocol: Protocol,
    parts: Vec<Part>,
    concat: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    final_url: Option<String>,
}

impl From<Entry> for Stored {
    fn from(e: Entry) -> Stored {
        Stored {
            path: e.path.to_string_lossy().into_owned(),
            path_bytes: Some(BASE64.encode(e.path.as_os_str().as_encoded_bytes())),
            size: e.size,
            endpoint: e.endpoint,
            protocol: e.protocol,
            parts: e.parts,
            concat: e.concat,
            final_url: e.final_url,
        }
    }
}

impl From<Stored> for Entry {
    fn from(s: Stored) -> Entry {
        let path = s
            .path_bytes
            .and_then(|b| BASE64.decode(b).ok())
            .and_then(path_from_bytes)
            .unwrap_or_else(|| PathBuf::from(s.path));
        Entry {
            path,
            size: s.size,
            endpoint: s.endpoint,
            protocol: s.protocol,
            parts: s.parts,
            concat: s.concat,
            final_url: s.final_url,
        }
    }
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    Some(PathBuf::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes),
    ))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    String::from_utf8(bytes).ok().map(PathBuf::from)
}

/// Whether `entry` can be written to the state file; checked before anything is
/// created on the server, so no upload is made that could not be remembered.
pub(crate) fn storable(entry: &Entry) -> Result<()> {
    serde_json::to_vec(entry)
        .map(drop)
        .map_err(|e| Error::File {
            path: entry.path.clone(),
            message: format!("cannot be remembered in the state file: {e}"),
        })
}

/// One upload of a range of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// The upload URL.
    pub url: String,
    /// Where in the file its bytes begin.
    pub start: u64,
    /// How many bytes it holds.
    pub length: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct Document {
    version: u32,
    uploads: BTreeMap<String, Entry>,
}

/// The state file at a path.
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file at `path` (made when first written).
    pub fn new(path: impl Into<PathBuf>) -> StateFile {
        StateFile { path: path.into() }
    }

    /// `$XDG_STATE_HOME/chunkd/uploads.json`, else `~/.local/state/chunkd/uploads.json`.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .map(|h| h.join(".local").join("state"))
            })?;
        Some(base.join("chunkd").join("uploads.json"))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every remembered upload (none when there is no file yet).
    pub fn entries(&self) -> Result<BTreeMap<Fingerprint, Entry>> {
        Ok(self
            .read()?
            .uploads
            .into_iter()
            .map(|(k, v)| (Fingerprint::from_stored(k), v))
            .collect())
    }

    /// Remembers `entry` under `fingerprint`, forgetting older entries of the same file
    /// and endpoint (the file changed since: they can never resume).
    pub fn remember(&self, fingerprint: &Fingerprint, entry: &Entry) -> Result<()> {
        self.update(|doc| {
            doc.uploads
                .retain(|_, e| !(e.path == entry.path && e.endpoint == entry.endpoint));
            doc.uploads
                .insert(fingerprint.as_str().to_owned(), entry.clone());
        })
    }

    /// Forgets the upload under `fingerprint`, if any.
    pub fn forget(&self, fingerprint: &Fingerprint) -> Result<()> {
        self.update(|doc| {
            doc.uploads.remove(fingerprint.as_str());
        })
    }

    fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::State {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    fn read(&self) -> Result<Document> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Document::default()),
            Err(e) => return Err(self.error(e)),
        };
        let doc: Document = serde_json::from_slice(&text)
            .map_err(|e| self.error(format_args!("{e} (move it away to forget every upload)")))?;
        if doc.version != VERSION {
            return Err(self.error(format_args!(
                "version {} is not {VERSION}, the one this client writes",
                doc.version
            )));
        }
        Ok(doc)
    }

    /// Reads, changes and atomically replaces the file, holding its lock throughout.
    fn update(&self, change: impl FnOnce(&mut Document)) -> Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        let _lock = self.lock()?;
        let mut doc = self.read()?;
        doc.version = VERSION;
        change(&mut doc);
        let json = serde_json::to_vec_pretty(&doc).map_err(|e| self.error(e))?;

        // A temporary file with an unpredictable name, created exclusively and private
        // (0600), removed if anything fails before it is renamed over the old one.
        let written = (|| {
            let mut temp = tempfile::NamedTempFile::new_in(dir)?;
            temp.write_all(&json)?;
            temp.write_all(b"\n")?;
            temp.as_file().sync_all()?;
            temp.persist(&self.path).map_err(|e| e.error)?;
            // The rename itself is durable once the directory is.
            File::open(dir)?.sync_all()
        })();
        written.map_err(|e| self.error(e))
    }

    /// An exclusive lock on `<file>.lock`, released when the handle drops.
    fn lock(&self) -> Result<File> {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let file = lock_file(Path::new(&name)).map_err(|e| self.error(e))?;
        file.lock().map_err(|e| self.error(e))?;
        Ok(file)
    }
}

/// The lock file, private (0600), never through a symlink: one planted at its name
/// could make the client create or lock a file elsewhere.
fn lock_file(path: &Path) -> std::io::Result<File> {
    let refuse = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is a symlink or not a regular file", path.display()),
        )
    };
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.file_type().is_file()
    {
        return Err(refuse());
    }
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    // A symlink swapped in between the look and the open: the file opened is not the
    // one at the name.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let (opened, named) = (file.metadata()?, std::fs::symlink_metadata(path)?);
        if !named.file_type().is_file()
            || (opened.dev(), opened.ino()) != (named.dev(), named.ino())
        {
            return Err(refuse());
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, url: &str) -> Entry {
        Entry {
            path: PathBuf::from(path),
            size: 10,
            endpoint: "http://h/files/".to_owned(),
            protocol: Protocol::Tus,
            parts: vec![Part {
                url: url.to_owned(),
                start: 0,
                length: 10,
            }],
            concat: false,
            final_url: None,
        }
    }

    fn fp(s: &str) -> Fingerprint {
        Fingerprint::from_stored(s.to_owned())
    }

    #[test]
    fn round_trips_entries() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = StateFile::new(dir.path().join("sub").join("uploads.json"));
        assert!(state.entries().unwrap_or_else(|e| panic!("{e}")).is_empty());
        state
            .remember(&fp("a"), &entry("/a", "http://h/files/1"))
            .unwrap_or_else(|e| panic!("{e}"));
        state
            .remember(&fp("b"), &entry("/b", "http://h/files/2"))
            .unwrap_or_else(|e| panic!("{e}"));
        let entries = state.entries().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[&fp("a")], entry("/a", "http://h/files/1"));
        state.forget(&fp("a")).unwrap_or_else(|e| panic!("{e}"));
        let entries = state.entries().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries.keys().collect::<Vec<_>>(), [&fp("b")]);
    }

    #[cfg(unix)]
    #[test]
    fn paths_that_are_not_utf8_round_trip() {
        use std::os::unix::ffi::OsStrExt as _;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = StateFile::new(dir.path().join("uploads.json"));
        let mut odd = entry("/", "http://h/files/1");
        odd.path = PathBuf::from(std::ffi::OsStr::from_bytes(b"/home/me/caf\xe9.bin"));
        storable(&odd).unwrap_or_else(|e| panic!("{e}"));
        state
            .remember(&fp("a"), &odd)
            .unwrap_or_else(|e| panic!("{e}"));
        let entries = state.entries().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries[&fp("a")], odd);
        // A readable copy beside the exact bytes.
        let text = std::fs::read_to_string(state.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(text.contains("/home/me/caf\u{fffd}.bin"), "{text}");
    }

    #[test]
    fn entries_written_before_path_bytes_still_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("uploads.json");
        std::fs::write(
            &path,
            br#"{"version":1,"uploads":{"a":{"path":"/a","size":10,"endpoint":"http://h/files/",
              "protocol":"tus","concat":false,"created":1,
              "parts":[{"url":"http://h/files/1","start":0,"length":10}]}}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let entries = StateFile::new(&path)
            .entries()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries[&fp("a")], entry("/a", "http://h/files/1"));
    }

    #[test]
    fn a_changed_file_replaces_its_old_entry() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = StateFile::new(dir.path().join("uploads.json"));
        state
            .remember(&fp("old"), &entry("/a", "http://h/files/1"))
            .unwrap_or_else(|e| panic!("{e}"));
        state
            .remember(&fp("new"), &entry("/a", "http://h/files/2"))
            .unwrap_or_else(|e| panic!("{e}"));
        let entries = state.entries().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries.keys().collect::<Vec<_>>(), [&fp("new")]);
    }

    #[test]
    fn replaces_the_file_atomically_and_privately() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("uploads.json");
        let state = StateFile::new(&path);
        state
            .remember(&fp("a"), &entry("/a", "u"))
            .unwrap_or_else(|e| panic!("{e}"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            let inode = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{e}"))
                .ino();
            state
                .remember(&fp("b"), &entry("/b", "u"))
                .unwrap_or_else(|e| panic!("{e}"));
            let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{e}"));
            // A new file renamed over the old, never the old one rewritten in place.
            assert_ne!(meta.ino(), inode);
            assert_eq!(meta.mode() & 0o777, 0o600);
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n == "uploads.json" || n == "uploads.json.lock"),
            "{names:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_lock_name_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("uploads.json");
        let elsewhere = dir.path().join("victim");
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("uploads.json.lock"))
            .unwrap_or_else(|e| panic!("{e}"));
        let state = StateFile::new(&path);
        assert!(matches!(
            state.remember(&fp("a"), &entry("/a", "u")),
            Err(Error::State { .. })
        ));
        assert!(!elsewhere.exists(), "the symlink was followed");
    }

    #[cfg(unix)]
    #[test]
    fn the_lock_file_is_private() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = StateFile::new(dir.path().join("uploads.json"));
        state
            .remember(&fp("a"), &entry("/a", "u"))
            .unwrap_or_else(|e| panic!("{e}"));
        let meta = std::fs::metadata(dir.path().join("uploads.json.lock"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.mode() & 0o777, 0o600);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_loss() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("uploads.json");
        std::fs::write(&path, b"{ not json").unwrap_or_else(|e| panic!("{e}"));
        let state = StateFile::new(&path);
        assert!(matches!(state.entries(), Err(Error::State { .. })));
        assert!(state.remember(&fp("a"), &entry("/a", "u")).is_err());
        assert_eq!(
            std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")),
            b"{ not json"
        );
    }

    #[test]
    fn concurrent_writers_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("uploads.json");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let state = StateFile::new(&path);
                std::thread::spawn(move || {
                    let name = format!("/f{i}");
                    state.remember(&fp(&name), &entry(&name, "u"))
                })
            })
            .collect();
        for t in threads {
            t.join()
                .unwrap_or_else(|_| panic!("thread"))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(
            StateFile::new(&path)
                .entries()
                .unwrap_or_else(|e| panic!("{e}"))
                .len(),
            8
        );
    }
}
