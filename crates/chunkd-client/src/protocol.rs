//! The protocols spoken, and the requests an upload is made of, each sent in the chosen
//! protocol's terms (tus in `tus.rs`, the IETF draft in `ietf.rs`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::checksum::Algorithm;
use crate::error::Error;
use crate::http::{Attempt, Http};
use crate::metadata::Metadata;
use crate::{ietf, tus};

/// A resumable-upload protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// tus 1.0.0.
    #[default]
    Tus,
    /// The IETF resumable-upload draft, newest rules (no interop version announced).
    Ietf,
}

impl Protocol {
    /// `tus` or `ietf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tus => "tus",
            Protocol::Ietf => "ietf",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "tus" => Ok(Protocol::Tus),
            "ietf" => Ok(Protocol::Ietf),
            other => Err(Error::Invalid(format!("protocol {other:?}: tus or ietf"))),
        }
    }
}

/// What the server said it can do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// tus extensions (`Tus-Extension`); none for the IETF draft.
    pub extensions: Vec<String>,
    /// Checksum algorithms (`Tus-Checksum-Algorithm`); `sha256` for the IETF draft.
    pub checksums: Vec<String>,
    /// The largest upload (`Tus-Max-Size`, `Upload-Limit: max-size`).
    pub max_size: Option<u64>,
}

impl Capabilities {
    /// Whether the server lists tus extension `name`.
    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions.iter().any(|e| e == name)
    }
}

/// Where an upload stands on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Remote {
    pub offset: u64,
    /// Whether the server holds the upload complete.
    pub complete: bool,
}

/// One append: `len` bytes at `offset` of the upload.
pub(crate) struct Chunk {
    pub offset: u64,
    pub len: u64,
    /// Whether it ends the upload (the draft says so in `Upload-Complete`).
    pub last: bool,
    pub body: reqwest::Body,
    /// Beats as the body is taken.
    pub pulse: crate::body::Pulse,
    pub checksum: Option<(Algorithm, Vec<u8>)>,
}

/// One endpoint in one protocol.
#[derive(Clone, Debug)]
pub(crate) struct Server {
    pub http: Http,
    pub endpoint: Url,
    pub protocol: Protocol,
}

impl Server {
    pub async fn discover(&self) -> Attempt<Capabilities> {
        match self.protocol {
            Protocol::Tus => tus::discover(self).await,
            Protocol::Ietf => ietf::discover(self).await,
        }
    }

    /// A new upload of `length` bytes (a partial one for a concatenation).
    pub async fn create(&self, length: u64, metadata: &Metadata, partial: bool) -> Attempt<Url> {
        match self.protocol {
            Protocol::Tus => tus::create(self, length, metadata, partial).await,
            Protocol::Ietf => ietf::create(self, length, metadata).await,
        }
    }

    /// The final upload joining `parts` (tus concatenation).
    pub async fn concatenate(&self, parts: &[Url], metadata: &Metadata) -> Attempt<Url> {
        match self.protocol {
            Protocol::Tus => tus::concatenate(self, parts, metadata).await,
            Protocol::Ietf => {
                Err(Error::Unsupported("the IETF draft has no concatenation".to_owned()).into())
            }
        }
    }

    /// The upload's offset, for an upload of `length` bytes.
    pub async fn status(&self, url: &Url, length: u64) -> Attempt<Remote> {
        let remote = match self.protocol {
            Protocol::Tus => tus::status(self, url, length).await?,
            Protocol::Ietf => ietf::status(self, url, length).await?,
        };
        if remote.offset > length {
            return Err(Error::Protocol(format!(
                "{url} reports offset {} beyond the upload's {length} bytes",
                remote.offset
            ))
            .into());
        }
        Ok(remote)
    }

    /// Sends a chunk; the offset the server then holds.
    pub async fn append(&self, url: &Url, chunk: Chunk) -> Attempt<u64> {
        let (offset, len) = (chunk.offset, chunk.len);
        let new = match self.protocol {
            Protocol::Tus => tus::append(self, url, chunk).await?,
            Protocol::Ietf => ietf::append(self, url, chunk).await?,
        };
        // More than was sent, or less than the server had: no honest answer.
        if new > offset.saturating_add(len) || new < offset {
            return Err(Error::Protocol(format!(
                "{url} answered offset {new} to {len} bytes sent at offset {offset}"
            ))
            .into());
        }
        Ok(new)
    }

    /// Ends the upload; one already gone counts as ended.
    pub async fn terminate(&self, url: &Url) -> Attempt<()> {
        let mut request = self.http.request(reqwest::Method::DELETE, url);
        if self.protocol == Protocol::Tus {
            request = request.header("tus-resumable", tus::VERSION);
        }
        match self.http.send(request).await {
            Ok(_) => Ok(()),
            Err(crate::http::Fault::Fail(e)) if crate::http::is_gone(&e) => Ok(()),
            Err(fault) => Err(fault),
        }
    }
}
