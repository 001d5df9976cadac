//! Who is uploading: from a header a trusted proxy sets, or from a signed bearer token
//! (an HS256 JSON Web Token, which any web framework can mint). Front ends read the
//! [`Owner`] that [`identify`] found with [`owner_of`], and act through [`caller`]: the
//! engine checks ownership, no front end compares owners.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chunkd_core::{Caller, Uploads};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, Method, header};
use serde::Deserialize;
use sha2::Sha256;

use crate::refusal::Refusal;

pub use chunkd_core::Owner;

/// What the identity layer found for a request, kept in its extensions.
#[derive(Clone, Debug)]
struct Identified(Result<Owner, IdentityError>);

/// Who a request acts for: anonymous when no identity layer ran, a refusal (rendered by
/// the front end in its protocol's terms) when identification failed.
pub fn owner_of(req: &Request) -> Result<Owner, Refusal> {
    owner_in(req.extensions())
}

/// [`owner_of`] for extractors, which see a request's parts.
pub(crate) fn owner_in(extensions: &http::Extensions) -> Result<Owner, Refusal> {
    match extensions.get::<Identified>() {
        None => Ok(Owner::anonymous()),
        Some(Identified(found)) => found.clone().map_err(Refusal::from),
    }
}

/// The engine as the request's identity sees it.
pub fn caller(uploads: &Uploads, req: &Request) -> Result<Caller, Refusal> {
    Ok(uploads.for_owner(owner_of(req)?))
}

