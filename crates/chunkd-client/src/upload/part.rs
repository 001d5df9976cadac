//! Sending one upload (a whole file, or one part of a concatenation) chunk by chunk,
//! resuming from the server's offset after each failure.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use url::Url;

use crate::body;
use crate::checksum::Algorithm;
use crate::error::{Error, Result};
use crate::fingerprint::FileFacts;
use crate::http::Fault;
use crate::protocol::{Chunk, Protocol, Remote};
use crate::state::Part;

use super::{Client, Observer};

/// A PATCH that moved less than this (or than its chunk, if smaller), short of the end,
/// counts as a failed attempt though it moved.
const MIN_PROGRESS: u64 = 64 * 1024;

/// Bytes sent of each part, summed for the observer.
pub(super) struct Tally {
    positions: Mutex<Vec<u64>>,
    observer: Arc<dyn Observer>,
}

impl Tally {
    pub(super) fn new(parts: usize, observer: Arc<dyn Observer>) -> Tally {
        Tally {
            positions: Mutex::new(vec![0; parts]),
            observer,
        }
    }

    fn change(&self, part: usize, change: impl FnOnce(&mut u64)) {
        let total = {
            let mut positions = self
                .positions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(p) = positions.get_mut(part) {
                change(p);
            }
            positions.iter().sum()
        };
        self.observer.progress(total);
    }

    pub(super) fn set(&self, part: usize, position: u64) {
        self.change(part, |p| *p = position);
    }

    fn add(&self, part: usize, n: u64) {
        self.change(part, |p| *p = p.saturating_add(n));
    }
}

/// One part's upload in progress.
pub(super) struct Sender<'a> {
    pub client: &'a Client,
    pub path: &'a Path,
    pub facts: &'a FileFacts,
    pub part: &'a Part,
    pub url: Url,
    pub index: usize,
    pub tally: Arc<Tally>,
    pub checksum: Option<Algorithm>,
    pub observer: Arc<dyn Observer>,
}

impl Sender<'_> {
    /// Sends what the server lacks, from where `remote` says it stands.
    pub(super) async fn run(self, remote: Remote) -> Result<()> {
        let length = self.part.length;
        let ietf = self.client.server.protocol == Protocol::Ietf;
        let chunk_size = self.client.settings.chunk_size.max(1);
        let (mut confirmed, mut complete) = (remote.offset, remote.complete);
        let mut failures = 0;
        // tus holds an upload complete at its length; the draft needs a last append.
        while !(complete || (!ietf && confirmed == length)) {
            self.tally.set(self.index, confirmed);
            let len = chunk_size.min(length - confirmed);
            let last = confirmed + len == length;
            let (error, asked) = match self.chunk(confirmed, len, last).await {
                Ok(offset) if offset > confirmed || (len == 0 && last) => {
                    // Progress resets the count only when it is real: a server taking a
                    // few bytes per request would cost size/few requests.
                    let moved = offset - confirmed;
                    if moved >= len.min(MIN_PROGRESS) || offset == length {
                        failures = 0;
                    } else {
                        failures += 1;
                        if failures > self.client.settings.retries {
                            return Err(Error::Protocol(format!(
                                "{} takes only {moved} of {len} bytes per request",
                                self.url
                            )));
                        }
                    }
                    confirmed = offset;
                    complete = if ietf {
                        last && offset == length
                    } else {
                        offset == length
                    };
                    continue;
                }
                Ok(_) => (
                    Error::Protocol(format!(
                        "{} took none of {len} bytes at offset {confirmed}",
                        self.url
                    )),
                    None,
                ),
                Err(Fault::Fail(e)) => return Err(e),
                Err(Fault::Retry(e, asked)) => (e, asked),
            };
            let remote = self.recover(error, asked, &mut failures, confirmed).await?;
            (confirmed, complete) = (remote.offset, remote.complete);
        }
        self.tally.set(self.index, length);
        Ok(())
    }

    async fn chunk(&self, offset: u64, len: u64, last: bool) -> Result<u64, Fault> {
        let at = self.part.start + offset;
        let checksum = match self.checksum {
            Some(algorithm) => Some((algorithm, algorithm.digest_range(self.path, at, len).await?)),
            None => None,
        };
        let (tally, index) = (self.tally.clone(), self.index);
        let pulse = body::Pulse::new();
        let body = body::file_range(
            self.path,
            at,
            len,
            Arc::new(move |n| tally.add(index, n)),
            pulse.clone(),
        )
        .await?;
        tracing::trace!(upload.url = %self.url, upload.offset = offset, len, last, "upload.write");
        let chunk = Chunk {
            offset,
            len,
            last,
            body,
            pulse,
            checksum,
        };
        self.client.server.append(&self.url, chunk).await
    }

    /// After a failed attempt: wait, then ask the server where the upload stands, until
    /// it answers or the retries run out.
    async fn recover(
        &self,
        mut error: Error,
        mut asked: Option<std::time::Duration>,
        failures: &mut u32,
        confirmed: u64,
    ) -> Result<Remote> {
        loop {
            *failures += 1;
            if *failures > self.client.settings.retries {
                return Err(error);
            }
            if FileFacts::of(self.path)? != *self.facts {
                return Err(Error::file(
                    self.path,
                    "the file changed while it was being uploaded",
                ));
            }
            let delay = self.client.settings.backoff.delay_after(*failures, asked);
            tracing::debug!(upload.url = %self.url, upload.offset = confirmed, attempt = *failures, error = %error, "upload.retry");
            self.observer.retrying(&error, *failures, delay);
            tokio::time::sleep(delay).await;
            match self.client.server.status(&self.url, self.part.length).await {
                Ok(remote) if remote.offset < confirmed => {
                    return Err(Error::Protocol(format!(
                        "{} went back from offset {confirmed} to {}",
                        self.url, remote.offset
                    )));
                }
                Ok(remote) => return Ok(remote),
                Err(Fault::Fail(e)) => return Err(e),
                Err(Fault::Retry(e, wait)) => (error, asked) = (e, wait),
            }
        }
    }
}
