//! Bearer tokens: HS256 JSON Web Tokens, as any web framework can mint them, checked
//! against a key and rules (expiry required by default, optional audience and issuer).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::IdentityError;

/// The shortest key accepted: HS256 keys shorter than its output weaken it (RFC 7518
/// section 3.2).
pub const MIN_KEY_BYTES: usize = 32;

/// A key too short to sign tokens with.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a token key must be at least {MIN_KEY_BYTES} bytes")]
pub struct WeakKey;

/// How bearer tokens are checked.
#[derive(Clone)]
pub struct TokenRules {
    key: Arc<Vec<u8>>,
    /// When set, `aud` must name it (a string, or one entry of a list).
    pub audience: Option<String>,
    /// When set, `iss` must be it.
    pub issuer: Option<String>,
    /// Refuse tokens without `exp` (the default): a token that never expires can never
    /// be withdrawn.
    pub require_expiry: bool,
}

impl std::fmt::Debug for TokenRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRules")
            .field("key", &"<redacted>")
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("require_expiry", &self.require_expiry)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenHeader {
    alg: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: Option<u64>,
    nbf: Option<u64>,
    aud: Option<Audience>,
    iss: Option<String>,
}

impl TokenRules {
    /// Rules for tokens signed with `key`: expiry required, any audience and issuer.
    pub fn new(key: impl Into<Vec<u8>>) -> Result<Self, WeakKey> {
        let key = key.into();
        if key.len() < MIN_KEY_BYTES {
            return Err(WeakKey);
        }
        Ok(TokenRules {
            key: Arc::new(key),
            audience: None,
            issuer: None,
            require_expiry: true,
        })
    }

    /// The subject of `token` if it is signed with the key and passes the rules at
    /// `now` (seconds since the Unix epoch).
    pub fn verify(&self, token: &str, now: u64) -> Result<String, IdentityError> {
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
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| Invalid("key"))?;
        mac.update(head.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        mac.verify_slice(&decode(sig)?)
            .map_err(|_| Invalid("bad token signature"))?;
        let claims: Claims =
            serde_json::from_slice(&decode(body)?).map_err(|_| Invalid("token claims need sub"))?;
        match claims.exp {
            Some(exp) if now >= exp => return Err(Invalid("token expired")),
            None if self.require_expiry => return Err(Invalid("token has no exp")),
            _ => {}
        }
        if claims.nbf.is_some_and(|nbf| now < nbf) {
            return Err(Invalid("token not valid yet"));
        }
        if let Some(wanted) = &self.audience {
            let named = match &claims.aud {
                Some(Audience::One(a)) => a == wanted,
                Some(Audience::Many(all)) => all.contains(wanted),
                None => false,
            };
            if !named {
                return Err(Invalid("token is for another audience"));
            }
        }
        if let Some(wanted) = &self.issuer
            && claims.iss.as_ref() != Some(wanted)
        {
            return Err(Invalid("token is from another issuer"));
        }
        Ok(claims.sub)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const KEY: &[u8] = b"token-key-0123456789abcdef0123456789";
    pub(crate) const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    pub(crate) fn token(key: &[u8], header: &str, claims: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(header);
        let c = URL_SAFE_NO_PAD.encode(claims);
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("key");
        mac.update(format!("{h}.{c}").as_bytes());
        format!(
            "{h}.{c}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    pub(crate) fn rules() -> TokenRules {
        TokenRules::new(KEY).expect("a long enough key")
    }

    #[test]
    fn accepts_a_valid_token() {
        let t = token(KEY, HS256, r#"{"sub":"alice","exp":2000}"#);
        assert_eq!(rules().verify(&t, 1000), Ok("alice".to_owned()));
    }

    #[test]
    fn a_short_key_is_refused() {
        assert_eq!(TokenRules::new(&b"short"[..]).err(), Some(WeakKey));
        assert!(TokenRules::new(vec![7; MIN_KEY_BYTES]).is_ok());
    }

    #[test]
    fn refuses_forged_expired_and_unsigned_tokens() {
        let rules = rules();
        let t = token(
            b"another key, also long enough 0123",
            HS256,
            r#"{"sub":"alice","exp":2000}"#,
        );
        assert!(rules.verify(&t, 1000).is_err(), "wrong key");
        let t = token(KEY, HS256, r#"{"sub":"alice","exp":1000}"#);
        assert!(rules.verify(&t, 1000).is_err(), "expired");
        let t = token(KEY, HS256, r#"{"sub":"alice","exp":2000,"nbf":1001}"#);
        assert!(rules.verify(&t, 1000).is_err(), "not yet valid");
        let t = token(KEY, r#"{"alg":"none"}"#, r#"{"sub":"alice","exp":2000}"#);
        assert!(rules.verify(&t, 1000).is_err(), "alg none");
        let t = token(KEY, HS256, r#"{"user":"alice","exp":2000}"#);
        assert!(rules.verify(&t, 1000).is_err(), "no sub");
        // Altering the claims breaks the signature.
        let good = token(KEY, HS256, r#"{"sub":"alice","exp":2000}"#);
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(r#"{"sub":"bob","exp":2000}"#),
            parts[2]
        );
        assert!(rules.verify(&forged, 1000).is_err(), "altered");
        assert!(rules.verify("a.b", 1000).is_err());
    }

    /// A token that never expires is refused unless the rules allow it.
    #[test]
    fn expiry_is_required_by_default() {
        let t = token(KEY, HS256, r#"{"sub":"alice"}"#);
        assert_eq!(
            rules().verify(&t, 1000),
            Err(IdentityError::Invalid("token has no exp"))
        );
        let lenient = TokenRules {
            require_expiry: false,
            ..rules()
        };
        assert_eq!(lenient.verify(&t, 1000), Ok("alice".to_owned()));
    }

    #[test]
    fn audience_and_issuer_are_checked_when_set() {
        let rules = TokenRules {
            audience: Some("chunkd".into()),
            issuer: Some("https://app.example".into()),
            ..rules()
        };
        let claims =
            |extra: &str| token(KEY, HS256, &format!(r#"{{"sub":"a","exp":2000{extra}}}"#));
        let good = claims(r#","aud":"chunkd","iss":"https://app.example""#);
        assert_eq!(rules.verify(&good, 1000), Ok("a".to_owned()));
        let listed = claims(r#","aud":["other","chunkd"],"iss":"https://app.example""#);
        assert_eq!(rules.verify(&listed, 1000), Ok("a".to_owned()));
        for bad in [
            r#","iss":"https://app.example""#,
            r#","aud":"other","iss":"https://app.example""#,
            r#","aud":"chunkd""#,
            r#","aud":"chunkd","iss":"https://evil.example""#,
        ] {
            assert!(rules.verify(&claims(bad), 1000).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Arbitrary text is never a token of ours, and never a panic.
        #[test]
        fn arbitrary_text_is_refused(t in ".{0,200}") {
            proptest::prop_assert!(rules().verify(&t, 0).is_err());
        }
    }
}
