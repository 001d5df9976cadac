//! Upload bytes as files on local disk.
//!
//! An open upload is `<root>/<id>.part`; finishing renames it to `<root>/<id>`. Ids are
//! validated [`UploadId`]s (letters, digits, `-`, `_`), so a path can never leave `root`.

use std::io::{self, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chunkd_core::{
    ByteStream, Concat, DataStore, Error, Result, StoreState, UploadId, UploadInfo, Written,
};
use futures::StreamExt;
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::sync::SyncPolicy;

const WRITE_BUFFER: usize = 1 << 20;
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
        Error::backend("fs", e)
    }
}

fn io_err<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> FsError + 'p {
    move |source| FsError::Io {
        op,
        path: path.to_owned(),
        source,
    }
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

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn part_path(&self, id: &UploadId) -> PathBuf {
        self.root.join(format!("{id}.part"))
    }

    fn final_path(&self, id: &UploadId) -> PathBuf {
        self.root.join(id.as_str())
    }

    async fn sync_dir(&self) -> Result<()> {
        if self.sync == SyncPolicy::Always {
            let root = self.root.clone();
            tokio::task::spawn_blocking(move || std::fs::File::open(&root)?.sync_all())
                .await
                .map_err(|e| Error::backend("fs", e))?
                .map_err(io_err("sync directory", &self.root))?;
        }
        Ok(())
    }
}

#[async_trait]
impl DataStore for FsStore {
    fn name(&self) -> &'static str {
        "fs"
    }

    async fn create(&self, info: &UploadInfo) -> Result<StoreState> {
        let path = self.part_path(&info.id);
        tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => Error::AlreadyExists(info.id.clone()),
                _ => io_err("create", &path)(e).into(),
            })?;
        Ok(StoreState::new())
    }

    async fn write(&self, info: &UploadInfo, mut body: ByteStream<'_>) -> Result<Written> {
        let path = self.part_path(&info.id);
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => Error::NotFound(info.id.clone()),
                _ => io_err("open", &path)(e).into(),
            })?;
        let actual = file.metadata().await.map_err(io_err("stat", &path))?.len();
        if actual < info.offset {
            return Err(FsError::Truncated {
                path,
                actual,
                expected: info.offset,
            }
            .into());
        }
        if actual > info.offset {
            // Bytes written before a crash but never acknowledged: drop them.
            file.set_len(info.offset)
                .await
                .map_err(io_err("truncate", &path))?;
        }
        file.seek(SeekFrom::Start(info.offset))
            .await
            .map_err(io_err("seek", &path))?;

        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut bytes = 0u64;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) => {
                    out.write_all(&chunk)
                        .await
                        .map_err(io_err("write", &path))?;
                    bytes += chunk.len() as u64;
                }
                Err(abandon) => {
                    let file = out.into_inner();
                    file.set_len(info.offset)
                        .await
                        .map_err(io_err("truncate", &path))?;
                    return Err(Error::backend("fs", abandon));
                }
            }
        }
        out.flush().await.map_err(io_err("write", &path))?;
        let file = out.into_inner();
        if self.sync == SyncPolicy::Always && bytes > 0 {
            file.sync_data().await.map_err(io_err("fsync", &path))?;
        }
        Ok(Written {
            bytes,
            store: info.store.clone(),
        })
    }

    async fn finish(&self, info: &UploadInfo) -> Result<StoreState> {
        let from = self.part_path(&info.id);
        let to = self.final_path(&info.id);
        match tokio::fs::rename(&from, &to).await {
            Ok(()) => {}
            // Already renamed by an earlier attempt that crashed before saving state.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && tokio::fs::try_exists(&to).await.unwrap_or(false) => {}
            Err(e) => return Err(io_err("rename", &from)(e).into()),
        }
        self.sync_dir().await?;
        Ok(info.store.clone())
    }

    async fn read(&self, info: &UploadInfo, range: Range<u64>) -> Result<ByteStream<'static>> {
        let path = self.final_path(&info.id);
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
        for path in [self.part_path(&info.id), self.final_path(&info.id)] {
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
    async fn concat(&self, target: &UploadInfo, parts: &[UploadInfo]) -> Result<StoreState> {
        let target_path = self.part_path(&target.id);
        let sources: Vec<PathBuf> = parts.iter().map(|p| self.final_path(&p.id)).collect();
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
        Ok(target.store.clone())
    }
}
