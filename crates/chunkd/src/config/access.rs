//! Who may upload and which identifiers are genuine: the settings holding secrets.
//! Their `Debug` shows whether a secret is set, never the secret.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a set secret is shown as, in `Debug` and in `chunkd config`.
pub(super) const REDACTED: &str = "<redacted>";

/// `secret` as it may be shown: empty stays empty (it says "not set").
pub(super) fn shown(secret: &str) -> &str {
    if secret.is_empty() { "" } else { REDACTED }
}

/// Signed upload identifiers (HMAC, bound to the uploader).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningConfig {
    /// The HMAC key; empty disables signed identifiers.
    pub key: String,
    /// ...or a file holding it.
    pub key_file: String,
    /// `POST` issues an identifier, `GET {path}/{id}` verifies one.
    pub path: String,
}

impl SigningConfig {
    /// A key is configured, so `path` is mounted.
    pub fn enabled(&self) -> bool {
        !self.key.is_empty() || !self.key_file.is_empty()
    }
}

impl Default for SigningConfig {
    fn default() -> Self {
        SigningConfig {
            key: String::new(),
            key_file: String::new(),
            path: "/ids".to_owned(),
        }
    }
}

impl fmt::Debug for SigningConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningConfig")
            .field("key", &shown(&self.key))
            .field("key_file", &self.key_file)
            .field("path", &self.path)
            .finish()
    }
}

/// Who uploads: uploads belong to the identity that created them.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `none`, `header` (a trusted proxy sets `header`) or `token` (HS256 bearer tokens).
    pub mode: AuthMode,
    /// With `mode = "header"`: the header carrying the authenticated user.
    pub header: String,
    /// With `mode = "token"`: the HMAC key tokens are signed with...
    pub token_key: String,
    /// ...or a file holding it (keeps the secret out of the configuration).
    pub token_key_file: String,
    /// With `mode = "token"`: when set, a token's `aud` must name it.
    pub token_audience: String,
    /// With `mode = "token"`: when set, a token's `iss` must be it.
    pub token_issuer: String,
    /// With `mode = "token"`: refuse tokens without `exp`.
    pub token_require_exp: bool,
    /// Refuse requests without a valid identity (403).
    pub required: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    None,
    Header,
    Token,
    /// The application chunkd runs inside says who (the Python package's `owner=`);
    /// the binary has no such application, so everyone is anonymous there.
    App,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::None,
            header: "X-Forwarded-User".to_owned(),
            token_key: String::new(),
            token_key_file: String::new(),
            token_audience: String::new(),
            token_issuer: String::new(),
            token_require_exp: true,
            required: false,
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("mode", &self.mode)
            .field("header", &self.header)
            .field("token_key", &shown(&self.token_key))
            .field("token_key_file", &self.token_key_file)
            .field("token_audience", &self.token_audience)
            .field("token_issuer", &self.token_issuer)
            .field("token_require_exp", &self.token_require_exp)
            .field("required", &self.required)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_keys() {
        let auth = AuthConfig {
            mode: AuthMode::Token,
            token_key: "token-key-0123456789abcdef0123456789".into(),
            ..AuthConfig::default()
        };
        let signing = SigningConfig {
            key: "signing-key-0123456789".into(),
            ..SigningConfig::default()
        };
        let shown = format!("{auth:?} {signing:?}");
        assert!(!shown.contains("token-key-0123"), "{shown}");
        assert!(!shown.contains("signing-key-0123"), "{shown}");
        assert_eq!(shown.matches(REDACTED).count(), 2, "{shown}");
        assert!(
            format!("{:?}", AuthConfig::default()).contains("token_key: \"\""),
            "an unset key reads as unset"
        );
    }
}
