//! A [`DataStore`] written outside chunkd: every append becomes its own file, and no
//! file is appended to once it is complete.
//!
//! An upload is a directory `<root>/<id>/` of chunks named by the offset they start at
//! (`00000000000000065536.chunk`). That suits storage that is happier with whole files
//! than with appends: a volume a sync or backup tool copies file by file, or one that
//! keeps files immutable once closed. A chunk is written as `<offset>.tmp` and renamed
//! when its body ends cleanly, so a failed body leaves nothing behind.

#![warn(missing_docs)]

use std::io::{self, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chunkd_core::{
    ByteStream, DataStore, Error, Result, StoreState, UploadId, UploadInfo, Written,
};
use futures::{StreamExt, TryStreamExt};
use tokio::fs::{self, File};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

const CHUNK: &str = "chunk";
const PENDING: &str = "tmp";
const READ_BUFFER: usize = 64 << 10;

/// Why the store failed, kept as the source of [`Error::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum ChunkDirError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`create`, `rename`, ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The chunks do not add up to the upload (a chunk removed behind the store's back).
    #[error("upload {id} has no chunk at byte {at} of {offset}")]
    Gap {
        /// The upload.
        id: UploadId,
        /// Where the missing chunk should start.
        at: u64,
        /// How many bytes the upload should hold.
        offset: u64,
    },
    /// The request body failed: the chunk it was writing is dropped.
    #[error("request body failed: {0}")]
    Body(#[source] io::Error),
}

impl From<ChunkDirError> for Error {
    fn from(e: ChunkDirError) -> Self {
        Error::backend("chunk-dir", e)
    }
}

fn io_err<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> ChunkDirError + 'p {
    move |source| ChunkDirError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// One complete chunk: `len` bytes of the upload from `start`.
#[derive(Debug)]
struct Chunk {
    start: u64,
    len: u64,
    path: PathBuf,
}

/// Keeps each upload as numbered chunk files in a directory of its own.
#[derive(Debug)]
pub struct ChunkDirStore {
    root: PathBuf,
}

impl ChunkDirStore {
    /// A store under `root`, created if missing.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(ChunkDirStore { root })
    }

    /// Upload ids are letters, digits, `-` and `_` only, so this stays below `root`.
    fn dir(&self, id: &UploadId) -> PathBuf {
        self.root.join(id.as_str())
    }

    /// The upload's complete chunks in order, and the pending chunks of writes that
    /// never ended. `NotFound` if the upload has no directory.
    async fn list(&self, id: &UploadId) -> Result<(Vec<Chunk>, Vec<PathBuf>)> {
        let dir = self.dir(id);
        let mut entries = match fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.clone()));
            }
            Err(e) => return Err(io_err("list", &dir)(e).into()),
        };
        let (mut chunks, mut pending) = (Vec::new(), Vec::new());
        while let Some(entry) = entries.next_entry().await.map_err(io_err("list", &dir))? {
            let path = entry.path();
            let start = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            match (start, path.extension().and_then(|e| e.to_str())) {
                (Some(start), Some(CHUNK)) => {
                    let len = entry.metadata().await.map_err(io_err("stat", &path))?.len();
                    chunks.push(Chunk { start, len, path });
                }
                (_, Some(PENDING)) => pending.push(path),
                _ => {}
            }
        }
        chunks.sort_by_key(|c| c.start);
        Ok((chunks, pending))
    }

    /// Drops what lies at or past `offset` (chunks written before a crash, never recorded
    /// in the state) and pending chunks of writes that never ended.
    async fn cut_back(&self, id: &UploadId, offset: u64) -> Result<()> {
        let (chunks, pending) = self.list(id).await?;
        for path in pending {
            discard(&path).await?;
        }
        for chunk in chunks {
            if chunk.start >= offset {
                discard(&chunk.path).await?;
            } else if chunk.start + chunk.len > offset {
                // The one chunk that straddles the offset keeps its recorded part.
                let file = fs::OpenOptions::new()
                    .write(true)
                    .open(&chunk.path)
                    .await
                    .map_err(io_err("open", &chunk.path))?;
                file.set_len(offset - chunk.start)
                    .await
                    .map_err(io_err("truncate", &chunk.path))?;
                file.sync_all().await.map_err(io_err("sync", &chunk.path))?;
            }
        }
        Ok(())
    }

    /// Streams `body` into `pending`; the byte count once it ended cleanly and is durable.
    async fn receive(pending: &Path, body: &mut ByteStream<'_>) -> Result<u64, ChunkDirError> {
        let mut file = File::create(pending)
            .await
            .map_err(io_err("create", pending))?;
        let mut bytes = 0u64;
        while let Some(item) = body.next().await {
            let data = item.map_err(ChunkDirError::Body)?;
            file.write_all(&data)
                .await
                .map_err(io_err("write", pending))?;
            bytes += data.len() as u64;
        }
        file.sync_all().await.map_err(io_err("sync", pending))?;
        Ok(bytes)
    }
}