/// Where identities come from.
#[derive(Clone)]
pub enum Source {
    /// Everyone is anonymous.
    None,
    /// A header set by a front proxy that authenticated the user (e.g. `X-Forwarded-User`).
    /// Only safe when clients cannot reach chunkd except through that proxy.
    TrustedHeader(HeaderName),
    /// `Authorization: Bearer <JWT>` signed with HS256 and this key; the user is `sub`.
    Token(Arc<Vec<u8>>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::None => f.write_str("None"),
            Source::TrustedHeader(h) => write!(f, "TrustedHeader({h})"),
            Source::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// How requests are identified.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the identity comes from.
    pub source: Source,
    /// Refuse (403) requests without a valid identity.
    pub required: bool,
}

/// Why a request could not be identified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No identity where one is required.
    #[error("authentication required")]
    Missing,
    /// An identity was sent but is not acceptable (the reason says why).
    #[error("invalid identity: {0}")]
    Invalid(&'static str),
}

const MAX_IDENTITY: usize = 255;

impl Config {
    /// Who `headers` identify: anonymous when nothing is sent and none is required.
    pub fn identify(&self, headers: &HeaderMap) -> Result<Owner, IdentityError> {
        let identity = match &self.source {
            Source::None => None,
            Source::TrustedHeader(name) => match headers.get(name) {
                None => None,
                Some(v) => Some(
                    v.to_str()
                        .map_err(|_| IdentityError::Invalid("identity header is not text"))?
                        .trim()
                        .to_owned(),
                ),
            },
            Source::Token(key) => match headers.get(header::AUTHORIZATION) {
                None => None,
                Some(v) => {
                    let v = v
                        .to_str()
                        .map_err(|_| IdentityError::Invalid("malformed Authorization"))?;
                    let token = v
                        .strip_prefix("Bearer ")
                        .ok_or(IdentityError::Invalid("expected a Bearer token"))?;
                    Some(verify_token(key, token.trim(), now())?)
                }
            },
        };
        let identity = identity.filter(|i| !i.is_empty());
        if let Some(i) = &identity
            && (i.len() > MAX_IDENTITY || i.chars().any(char::is_control))
        {
            return Err(IdentityError::Invalid("identity too long or not printable"));
        }
        match (identity, self.required) {
            (None, true) => Err(IdentityError::Missing),
            (None, false) => Ok(Owner::anonymous()),
            (Some(name), _) => Ok(Owner::named(name)),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct TokenHeader {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: Option<u64>,
    nbf: Option<u64>,
}

/// Checks an HS256 JWT and returns its subject.
pub fn verify_token(key: &[u8], token: &str, now: u64) -> Result<String, IdentityError> {
    use IdentityError::Invalid;
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Invalid("a token has three parts"));
    };
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| Invalid("token is not base64url"))
    };
    let header: TokenHeader =
        serde_json::from_slice(&decode(head)?).map_err(|_| Invalid("token header"))?;
    if header.alg != "HS256" {
        return Err(Invalid("token must be signed with HS256"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| Invalid("key"))?;
    mac.update(head.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac.verify_slice(&decode(sig)?)
        .map_err(|_| Invalid("bad token signature"))?;
    let claims: Claims =
        serde_json::from_slice(&decode(body)?).map_err(|_| Invalid("token claims need sub"))?;
    if claims.exp.is_some_and(|exp| now >= exp) {
        return Err(Invalid("token expired"));
    }
    if claims.nbf.is_some_and(|nbf| now < nbf) {
        return Err(Invalid("token not valid yet"));
    }
    Ok(claims.sub)
}

/// Adds identification to `router`: each request carries what was found, which front
/// ends read with [`owner_of`] and refuse, in their own protocol's terms, when it failed.
/// CORS preflights and discovery (`OPTIONS`) are never identified.
pub fn identify<S: Clone + Send + Sync + 'static>(router: Router<S>, config: Config) -> Router<S> {
    if matches!(config.source, Source::None) && !config.required {
        // Nobody is identified: every request is anonymous, nothing to add.
        return router;
    }
    let config = Arc::new(config);
    router.layer(middleware::from_fn(move |mut req: Request, next: Next| {
        let config = config.clone();
        async move {
            if req.method() != Method::OPTIONS {
                let found = config.identify(req.headers());
                req.extensions_mut().insert(Identified(found));
            }
            next.run(req).await
        }
    }))
}

/// Says who `req` acts for, for an application that authenticates requests itself (its
/// own sessions, in its own middleware) instead of through [`identify`]. An `Err` makes
/// the front ends refuse the request in their protocol's terms. Where both run, the one
/// nearer the routes decides.
pub fn set_identity(req: &mut Request, found: Result<Owner, IdentityError>) {
    req.extensions_mut().insert(Identified(found));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(key: &[u8], header: &str, claims: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(header);
        let c = URL_SAFE_NO_PAD.encode(claims);
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("key");
        mac.update(format!("{h}.{c}").as_bytes());
        format!(
            "{h}.{c}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    #[test]
    fn debug_hides_the_token_key() {
        let config = Config {
            source: Source::Token(Arc::new(b"token-key-0123456789abcdef".to_vec())),
            required: true,
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("token-key"), "{shown}");
        assert!(shown.contains("Token(<redacted>)"), "{shown}");
    }

    #[test]
    fn accepts_a_valid_token() {
        let t = token(b"k", HS256, r#"{"sub":"alice","exp":2000}"#);
        assert_eq!(verify_token(b"k", &t, 1000), Ok("alice".to_owned()));
    }

    #[test]
    fn refuses_forged_expired_and_unsigned_tokens() {
        let t = token(b"other key", HS256, r#"{"sub":"alice"}"#);
        assert!(verify_token(b"k", &t, 1000).is_err(), "wrong key");
        let t = token(b"k", HS256, r#"{"sub":"alice","exp":1000}"#);
        assert!(verify_token(b"k", &t, 1000).is_err(), "expired");
        let t = token(b"k", HS256, r#"{"sub":"alice","nbf":1001}"#);
        assert!(verify_token(b"k", &t, 1000).is_err(), "not yet valid");
        let t = token(b"k", r#"{"alg":"none"}"#, r#"{"sub":"alice"}"#);
        assert!(verify_token(b"k", &t, 1000).is_err(), "alg none");
        let t = token(b"k", HS256, r#"{"user":"alice"}"#);
        assert!(verify_token(b"k", &t, 1000).is_err(), "no sub");
        // Altering the claims breaks the signature.
        let good = token(b"k", HS256, r#"{"sub":"alice"}"#);
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(r#"{"sub":"bob"}"#),
            parts[2]
        );
        assert!(verify_token(b"k", &forged, 1000).is_err(), "altered");
        assert!(verify_token(b"k", "a.b", 1000).is_err());
    }

    #[test]
    fn required_identity_refuses_anonymous_requests() {
        let config = Config {
            source: Source::TrustedHeader(HeaderName::from_static("x-user")),
            required: true,
        };
        assert_eq!(
            config.identify(&HeaderMap::new()),
            Err(IdentityError::Missing)
        );
        let mut h = HeaderMap::new();
        h.insert("x-user", "carol".parse().expect("value"));
        assert_eq!(config.identify(&h), Ok(Owner::named("carol")));
        h.insert("x-user", "x".repeat(300).parse().expect("value"));
        assert!(config.identify(&h).is_err());
    }

    #[test]
    fn an_application_sets_the_identity_itself() {
        let mut req = Request::new(axum::body::Body::empty());
        assert_eq!(owner_of(&req).ok(), Some(Owner::anonymous()));
        set_identity(&mut req, Ok(Owner::named("dana")));
        assert_eq!(owner_of(&req).ok(), Some(Owner::named("dana")));
        set_identity(&mut req, Err(IdentityError::Missing));
        let refusal = owner_of(&req).expect_err("an unidentified request is refused");
        assert_eq!(refusal.status, http::StatusCode::FORBIDDEN);
    }

    proptest::proptest! {
        #[test]
        fn token_verification_never_panics(t in ".{0,200}") {
            let _ = verify_token(b"k", &t, 0);
        }
    }
}
