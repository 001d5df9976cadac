//! Uploading files: discovery, then for each file either resuming its remembered
//! upload or creating a new one (several partial ones joined at the end when sent in
//! parallel), remembered in the state file before its first byte is sent.

mod part;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use url::Url;

use crate::checksum::Algorithm;
use crate::error::{Error, Result};
use crate::fingerprint::{FileFacts, Fingerprint};
use crate::http::{self, Attempt, Fault, Http, Timeouts};
use crate::metadata::Metadata;
use crate::protocol::{Capabilities, Protocol, Remote, Server};
use crate::retry::Backoff;
use crate::state::{self, Entry, Part, StateFile};

use part::{Sender, Tally};

/// How to upload.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The creation URL (tus) or upload collection (IETF draft).
    pub endpoint: Url,
    /// The protocol to speak.
    pub protocol: Protocol,
    /// Bytes per PATCH.
    pub chunk_size: u64,
    /// Parts sent at once (tus concatenation); 1 sends one upload.
    pub parallel: usize,
    /// A checksum sent with each chunk.
    pub checksum: Option<Algorithm>,
    /// Metadata beyond the defaults (`filename`, `filetype`), which it overrides.
    pub metadata: Metadata,
    /// Headers sent with every request (tokens).
    pub headers: HeaderMap,
    /// Failed attempts in a row tolerated before giving up.
    pub retries: u32,
    /// Waits between attempts.
    pub backoff: Backoff,
    /// How long a request may take, or a chunk's body stall.
    pub timeouts: Timeouts,
    /// Where unfinished uploads are remembered.
    pub state: StateFile,
}

impl Settings {
    /// Defaults for `endpoint`: tus, 8 MiB chunks, one part, no checksum, 5 retries,
    /// 60 s deadlines and stall time.
    pub fn new(endpoint: Url, state: StateFile) -> Settings {
        Settings {
            endpoint,
            protocol: Protocol::Tus,
            chunk_size: 8 << 20,
            parallel: 1,
            checksum: None,
            metadata: Metadata::new(),
            headers: HeaderMap::new(),
            retries: 5,
            backoff: Backoff::default(),
            timeouts: Timeouts::default(),
            state,
        }
    }
}

/// What discovery settled: the settings as this server can honour them.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Parts per file (1 when the server cannot concatenate).
    pub parallel: usize,
    /// The checksum sent with each chunk.
    pub checksum: Option<Algorithm>,
    /// What the server announced.
    pub capabilities: Capabilities,
    /// Settings changed to fit the server, in words.
    pub notes: Vec<String>,
}

/// A finished upload.
#[derive(Clone, Debug)]
pub struct Uploaded {
    /// Its URL.
    pub url: Url,
    /// The file's size.
    pub size: u64,
    /// Where a remembered upload was resumed, if it was.
    pub resumed_at: Option<u64>,
    /// What went wrong after the upload finished (its entry could not be forgotten, the
    /// file could not be looked at again), in words.
    pub warnings: Vec<String>,
}

/// A cancelled upload.
#[derive(Clone, Debug)]
pub struct Cancelled {
    /// What was remembered of it (now forgotten).
    pub entry: Entry,
    /// Whether the server terminated it; `false` when it cannot terminate uploads
    /// (405), so they stay there until it expires them.
    pub terminated: bool,
}

/// Told how one file's upload goes. Every method has an empty default.
pub trait Observer: Send + Sync {
    /// Sending begins: `offset` of `size` bytes are on the server already.
    fn started(&self, _size: u64, _offset: u64, _resumed: bool) {}
    /// `sent` bytes in all are on their way or on the server.
    fn progress(&self, _sent: u64) {}
    /// Attempt `attempt` failed with `error`; the next comes after `delay`.
    fn retrying(&self, _error: &Error, _attempt: u32, _delay: Duration) {}
    /// Something the user should know that does not stop the upload, in one line.
    fn warning(&self, _message: &str) {}
}

/// An [`Observer`] that ignores everything.
pub struct Unobserved;

impl Observer for Unobserved {}

/// A resumable upload client for one endpoint.
#[derive(Clone, Debug)]
pub struct Client {
    settings: Settings,
    server: Server,
}

