//! Upload bytes as files on local disk.
//!
//! An open upload is `<root>/<id>.part`; finishing renames it to `<root>/<id>`. Ids are
//! validated [`UploadId`](chunkd_core::UploadId)s (letters, digits, `-`, `_`), so a path can never leave `root`.
//! A pre-create hook may place an upload at a relative path of its choosing instead
//! (`<root>/<path>.part`, then `<root>/<path>`): `placement` checks it stays below
//! `root`, and a place another file holds is refused, at creation and at finishing.

use std::io::{self, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use chunkd_core::{
    ByteStream, Concat, DataStore, Error, Placement, Result, StoreState, UploadInfo, Written,
};
use futures::StreamExt;
use tokio::io::AsyncSeekExt;
use tokio::task::JoinHandle;

use crate::sync::SyncPolicy;

/// Bytes gathered before a write is handed to the blocking pool. Two batches per upload
/// can be in memory at once (one being written, one arriving).
const WRITE_BATCH: usize = 256 << 10;
const READ_BUFFER: usize = 256 << 10;

#[derive(Debug, thiserror::Error)]
enum FsError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} holds {actual} bytes but the upload is at offset {expected}")]
    Truncated {
        path: PathBuf,
        actual: u64,
        expected: u64,
    },
}

impl From<FsError> for Error {
    fn from(e: FsError) -> Self {
        match &e {
            FsError::Io { source, .. } if is_storage_full(source) => Error::StorageFull,
            _ => Error::backend("fs", e),
        }
    }
}

/// A full disk or an exhausted quota: the client's 507, not the server's 500.
fn is_storage_full(e: &io::Error) -> bool {
    const EDQUOT: i32 = 122;
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(EDQUOT)
}

fn io_err<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> FsError + 'p {
    move |source| FsError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    path: PathBuf,
    f: impl FnOnce(&Path) -> std::result::Result<T, FsError> + Send + 'static,
) -> std::result::Result<T, FsError> {
    tokio::task::spawn_blocking(move || f(&path))
        .await
        .unwrap_or_else(|e| Err(io_err("join", Path::new(""))(io::Error::other(e))))
}

/// Opens an upload file for appending at `offset`, dropping bytes past it (written before
/// a crash, never acknowledged).
fn open_at(path: &Path, offset: u64) -> std::result::Result<std::fs::File, FsError> {
    use std::io::Seek;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    let actual = file.metadata().map_err(io_err("stat", path))?.len();
    if actual < offset {
        return Err(FsError::Truncated {
            path: path.to_owned(),
            actual,
            expected: offset,
        });
    }
    if actual > offset {
        file.set_len(offset).map_err(io_err("truncate", path))?;
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(io_err("seek", path))?;
    Ok(file)
}

/// Writes every byte of `chunks` with as few `writev` calls as possible. Empty chunks
/// are left out: `writev` of only empty slices returns 0, which is no short write.
fn write_all_vectored(file: &mut std::fs::File, chunks: &[Bytes]) -> io::Result<()> {
    use std::io::{IoSlice, Write};
    let mut slices: Vec<IoSlice<'_>> = chunks
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| IoSlice::new(c))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A file being appended to in batches, one batch in flight at a time.
struct Pipelined {
    file: Option<std::fs::File>,
    in_flight: Option<JoinHandle<std::result::Result<std::fs::File, FsError>>>,
    batch: Vec<Bytes>,
    batched: usize,
    path: PathBuf,
}

impl Pipelined {
    fn new(file: std::fs::File, path: PathBuf) -> Self {
        Pipelined {
            file: Some(file),
            in_flight: None,
            batch: Vec::new(),
            batched: 0,
            path,
        }
    }

    async fn push(&mut self, chunk: Bytes) -> Result<()> {
        self.batched += chunk.len();
        self.batch.push(chunk);
        if self.batched >= WRITE_BATCH {
            self.send().await?;
        }
        Ok(())
    }

    /// Waits for the batch in flight, then hands the gathered one to the blocking pool.
    async fn send(&mut self) -> Result<()> {
        let mut file = self.settle().await?;
        let batch = std::mem::take(&mut self.batch);
        self.batched = 0;
        let path = self.path.clone();
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            write_all_vectored(&mut file, &batch).map_err(io_err("write", &path))?;
            Ok(file)
        }));
        Ok(())
    }

    async fn settle(&mut self) -> Result<std::fs::File> {
        if let Some(handle) = self.in_flight.take() {
            let file = handle.await.map_err(|e| Error::backend("fs", e))??;
            return Ok(file);
        }
        self.file
            .take()
            .ok_or_else(|| Error::backend("fs", "upload file already handed off"))
    }

    /// Drops what was gathered but not written; returns the file once nothing is in flight.
    async fn abandon(mut self) -> Result<std::fs::File> {
        self.batch.clear();
        self.settle().await
    }

    /// Writes what is left and returns the file.
    async fn into_file(mut self) -> Result<std::fs::File> {
        if !self.batch.is_empty() {
            self.send().await?;
        }
        self.settle().await
    }
}

