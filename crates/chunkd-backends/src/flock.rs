//! Upload locks that hold across processes on one host: `flock` on a file per upload,
//! so the workers of a multi-process server sharing one data directory (the Python
//! package's), and `chunkd gc` beside them, never write one upload at once.
//!
//! The kernel releases a lock when its holder's file is closed, which includes the
//! holder's death (kill -9): a dead holder never blocks an upload. Locks are advisory,
//! so any process may write the file: a request that has to wait writes a fresh random
//! token in its first 8 bytes (again every second while it waits), and the holder, which
//! reads them every 100 ms, sees them change and lets go (newest wins).
//!
//! One host and a local filesystem only: on NFS `flock` is emulated with byte-range
//! locks. Not fcntl (POSIX record) locks: a process loses those when it closes any of
//! its descriptors of the file, and they do not exclude two descriptors in one process.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chunkd_core::memory::MemoryLocker;
use chunkd_core::{Error, Lease, Locker, Result, UploadId};
use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;
use tokio::time::Instant;

const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_millis(250);
/// How often a waiting request writes a new token (the holder may have changed, and a
/// new holder takes the token it finds as its starting point).
const ASK_AGAIN: Duration = Duration::from_secs(1);
/// How often a holder reads the token.
const POLL: Duration = Duration::from_millis(100);
/// Attempts on a path whose file was replaced while it was being locked.
const REOPENS: usize = 3;

type Token = [u8; 8];

/// Locks shared through `flock` by every process using the same directory.
///
/// Lock files are never deleted, not even with their upload: one left per upload is an
/// empty (or 8-byte) file. Deleting one safely takes its holder unlinking it while
/// holding, and every taker checking that the file it locked is still the one its path
/// names; takers check that already, so only a holder would ever delete. Removing a lock
/// file by hand while it is held lets a second process take the same upload.
#[derive(Debug)]
pub struct FlockLocker {
    dir: PathBuf,
    /// In-process exclusivity first: two descriptors of one process exclude each other
    /// under flock too, but the in-process locker queues waiters and signals at once.
    local: MemoryLocker,
}

impl FlockLocker {
    /// Locks in `dir` (created if missing), one `<upload id>.lock` file per upload.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        Ok(FlockLocker {
            dir,
            local: MemoryLocker::new(),
        })
    }

    /// The directory holding the lock files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Upload ids are letters, digits, `-` and `_` only: safe as a file name.
    fn path(&self, id: &UploadId) -> PathBuf {
        self.dir.join(format!("{}.lock", id.as_str()))
    }
}

fn io_error<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> Error + 'p {
    move |e| {
        Error::backend(
            "flock",
            io::Error::new(e.kind(), format!("{op} {}: {e}", path.display())),
        )
    }
}

/// A fresh token, never all zeros (what an empty lock file reads as).
fn token() -> Token {
    let n = getrandom::u64().unwrap_or_else(|_| {
        // Any value different from the last one written will do.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        nanos ^ (u64::from(std::process::id()) << 32)
    });
    n.max(1).to_le_bytes()
}

/// The first 8 bytes of the lock file, zeros past its end.
fn read_token(file: &File) -> io::Result<Token> {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}

