//! Integrity fields (RFC 9530): `Content-Digest` checks one request's body,
//! `Repr-Digest` the whole upload at completion, and `Want-Repr-Digest` asks for the
//! stored upload's digest in the completing response. sha-256 and sha-512 are spoken;
//! other algorithms are ignored, as the RFC asks of recipients.

use chunkd_core::{Caller, ChecksumAlgorithm, UploadId};
use futures::StreamExt;
use http::HeaderMap;

use super::fields::{self, Bare, Member};
use super::problem::Problem;

pub(crate) const REPR_DIGEST_KEY: &str = "repr-digest";

/// One digest in a supported algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Digest {
    pub algorithm: ChecksumAlgorithm,
    pub value: Vec<u8>,
}

fn algorithm(key: &str) -> Option<ChecksumAlgorithm> {
    match key {
        "sha-256" => Some(ChecksumAlgorithm::Sha256),
        "sha-512" => Some(ChecksumAlgorithm::Sha512),
        _ => None,
    }
}

fn key(algorithm: ChecksumAlgorithm) -> &'static str {
    match algorithm {
        ChecksumAlgorithm::Sha512 => "sha-512",
        _ => "sha-256",
    }
}

impl Digest {
    /// The field value, `sha-256=:...:`.
    pub(crate) fn field(&self) -> String {
        format!(
            "{}={}",
            key(self.algorithm),
            fields::byte_sequence(&self.value)
        )
    }

    pub(crate) fn parse_field(value: &str) -> Option<Digest> {
        Self::from_value(value.as_bytes()).ok().flatten()
    }

    /// The strongest supported digest in a field; `Ok(None)` when it names none we speak.
    fn from_value(value: &[u8]) -> Result<Option<Digest>, Problem> {
        let members = fields::dictionary(value)
            .ok_or_else(|| Problem::bad_request("the digest field is not a valid dictionary"))?;
        let mut best: Option<Digest> = None;
        for (name, member) in members {
            let Some(algorithm) = algorithm(&name) else {
                continue;
            };
            let Member::Item(Bare::Bytes(value)) = member else {
                return Err(Problem::bad_request(format!(
                    "the {name} digest must be a byte sequence"
                )));
            };
            if value.len() != algorithm.digest_len() {
                return Err(Problem::bad_request(format!(
                    "the {name} digest has the wrong length"
                )));
            }
            if best
                .as_ref()
                .is_none_or(|b| b.algorithm == ChecksumAlgorithm::Sha256)
            {
                best = Some(Digest { algorithm, value });
            }
        }
        Ok(best)
    }

    /// The digest named by header `name`, if present and in an algorithm we speak.
    pub(crate) fn from_headers(headers: &HeaderMap, name: &str) -> Result<Option<Digest>, Problem> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => Self::from_value(v.as_bytes()),
        }
    }
}

/// The algorithm a `Want-Repr-Digest` prefers among those we speak (RFC 9530 section 4:
/// integer preferences, 0 meaning "not acceptable").
pub(crate) fn wanted(headers: &HeaderMap) -> Option<ChecksumAlgorithm> {
    let members = fields::dictionary(headers.get("want-repr-digest")?.as_bytes())?;
    members
        .into_iter()
        .filter_map(|(name, member)| match member {
            Member::Item(Bare::Integer(p)) if p > 0 => Some((algorithm(&name)?, p)),
            _ => None,
        })
        .max_by_key(|(_, p)| *p)
        .map(|(a, _)| a)
}

/// Digest of a finished upload, read back from storage.
pub(crate) async fn of_upload(
    uploads: &Caller,
    id: &UploadId,
    algorithm: ChecksumAlgorithm,
) -> Result<Digest, chunkd_core::Error> {
    let (_, mut stream) = uploads.read(id, None).await?;
    let mut hasher = algorithm.hasher();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| chunkd_core::Error::backend("reading the upload back", e))?;
        hasher.update(&chunk);
    }
    Ok(Digest {
        algorithm,
        value: hasher.finalize(),
    })
}