/// The bookkeeping entry naming a placed upload's path below `root`.
const PLACED: &str = "fs.path";

/// The relative path a placement names, if it is one the file store can follow safely:
/// plain names only (no `..`, no root, no `.`), not a `.part` name, within the usual
/// length limits, and nothing for another store.
fn placement(wanted: &Placement) -> std::result::Result<String, String> {
    if wanted.key.is_some() || wanted.bucket.is_some() {
        return Err("a file store takes a Path, not a Key or Bucket".into());
    }
    let Some(path) = wanted.path.as_deref() else {
        return Err("no Path given".into());
    };
    let path = path.trim_start_matches("./");
    if path.is_empty() || path.len() > 1024 || path.contains('\0') {
        return Err(format!("path {path:?} is empty, too long or has NUL"));
    }
    if path.ends_with(".part") || path.ends_with('/') {
        return Err(format!("path {path:?} names a directory or a .part file"));
    }
    let mut parts = 0;
    for part in path.split('/') {
        let plain = !part.is_empty()
            && part != "."
            && part != ".."
            && part.len() <= 255
            && !part.chars().any(char::is_control);
        if !plain {
            return Err(format!(
                "path {path:?} leaves the data directory or is not plain"
            ));
        }
        parts += 1;
    }
    if parts > 32 {
        return Err(format!("path {path:?} is nested too deep"));
    }
    Ok(path.to_owned())
}

/// Stores upload bytes under one directory.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    sync: SyncPolicy,
}

impl FsStore {
    /// Uses `root` (created if missing) for upload files.
    pub fn new(root: impl Into<PathBuf>, sync: SyncPolicy) -> io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(FsStore { root, sync })
    }

    /// The directory upload files are kept in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the upload's name points below `root`: its placed path, or its id.
    fn name(info: &UploadInfo) -> &str {
        info.store
            .get(PLACED)
            .map_or(info.id.as_str(), String::as_str)
    }

    fn part_path(&self, info: &UploadInfo) -> PathBuf {
        self.root.join(format!("{}.part", Self::name(info)))
    }

    fn final_path(&self, info: &UploadInfo) -> PathBuf {
        self.root.join(Self::name(info))
    }

    /// A write to an upload whose file was already finished (renamed) by a process that
    /// died before its record said so: the retry's empty last write succeeds, so the
    /// finish after it completes the record. Anything else is an unknown upload.
    async fn write_after_finish(&self, info: &UploadInfo) -> Result<Written> {
        let complete = info.length == Some(info.offset);
        let stored = tokio::fs::metadata(self.final_path(info))
            .await
            .map(|m| m.len());
        match stored {
            Ok(len) if complete && len == info.offset => Ok(Written {
                bytes: 0,
                store: info.store.clone(),
            }),
            _ => Err(Error::NotFound(info.id.clone())),
        }
    }

    /// Makes the directory entries of `path` durable: its directory's, and for a placed
    /// upload each directory made for it up to `root`.
    async fn sync_dirs(&self, path: &Path) -> Result<()> {
        if self.sync != SyncPolicy::Always {
            return Ok(());
        }
        let mut dirs = Vec::new();
        let mut dir = path.parent();
        while let Some(d) = dir {
            dirs.push(d.to_owned());
            if d == self.root {
                break;
            }
            dir = d.parent();
        }
        tokio::task::spawn_blocking(move || {
            for dir in &dirs {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err("sync directory", dir))?;
            }
            Ok::<_, FsError>(())
        })
        .await
        .map_err(|e| Error::backend("fs", e))??;
        Ok(())
    }
}

