//! Who is uploading: from a header a trusted proxy sets, or from a signed bearer token
//! (an HS256 JSON Web Token, which any web framework can mint). Front ends read the
//! [`Owner`] that [`identify`] puts into each request.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chunkd_core::{UploadId, Uploads};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, Method, StatusCode, header};
use serde::Deserialize;
use sha2::Sha256;

/// The identity a request acts for; `None` is anonymous.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owner(pub Option<String>);

impl Owner {
    /// The owner of `req`, anonymous when no identity layer ran.
    pub fn of(req: &Request) -> Owner {
        Self::identified(req).unwrap_or_default()
    }

    /// The owner when an identity layer ran; `None` when identities are not in use, so
    /// every upload is anonymous and ownership checks can be skipped.
    pub fn identified(req: &Request) -> Option<Owner> {
        req.extensions().get::<Owner>().cloned()
    }

    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether this identity may see an upload owned by `owner` (uploads are visible only
    /// to the identity that created them; anonymous uploads to anonymous requests).
    pub fn may_access(&self, owner: Option<&str>) -> bool {
        self.as_deref() == owner
    }
}

/// Whether an identified request names another identity's upload, which must look
/// absent to it. Checked before taking the upload's lock, which would make the owner's
/// running request stop (newest wins); without identities there is nothing to read.
/// `identified` is [`Owner::identified`] of the request.
pub(crate) async fn is_foreign(
    uploads: &Uploads,
    id: &UploadId,
    identified: Option<Owner>,
) -> bool {
    match identified {
        None => false,
        Some(owner) => uploads
            .info(id)
            .await
            .is_ok_and(|info| !owner.may_access(info.owner.as_deref())),
    }
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
    pub source: Source,
    /// Refuse (403) requests without a valid identity.
    pub required: bool,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("authentication required")]
    Missing,
    #[error("invalid identity: {0}")]
    Invalid(&'static str),
}

const MAX_IDENTITY: usize = 255;

impl Config {
    pub fn identify(&self, headers: &HeaderMap) -> Result<Option<String>, IdentityError> {
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
            (identity, _) => Ok(identity),
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

/// Adds identification to `router`: each request gets an [`Owner`] extension, or a 403
/// when identification fails. CORS preflights and discovery (`OPTIONS`) pass untouched.
pub fn identify<S: Clone + Send + Sync + 'static>(router: Router<S>, config: Config) -> Router<S> {
    if matches!(config.source, Source::None) && !config.required {
        // Nobody is identified: every request is anonymous, nothing to add.
        return router;
    }
    let config = Arc::new(config);
    router.layer(middleware::from_fn(move |mut req: Request, next: Next| {
        let config = config.clone();
        async move {
            if req.method() == Method::OPTIONS {
                return next.run(req).await;
            }
            match config.identify(req.headers()) {
                Ok(owner) => {
                    req.extensions_mut().insert(Owner(owner));
                    next.run(req).await
                }
                Err(err) => refuse(&err),
            }
        }
    }))
}

fn refuse(err: &IdentityError) -> Response {
    tracing::debug!(error = %err, "request refused");
    let mut res = (StatusCode::FORBIDDEN, format!("{err}\n")).into_response();
    // tus clients expect the version header on every answer.
    res.headers_mut()
        .insert("tus-resumable", http::HeaderValue::from_static("1.0.0"));
    res
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
        assert_eq!(config.identify(&h), Ok(Some("carol".to_owned())));
        h.insert("x-user", "x".repeat(300).parse().expect("value"));
        assert!(config.identify(&h).is_err());
    }

    proptest::proptest! {
        #[test]
        fn token_verification_never_panics(t in ".{0,200}") {
            let _ = verify_token(b"k", &t, 0);
        }
    }
}
