//! The database settings, with the password kept out of `Debug` and printed settings.

use std::fmt;
use std::time::Duration;

/// Where the deployment's database is and how chunkd uses it. `Debug` hides the password.
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database` (or the `key=value` form).
    pub url: String,
    /// Keep chunkd's tables in this schema (created if missing; several deployments can
    /// share a database); empty: the connection's default.
    pub schema: String,
    /// Connections per instance (at least 2).
    pub pool_size: usize,
    /// For [`PgLocker::new`](super::PgLocker::new): an instance that stops renewing its
    /// lock on an upload (crashed, cut off) loses it after this long.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub lock_ttl: Duration,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            url: String::new(),
            schema: String::new(),
            pool_size: 16,
            lock_ttl: Duration::from_secs(10),
        }
    }
}

impl PgConfig {
    /// `url` with its password replaced by `<redacted>`, for logs and printed settings.
    /// A `key=value` string that names a password is hidden whole: quoting rules make
    /// cutting the value out error-prone.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &self.redacted_url())
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("lock_ttl", &self.lock_ttl)
            .finish()
    }
}

const REDACTED: &str = "<redacted>";

/// The password follows the first `:` of the credentials; they end at the last `@`, not
/// the first as tokio-postgres reads them, so an unencoded `@` in a password cannot leak
/// its end (an `@` further on hides a little more than needed). A `password` query
/// parameter is hidden too.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|p| url.strip_prefix(p).map(|rest| (*p, rest)))
    else {
        return if url.contains("password") {
            REDACTED.to_owned()
        } else {
            url.to_owned()
        };
    };
    let (credentials, rest) = match rest.rsplit_once('@') {
        Some((credentials, rest)) => match credentials.split_once(':') {
            Some((user, _)) => (format!("{user}:{REDACTED}@"), rest),
            None => (format!("{credentials}@"), rest),
        },
        None => (String::new(), rest),
    };
    let rest = match rest.split_once('?') {
        Some((place, query)) => {
            let params = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}={REDACTED}")
                    }
                    _ => param.to_owned(),
                })
                .collect::<Vec<_>>();
            format!("{place}?{}", params.join("&"))
        }
        None => rest.to_owned(),
    };
    format!("{scheme}{credentials}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_redacted() {
        for (url, shown) in [
            (
                "postgres://chunkd:s3cr3t@db:5432/chunkd",
                "postgres://chunkd:<redacted>@db:5432/chunkd",
            ),
            (
                "postgresql://chunkd@db/chunkd?password=s3cr3t&sslmode=disable",
                "postgresql://chunkd@db/chunkd?password=<redacted>&sslmode=disable",
            ),
            // However the password is (mis)encoded, none of it shows.
            ("postgres://u:p@s:s@db/x", "postgres://u:<redacted>@db/x"),
            ("postgres://u:p?s@db/x", "postgres://u:<redacted>@db/x"),
            ("postgres://chunkd@db/chunkd", "postgres://chunkd@db/chunkd"),
            ("host=db user=chunkd password='s3 cr3t'", "<redacted>"),
            ("host=db user=chunkd", "host=db user=chunkd"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let config = PgConfig {
            url: "postgres://chunkd:s3cr3t@db/chunkd".into(),
            ..PgConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("chunkd:<redacted>@db"), "{shown}");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn reads_humantime_durations_and_keeps_defaults() {
        let config: PgConfig =
            serde_json::from_str(r#"{"url": "postgres://db/x", "lock_ttl": "3s"}"#)
                .expect("settings");
        assert_eq!(config.lock_ttl, Duration::from_secs(3));
        assert_eq!(config.pool_size, PgConfig::default().pool_size);
        assert!(serde_json::from_str::<PgConfig>(r#"{"lock_tll": "3s"}"#).is_err());
    }
}
