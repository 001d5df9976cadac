//! A chunk's request body, streamed from the file in small pieces: a chunk of any size
//! costs one read buffer, never the chunk (or the file) in memory.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::error::{Error, Result};

const PIECE: usize = 64 * 1024;

/// Called with the size of each piece as it is handed to the connection.
pub(crate) type Sent = Arc<dyn Fn(u64) + Send + Sync>;

/// When the connection last took a piece of a body (or the body began, or ended): how a
/// stalled upload is told from a slow one.
#[derive(Clone, Debug)]
pub(crate) struct Pulse(Arc<Mutex<Instant>>);

impl Pulse {
    pub(crate) fn new() -> Pulse {
        Pulse(Arc::new(Mutex::new(Instant::now())))
    }

    fn beat(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// How long since the last piece.
    pub(crate) fn idle(&self) -> Duration {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }
}

/// `len` bytes of `path` from `start`; a file that ends early fails the body (and so
/// the request) rather than sending less than `Content-Length` promised. `pulse` beats
/// with each piece taken and at the end.
pub(crate) async fn file_range(
    path: &Path,
    start: u64,
    len: u64,
    sent: Sent,
    pulse: Pulse,
) -> Result<reqwest::Body> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::file(path, e))?;
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| Error::file(path, e))?;
    let stream = futures::stream::try_unfold((file.take(len), 0u64), move |(mut reader, read)| {
        let (sent, pulse) = (sent.clone(), pulse.clone());
        async move {
            pulse.beat();
            let mut piece = bytes::BytesMut::with_capacity(PIECE);
            let n = reader.read_buf(&mut piece).await?;
            if n == 0 {
                if read < len {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was being uploaded",
                    ));
                }
                return Ok(None);
            }
            sent(n as u64);
            Ok(Some((piece.freeze(), (reader, read + n as u64))))
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}