/// Makes a rename in `dir` durable, so a chunk the state counts cannot vanish in a crash.
async fn sync_dir(dir: &Path) -> Result<(), ChunkDirError> {
    if cfg!(unix) {
        let handle = File::open(dir).await.map_err(io_err("open", dir))?;
        handle.sync_all().await.map_err(io_err("sync", dir))?;
    }
    Ok(())
}

#[async_trait]
impl DataStore for ChunkDirStore {
    fn name(&self) -> &'static str {
        "chunk-dir"
    }

    async fn create(&self, info: &UploadInfo) -> Result<StoreState> {
        let dir = self.dir(&info.id);
        fs::create_dir_all(&dir)
            .await
            .map_err(io_err("create", &dir))?;
        Ok(StoreState::new())
    }

    async fn write(&self, info: &UploadInfo, mut body: ByteStream<'_>) -> Result<Written> {
        self.cut_back(&info.id, info.offset).await?;
        let dir = self.dir(&info.id);
        let pending = dir.join(format!("{:020}.{PENDING}", info.offset));
        let bytes = match Self::receive(&pending, &mut body).await {
            Ok(bytes) => bytes,
            Err(e) => {
                discard(&pending).await?;
                return Err(e.into());
            }
        };
        if bytes == 0 {
            discard(&pending).await?;
            return Ok(Written {
                bytes: 0,
                store: info.store.clone(),
            });
        }
        let chunk = dir.join(format!("{:020}.{CHUNK}", info.offset));
        fs::rename(&pending, &chunk)
            .await
            .map_err(io_err("rename", &pending))?;
        sync_dir(&dir).await?;
        tracing::debug!(upload.id = %info.id, offset = info.offset, bytes, "chunk stored");
        Ok(Written {
            bytes,
            store: info.store.clone(),
        })
    }

    /// The chunks stay as they are; finishing checks they add up, so a read never comes
    /// up short.
    async fn finish(&self, info: &UploadInfo) -> Result<StoreState> {
        let mut at = 0;
        for chunk in self.list(&info.id).await?.0 {
            if chunk.start != at {
                break;
            }
            at += chunk.len;
        }
        if at != info.offset {
            return Err(ChunkDirError::Gap {
                id: info.id.clone(),
                at,
                offset: info.offset,
            }
            .into());
        }
        Ok(info.store.clone())
    }

    async fn read(&self, info: &UploadInfo, range: Range<u64>) -> Result<ByteStream<'static>> {
        // Which bytes of which chunk: (file, where in it, how many).
        let mut plan = Vec::new();
        for chunk in self.list(&info.id).await?.0 {
            let (from, to) = (
                range.start.max(chunk.start),
                range.end.min(chunk.start + chunk.len),
            );
            if from < to {
                plan.push((chunk.path, from - chunk.start, to - from));
            }
        }
        // Each chunk is opened only when the one before is sent: one open file per read,
        // however many chunks the upload has.
        let stream = futures::stream::iter(plan)
            .then(|(path, skip, len)| async move {
                let mut file = File::open(&path).await?;
                file.seek(SeekFrom::Start(skip)).await?;
                Ok::<_, io::Error>(ReaderStream::with_capacity(file.take(len), READ_BUFFER))
            })
            .try_flatten();
        Ok(stream.boxed())
    }

    async fn delete(&self, info: &UploadInfo) -> Result<()> {
        let dir = self.dir(&info.id);
        match fs::remove_dir_all(&dir).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &dir)(e).into()),
            _ => Ok(()),
        }
    }
}

/// Removes a file that may already be gone.
async fn discard(path: &Path) -> Result<(), ChunkDirError> {
    match fs::remove_file(path).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", path)(e)),
        _ => Ok(()),
    }
}