#[async_trait]
impl DataStore for FsStore {
    fn name(&self) -> &'static str {
        "fs"
    }

    async fn check(&self) -> Result<()> {
        // A name of its own each time, made with O_EXCL: nothing stored is ever touched.
        let probe = self
            .root
            .join(format!(".ready-{}", chunkd_core::UploadId::generate()));
        let written = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&probe)?;
            let written = file.write_all(b"ready").and_then(|()| file.sync_data());
            let removed = std::fs::remove_file(&probe);
            written.and(removed)
        })
        .await
        .map_err(|e| Error::backend("fs", e))?;
        written.map_err(|e| Error::backend("fs", e))
    }

    fn location(&self, info: &UploadInfo) -> Option<chunkd_core::Location> {
        Some(chunkd_core::Location::File(self.final_path(info)))
    }

    fn place(&self, info: &UploadInfo, wanted: &Placement) -> Result<StoreState> {
        let path = placement(wanted).map_err(|why| Error::backend("fs", why))?;
        let mut state = info.store.clone();
        state.insert(PLACED.to_owned(), path);
        Ok(state)
    }

    async fn create(&self, info: &UploadInfo) -> Result<StoreState> {
        let path = self.part_path(info);
        let placed = info.store.contains_key(PLACED);
        if placed {
            // Another upload's file, or anyone's: never taken over, never overwritten.
            let taken = self.final_path(info);
            if tokio::fs::try_exists(&taken).await.unwrap_or(true) {
                return Err(Error::backend(
                    "fs",
                    format!("{} is taken", taken.display()),
                ));
            }
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(io_err("create directory", parent))?;
            }
        }
        tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists if placed => {
                    Error::backend("fs", format!("{} is taken", path.display()))
                }
                io::ErrorKind::AlreadyExists => Error::AlreadyExists(info.id.clone()),
                _ => io_err("create", &path)(e).into(),
            })?;
        if placed {
            self.sync_dirs(&path).await?;
        }
        Ok(info.store.clone())
    }

    async fn write(&self, info: &UploadInfo, mut body: ByteStream<'_>) -> Result<Written> {
        let path = self.part_path(info);
        let offset = info.offset;
        let file = match blocking(path.clone(), move |path| open_at(path, offset)).await {
            Ok(file) => file,
            Err(FsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return self.write_after_finish(info).await;
            }
            Err(other) => return Err(other.into()),
        };

        // Received chunks are written as they are (no copy into a buffer) in batches, one
        // batch on the blocking pool while the next one arrives.
        let mut writer = Pipelined::new(file, path.clone());
        let mut bytes = 0u64;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) => {
                    bytes += chunk.len() as u64;
                    writer.push(chunk).await?;
                }
                Err(abandon) => {
                    let file = writer.abandon().await?;
                    blocking(path, move |path| {
                        file.set_len(offset).map_err(io_err("truncate", path))
                    })
                    .await?;
                    return Err(Error::backend("fs", abandon));
                }
            }
        }
        let file = writer.into_file().await?;
        if self.sync == SyncPolicy::Always && bytes > 0 {
            blocking(path, move |path| {
                file.sync_data().map_err(io_err("fsync", path))
            })
            .await?;
        }
        Ok(Written {
            bytes,
            store: info.store.clone(),
        })
    }

    async fn finish(&self, info: &UploadInfo) -> Result<StoreState> {
        let from = self.part_path(info);
        let to = self.final_path(info);
        // Both there: the final name is another file's (a placed path, or an id named
        // like one), which a rename would replace.
        if tokio::fs::try_exists(&from).await.unwrap_or(false)
            && tokio::fs::try_exists(&to).await.unwrap_or(false)
        {
            return Err(Error::backend(
                "fs",
                format!("{} is taken by another file", to.display()),
            ));
        }
        match tokio::fs::rename(&from, &to).await {
            Ok(()) => {}
            // Already renamed by an earlier attempt that crashed before saving state.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && tokio::fs::try_exists(&to).await.unwrap_or(false) => {}
            Err(e) => return Err(io_err("rename", &from)(e).into()),
        }
        self.sync_dirs(&to).await?;
        Ok(info.store.clone())
    }

    async fn read(&self, info: &UploadInfo, range: Range<u64>) -> Result<ByteStream<'static>> {
        let path = self.final_path(info);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => Error::NotFound(info.id.clone()),
                _ => io_err("open", &path)(e).into(),
            })?;
        file.seek(SeekFrom::Start(range.start))
            .await
            .map_err(io_err("seek", &path))?;
        let limited = tokio::io::AsyncReadExt::take(file, range.end - range.start);
        Ok(tokio_util::io::ReaderStream::with_capacity(limited, READ_BUFFER).boxed())
    }

    async fn delete(&self, info: &UploadInfo) -> Result<()> {
        for path in [self.part_path(info), self.final_path(info)] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e).into()),
            }
        }
        Ok(())
    }

    fn concat(&self) -> Option<&dyn Concat> {
        Some(self)
    }
}

#[async_trait]
impl Concat for FsStore {
    async fn concat(
        &self,
        target: &UploadInfo,
        parts: &[UploadInfo],
    ) -> Result<Option<StoreState>> {
        let target_path = self.part_path(target);
        let sources: Vec<PathBuf> = parts.iter().map(|p| self.final_path(p)).collect();
        let sync = self.sync;
        // std::io::copy between files uses copy_file_range: the bytes never enter user space.
        let result = tokio::task::spawn_blocking(move || -> std::result::Result<(), FsError> {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&target_path)
                .map_err(io_err("open", &target_path))?;
            for source in &sources {
                let mut input = std::fs::File::open(source).map_err(io_err("open", source))?;
                std::io::copy(&mut input, &mut out).map_err(io_err("copy", source))?;
            }
            if sync == SyncPolicy::Always {
                out.sync_data().map_err(io_err("fsync", &target_path))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::backend("fs", e))?;
        result?;
        Ok(Some(target.store.clone()))
    }
}