/// Whether `path` still names the file `file` is open on (it may have been removed, or
/// removed and created again, since it was opened).
fn same_file(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(open.dev() == named.dev() && open.ino() == named.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// One non-blocking try for the lock at `path`: the locked file and the token it held,
/// or `None` while another descriptor holds it (after writing `ask`, if given, to tell
/// the holder).
fn attempt(path: &Path, ask: Option<Token>) -> io::Result<Option<(File, Token)>> {
    for _ in 0..REOPENS {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            // An interrupted try is a busy one: the caller tries again.
            Err(Errno::WOULDBLOCK | Errno::INTR) => {
                if let Some(token) = ask {
                    file.write_all_at(&token, 0)?;
                }
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        // A lock on a file no longer at `path` guards nothing: a later taker opens the
        // file that is there now.
        if !same_file(&file, path)? {
            continue;
        }
        let seen = read_token(&file)?;
        return Ok(Some((file, seen)));
    }
    Ok(None)
}

/// Held lock: closing the file releases the flock. Fields drop in order, so the file is
/// closed before the in-process lease lets the next local request try it.
struct Held {
    _file: Arc<File>,
    _local: Lease,
}

/// Resolves once the token in `file` differs from `seen`. Holds the file weakly, so a
/// contended future outliving its lease does not keep the lock.
async fn token_changed(file: std::sync::Weak<File>, seen: Token, path: PathBuf) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(file) = file.upgrade() else {
            return std::future::pending().await;
        };
        // Read here rather than on the blocking pool: 8 bytes of a file just read or
        // written, from the page cache, ten times a second per held lease.
        match read_token(&file) {
            Ok(token) if token != seen => return,
            Ok(_) => {}
            Err(e) => {
                // The lock itself still holds; only requests elsewhere cannot ask for it.
                tracing::warn!(error = %e, path = %path.display(), "cannot read lock file");
                return std::future::pending().await;
            }
        }
    }
}

impl FlockLocker {
    /// The lease once the file is locked: contended when a request here (the
    /// in-process lease) or in another process (the token) asks for it.
    fn held(&self, path: PathBuf, file: File, seen: Token, mut local: Lease) -> Lease {
        let file = Arc::new(file);
        let local_contended = local.take_contended();
        let remote = token_changed(Arc::downgrade(&file), seen, path);
        let contended = async move {
            tokio::select! {
                () = local_contended => {}
                () = remote => {}
            }
        };
        Lease::new(
            Held {
                _file: file,
                _local: local,
            },
            contended,
        )
    }
}

#[async_trait]
impl Locker for FlockLocker {
    async fn lock(&self, id: &UploadId, timeout: Duration) -> Result<Lease> {
        let deadline = Instant::now() + timeout;
        let local = self.local.lock(id, timeout).await?;
        let path = self.path(id);
        let mut pause = FIRST_PAUSE;
        let mut asked_at: Option<Instant> = None;
        loop {
            // Tries, not a blocking flock on the blocking pool: that could not be
            // given up at the deadline. Each is a few system calls on a file in the
            // page cache, made here: a hop to the blocking pool would cost more (and
            // every HEAD takes a free lease this way).
            let started = Instant::now();
            let ask = asked_at
                .is_none_or(|at| started - at >= ASK_AGAIN)
                .then(token);
            if let Some((file, seen)) = attempt(&path, ask).map_err(io_error("lock", &path))? {
                return Ok(self.held(path, file, seen, local));
            }
            if ask.is_some() {
                asked_at = Some(started);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Locked);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    async fn try_lock(&self, id: &UploadId) -> Result<Option<Lease>> {
        let Some(local) = self.local.try_lock(id).await? else {
            return Ok(None);
        };
        let path = self.path(id);
        // Held elsewhere: no token is written, and the local lease drops.
        Ok(attempt(&path, None)
            .map_err(io_error("lock", &path))?
            .map(|(file, seen)| self.held(path, file, seen, local)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_file_removed_and_created_again_is_not_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lock");
        let old = File::create(&path).unwrap();
        assert!(same_file(&old, &path).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(!same_file(&old, &path).unwrap());
        let _new = File::create(&path).unwrap();
        assert!(!same_file(&old, &path).unwrap());
    }

    #[test]
    fn a_removed_lock_file_no_longer_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lock");
        let (first, _) = attempt(&path, None).unwrap().expect("free");
        // The path now names a new file: its lock is free, the old one's is not.
        std::fs::remove_file(&path).unwrap();
        let (second, _) = attempt(&path, None).unwrap().expect("new file is free");
        assert!(same_file(&second, &path).unwrap());
        assert!(!same_file(&first, &path).unwrap());
        assert!(attempt(&path, None).unwrap().is_none());
    }

    #[test]
    fn a_waiter_writes_its_token_and_the_holder_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lock");
        let (held, seen) = attempt(&path, None).unwrap().expect("free");
        assert_eq!(seen, [0; 8], "a new lock file is empty");
        let asked = token();
        assert!(attempt(&path, Some(asked)).unwrap().is_none());
        assert_eq!(read_token(&held).unwrap(), asked);
        // A try without a token leaves the file alone.
        assert!(attempt(&path, None).unwrap().is_none());
        assert_eq!(read_token(&held).unwrap(), asked);
    }
}
