//! Upload identifiers signed with a server key (HMAC-SHA256) and bound to their owner:
//! `<32 hex random>-<24 hex tag>`. A forged, altered or foreign identifier fails
//! verification. `POST {path}` issues one, `GET {path}/{id}` verifies one; form uploads
//! accept only such progress ids when a signer is configured.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use http::StatusCode;
use serde_json::json;
use sha2::Sha256;

use crate::hex;
use crate::identity::owner_of;
use crate::refusal::Refusal;

const RANDOM_HEX: usize = 32;
const TAG_BYTES: usize = 12;

/// Issues and checks signed identifiers.
#[derive(Clone)]
pub struct Signer {
    key: Arc<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

/// Why an identifier is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    /// Not of the shape this signer issues.
    #[error("malformed identifier")]
    Malformed,
    /// The tag does not match.
    #[error("identifier not issued here, altered, or issued to someone else")]
    BadSignature,
}

impl Signer {
    /// A signer with `key`; instances that share a key accept each other's ids.
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Signer {
            key: Arc::new(key.into()),
        }
    }

    fn tag(&self, owner: Option<&str>, random: &str) -> Vec<u8> {
        // HMAC accepts keys of any length; an empty key only weakens, never panics.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return Vec::new();
        };
        mac.update(owner.unwrap_or("").as_bytes());
        mac.update(&[0]);
        mac.update(random.as_bytes());
        mac.finalize().into_bytes()[..TAG_BYTES].to_vec()
    }

    /// A fresh identifier for `owner`.
    pub fn issue(&self, owner: Option<&str>) -> String {
        let random = chunkd_core::UploadId::generate().to_string();
        format!("{random}-{}", hex::encode(&self.tag(owner, &random)))
    }

    /// Whether `id` was issued by this key to `owner`.
    pub fn verify(&self, owner: Option<&str>, id: &str) -> Result<(), InvalidId> {
        let (random, tag) = id.split_once('-').ok_or(InvalidId::Malformed)?;
        let is_hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if random.len() != RANDOM_HEX
            || tag.len() != TAG_BYTES * 2
            || !is_hex(random)
            || !is_hex(tag)
        {
            return Err(InvalidId::Malformed);
        }
        let expected = hex::encode(&self.tag(owner, random));
        // Compare without an early exit, so timing says nothing about the tag.
        let same = expected
            .bytes()
            .zip(tag.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if same {
            Ok(())
        } else {
            Err(InvalidId::BadSignature)
        }
    }
}

/// `POST {path}` issues an identifier; `GET {path}/{id}` verifies it.
pub fn router<S>(signer: Signer, path: &str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let path = format!("/{}", path.trim_matches('/'));
    let router = Router::new()
        .route(&path, post(issue))
        .route(&format!("{path}/{{id}}"), get(verify))
        .with_state(signer);
    crate::accounting::account(router, "signing")
}

fn unidentified(refusal: Refusal) -> Response {
    (refusal.status, Json(json!({ "error": refusal.message }))).into_response()
}

async fn issue(State(signer): State<Signer>, req: Request) -> Response {
    let owner = match owner_of(&req) {
        Ok(owner) => owner,
        Err(refusal) => return unidentified(refusal),
    };
    let id = signer.issue(owner.as_deref());
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

async fn verify(State(signer): State<Signer>, Path(id): Path<String>, req: Request) -> Response {
    let owner = match owner_of(&req) {
        Ok(owner) => owner,
        Err(refusal) => return unidentified(refusal),
    };
    match signer.verify(owner.as_deref(), &id) {
        Ok(()) => Json(json!({ "id": id, "valid": true })).into_response(),
        Err(e) => (
            StatusCode::FORBIDDEN,
            Json(json!({ "id": id, "valid": false, "error": e.to_string() })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn debug_hides_the_key() {
        let shown = format!("{:?}", Signer::new(b"signing-key-0123".to_vec()));
        assert_eq!(shown, "Signer(<redacted>)");
    }

    #[test]
    fn refuses_forged_altered_and_foreign_ids() {
        let signer = Signer::new(b"server key".to_vec());
        let id = signer.issue(Some("alice"));
        assert_eq!(id.len(), 57);
        assert_eq!(signer.verify(Some("alice"), &id), Ok(()));
        assert_eq!(
            signer.verify(Some("bob"), &id),
            Err(InvalidId::BadSignature),
            "foreign"
        );
        assert_eq!(
            signer.verify(None, &id),
            Err(InvalidId::BadSignature),
            "anonymous"
        );
        let mut altered = id.clone().into_bytes();
        altered[3] = if altered[3] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            signer.verify(Some("alice"), std::str::from_utf8(&altered).unwrap_or("")),
            Err(InvalidId::BadSignature)
        );
        let other_key = Signer::new(b"another key".to_vec()).issue(Some("alice"));
        assert_eq!(
            signer.verify(Some("alice"), &other_key),
            Err(InvalidId::BadSignature),
            "forged"
        );
        assert_eq!(
            signer.verify(Some("alice"), "abc"),
            Err(InvalidId::Malformed)
        );
    }

    proptest! {
        #[test]
        fn random_strings_never_verify(s in "[0-9a-f]{32}-[0-9a-f]{24}|.{0,80}") {
            let signer = Signer::new(b"k".to_vec());
            prop_assert!(signer.verify(None, &s).is_err());
        }
    }
}