impl Client {
    /// A client; nothing is sent until asked.
    pub fn new(settings: Settings) -> Result<Client> {
        let http = Http::new(
            &settings.endpoint,
            settings.headers.clone(),
            settings.timeouts,
        )?;
        let server = Server {
            http,
            endpoint: settings.endpoint.clone(),
            protocol: settings.protocol,
        };
        Ok(Client { settings, server })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Asks the server what it supports and fits the settings to it: a checksum it
    /// does not list is an error; parallel parts without concatenation fall back to one.
    pub async fn discover(&self) -> Result<Plan> {
        let capabilities = self
            .retrying(&Unobserved, || self.server.discover())
            .await?;
        let mut notes = Vec::new();
        let mut parallel = self.settings.parallel.max(1);
        if parallel > 1 && !capabilities.has_extension("concatenation") {
            notes.push(match self.settings.protocol {
                Protocol::Ietf => {
                    "the IETF draft has no concatenation: sending one part".to_owned()
                }
                Protocol::Tus => {
                    "the server lacks the concatenation extension: sending one part".to_owned()
                }
            });
            parallel = 1;
        }
        let checksum = self.settings.checksum;
        if let Some(algorithm) = checksum {
            let name = algorithm.tus_name();
            // The extension requires sha1; some servers (rustus) list no algorithms.
            let listed = capabilities.checksums.iter().any(|c| c == name)
                || (capabilities.checksums.is_empty() && algorithm == Algorithm::Sha1);
            let extension =
                self.settings.protocol == Protocol::Ietf || capabilities.has_extension("checksum");
            if !listed || !extension {
                return Err(Error::Unsupported(format!(
                    "the server does not take {name} checksums (it lists: {})",
                    if capabilities.checksums.is_empty() {
                        "none".to_owned()
                    } else {
                        capabilities.checksums.join(", ")
                    }
                )));
            }
        }
        Ok(Plan {
            parallel,
            checksum,
            capabilities,
            notes,
        })
    }

    /// Uploads `path`, resuming its remembered upload if there is one.
    pub async fn upload(
        &self,
        path: &Path,
        plan: &Plan,
        observer: Arc<dyn Observer>,
    ) -> Result<Uploaded> {
        let facts = FileFacts::of(path)?;
        if let Some(max) = plan.capabilities.max_size
            && facts.size > max
        {
            return Err(Error::TooLarge {
                size: facts.size,
                max,
            });
        }
        let fingerprint = Fingerprint::of(
            &facts,
            self.settings.endpoint.as_str(),
            self.settings.protocol.as_str(),
        )?;
        let metadata = self.settings.metadata.with_defaults_for(path);
        let (entry, remotes, resumed) = match self.resume(&fingerprint, &facts, &*observer).await? {
            Some((entry, remotes)) => (entry, remotes, true),
            None => {
                let (entry, remotes) = self
                    .create(&fingerprint, &facts, plan, &metadata, &*observer)
                    .await?;
                (entry, remotes, false)
            }
        };
        self.warn_of_origins(&entry, &*observer);
        let offset: u64 = remotes.iter().map(|r| r.offset).sum();
        observer.started(facts.size, offset, resumed);

        let tally = Arc::new(Tally::new(entry.parts.len(), observer.clone()));
        let urls = entry
            .parts
            .iter()
            .map(|p| parse_stored(&p.url))
            .collect::<Result<Vec<_>>>()?;
        let senders = entry.parts.iter().zip(&urls).zip(remotes).enumerate().map(
            |(index, ((part, url), remote))| {
                Sender {
                    client: self,
                    path,
                    facts: &facts,
                    part,
                    url: url.clone(),
                    index,
                    tally: tally.clone(),
                    checksum: plan.checksum,
                    observer: observer.clone(),
                }
                .run(remote)
            },
        );
        futures::future::try_join_all(senders).await?;

        let url = if let Some(url) = &entry.final_url {
            parse_stored(url)?
        } else if entry.concat {
            let url = self
                .retrying(&*observer, || self.server.concatenate(&urls, &metadata))
                .await?;
            tracing::debug!(upload.url = %url, "upload.concatenate");
            // Remembered at once: a run stopped from here on asks it, never makes another.
            let joined = Entry {
                final_url: Some(url.to_string()),
                ..entry.clone()
            };
            if let Err(e) = self.settings.state.remember(&fingerprint, &joined) {
                tracing::warn!(upload.url = %url, error = %e, "the final upload could not be remembered");
            }
            url
        } else {
            urls.into_iter()
                .next()
                .ok_or_else(|| Error::Protocol("no upload".to_owned()))?
        };
        // The upload is finished: what fails from here is told, not a failure.
        let mut warnings = Vec::new();
        if let Err(e) = self.settings.state.forget(&fingerprint) {
            warnings.push(format!("uploaded, but not forgotten ({e})"));
        }
        match FileFacts::of(path) {
            Ok(now) if now != facts => {
                return Err(Error::file(
                    path,
                    format!("the file changed while it was being uploaded; {url} holds a mix"),
                ));
            }
            Ok(_) => {}
            Err(e) => warnings.push(format!(
                "uploaded, but whether the file changed meanwhile is unknown ({e})"
            )),
        }
        Ok(Uploaded {
            url,
            size: facts.size,
            resumed_at: resumed.then_some(offset),
            warnings,
        })
    }

    /// One line when the upload URLs are on another origin than the endpoint (they do
    /// not get the `-H` headers).
    fn warn_of_origins(&self, entry: &Entry, observer: &dyn Observer) {
        let http = &self.server.http;
        let elsewhere = entry
            .parts
            .iter()
            .map(|p| &p.url)
            .chain(&entry.final_url)
            .filter_map(|u| Url::parse(u).ok())
            .find(|u| !http.same_origin(u));
        if let Some(url) = elsewhere {
            observer.warning(&format!(
                "the upload URL {url} is on another origin than {}{}",
                self.settings.endpoint,
                if http.has_headers() {
                    ": the -H headers are not sent to it"
                } else {
                    ""
                }
            ));
        }
    }

    /// The remembered upload of this file and where its parts stand; `None` if there
    /// is none, or the server no longer has it (then it is forgotten).
    async fn resume(
        &self,
        fingerprint: &Fingerprint,
        facts: &FileFacts,
        observer: &dyn Observer,
    ) -> Result<Option<(Entry, Vec<Remote>)>> {
        let entries = self.settings.state.entries()?;
        let Some(entry) = entries.get(fingerprint) else {
            return Ok(None);
        };
        let matches = entry.endpoint == self.settings.endpoint.as_str()
            && entry.protocol == self.settings.protocol
            && entry.size == facts.size
            && !entry.parts.is_empty()
            && entry.parts.iter().map(|p| p.length).sum::<u64>() == facts.size;
        if !matches {
            self.settings.state.forget(fingerprint)?;
            return Ok(None);
        }
        let mut entry = entry.clone();
        if let Some(joined) = &entry.final_url {
            let url = parse_stored(joined)?;
            match self
                .retrying(observer, || self.server.status(&url, facts.size))
                .await
            {
                Ok(remote) if remote.complete => {
                    tracing::debug!(upload.url = %url, "upload.resume: the final upload is complete");
                    let done = entry
                        .parts
                        .iter()
                        .map(|p| Remote {
                            offset: p.length,
                            complete: true,
                        })
                        .collect();
                    return Ok(Some((entry, done)));
                }
                Ok(remote) => {
                    return Err(Error::Protocol(format!(
                        "{url}, the final upload of a concatenation, holds {} of {} bytes",
                        remote.offset, facts.size
                    )));
                }
                Err(e) if http::is_gone(&e) => {
                    tracing::debug!(upload.url = %url, "the final upload is gone: joining the parts again");
                    entry.final_url = None;
                    self.settings.state.remember(fingerprint, &entry)?;
                }
                Err(e) => return Err(e),
            }
        }
        let mut remotes = Vec::new();
        for part in &entry.parts {
            let url = parse_stored(&part.url)?;
            match self
                .retrying(observer, || self.server.status(&url, part.length))
                .await
            {
                Ok(remote) => {
                    tracing::debug!(upload.url = %url, upload.offset = remote.offset, "upload.resume");
                    remotes.push(remote);
                }
                Err(e) if http::is_gone(&e) => {
                    tracing::debug!(upload.url = %url, "remembered upload is gone: starting afresh");
                    self.settings.state.forget(fingerprint)?;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some((entry, remotes)))
    }

    /// New uploads for the file, remembered before anything is sent.
    async fn create(
        &self,
        fingerprint: &Fingerprint,
        facts: &FileFacts,
        plan: &Plan,
        metadata: &Metadata,
        observer: &dyn Observer,
    ) -> Result<(Entry, Vec<Remote>)> {
        let lengths = split(facts.size, plan.parallel);
        let concat = lengths.len() > 1;
        let mut entry = Entry {
            path: facts.path.clone(),
            size: facts.size,
            endpoint: self.settings.endpoint.to_string(),
            protocol: self.settings.protocol,
            parts: Vec::new(),
            concat,
            final_url: None,
        };
        // Nothing is created that could not be remembered.
        state::storable(&entry)?;
        // Partial uploads carry no metadata: the final one does.
        let empty = Metadata::new();
        let mut parts = Vec::new();
        let mut start = 0;
        for length in lengths {
            let url = self
                .retrying(observer, || {
                    self.server
                        .create(length, if concat { &empty } else { metadata }, concat)
                })
                .await?;
            tracing::debug!(upload.url = %url, length, partial = concat, "upload.create");
            parts.push(Part {
                url: url.to_string(),
                start,
                length,
            });
            start += length;
        }
        entry.parts = parts;
        self.settings.state.remember(fingerprint, &entry)?;
        let remotes = entry
            .parts
            .iter()
            .map(|_| Remote {
                offset: 0,
                complete: false,
            })
            .collect();
        Ok((entry, remotes))
    }

    /// Terminates the remembered upload of `path` on this endpoint and forgets it; what
    /// was cancelled, or `None` when nothing was remembered. A server that cannot
    /// terminate uploads (405) keeps them, but the entry is forgotten all the same.
    pub async fn cancel(&self, path: &Path) -> Result<Option<Cancelled>> {
        let canonical = std::fs::canonicalize(path)
            .or_else(|_| std::path::absolute(path))
            .map_err(|e| Error::file(path, e))?;
        let entries = self.settings.state.entries()?;
        let Some((fingerprint, entry)) = entries
            .into_iter()
            .find(|(_, e)| e.path == canonical && e.endpoint == self.settings.endpoint.as_str())
        else {
            return Ok(None);
        };
        let server = Server {
            protocol: entry.protocol,
            ..self.server.clone()
        };
        let mut terminated = true;
        for url in entry
            .final_url
            .iter()
            .chain(entry.parts.iter().map(|p| &p.url))
        {
            let url = parse_stored(url)?;
            match self.retrying(&Unobserved, || server.terminate(&url)).await {
                Ok(()) => {}
                // No termination here: the upload stays until the server expires it.
                Err(e) if e.status() == Some(405) => terminated = false,
                Err(e) => return Err(e),
            }
        }
        self.settings.state.forget(&fingerprint)?;
        Ok(Some(Cancelled { entry, terminated }))
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries run out.
    async fn retrying<T, F, Fut>(&self, observer: &dyn Observer, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let mut failures = 0;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(Fault::Fail(e)) => return Err(e),
                Err(Fault::Retry(e, asked)) => {
                    failures += 1;
                    if failures > self.settings.retries {
                        return Err(e);
                    }
                    let delay = self.settings.backoff.delay_after(failures, asked);
                    observer.retrying(&e, failures, delay);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

fn parse_stored(url: &str) -> Result<Url> {
    Url::parse(url).map_err(|e| Error::Protocol(format!("remembered upload URL {url:?}: {e}")))
}

/// Part lengths for `size` bytes in at most `parts` parts, none empty (one empty part
/// for an empty file).
fn split(size: u64, parts: usize) -> Vec<u64> {
    let parts = (parts.max(1) as u64).min(size.max(1));
    let each = size / parts;
    let mut lengths = vec![each; parts as usize];
    if let Some(last) = lengths.last_mut() {
        *last += size - each * parts;
    }
    lengths
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_into_nonempty_parts() {
        assert_eq!(split(0, 4), [0]);
        assert_eq!(split(3, 4), [1, 1, 1]);
        assert_eq!(split(10, 3), [3, 3, 4]);
        assert_eq!(split(10, 1), [10]);
        for (size, parts) in [(1u64 << 40, 7usize), (12345, 64)] {
            let lengths = split(size, parts);
            assert_eq!(lengths.iter().sum::<u64>(), size);
            assert!(lengths.iter().all(|&l| l > 0));
        }
    }
}
