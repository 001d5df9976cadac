//! `chunkd config`: the effective settings as TOML that loads back, secrets redacted.

use super::Config;
use super::access::shown;

impl Config {
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string(&self.redacted())?)
    }

    /// A copy safe to print. Field by field, so a secret added to a type it names is
    /// seen here at review.
    fn redacted(&self) -> Config {
        let mut shown_config = self.clone();
        for secret in [
            &mut shown_config.auth.token_key,
            &mut shown_config.signing.key,
            &mut shown_config.s3.secret_key,
        ] {
            *secret = shown(secret).to_owned();
        }
        for secret in &mut shown_config.hooks.secrets {
            *secret = shown(secret).to_owned();
        }
        shown_config.postgres.url = self.postgres.redacted_url();
        shown_config
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::access::REDACTED;
    use super::super::tests::load;
    use super::*;

    const SECRETS: [&str; 5] = [
        "token-key-0123456789abcdef0123456789",
        "signing-key-0123456789",
        "s3-secret-0123456789",
        "pg-password-0123456789",
        "hook-secret-0123456789",
    ];

    fn with_everything() -> Config {
        let mut config = load(
            r#"
            [[forward]]
            prefix = "/files"
            target = "http://app.internal/uploads"

            [[forward]]
            prefix = "/chunked"
            target = "http://app.internal/chunks"
            "#,
        )
        .expect("forward rules");
        config.auth.token_key = SECRETS[0].into();
        config.signing.key = SECRETS[1].into();
        config.s3.secret_key = SECRETS[2].into();
        config.hooks.secrets = vec![SECRETS[4].into()];
        config.s3.access_key = "AKIAEXAMPLE".into();
        config.s3.ca_file = Some(PathBuf::from("/etc/chunkd/ca.pem"));
        config.postgres.url = format!("postgres://chunkd:{}@db:5432/chunkd", SECRETS[3]);
        config.public_url.base = Some("https://uploads.example.com".into());
        config
    }

    fn table<'a>(value: &'a toml::Table, key: &str) -> &'a toml::Table {
        value[key]
            .as_table()
            .unwrap_or_else(|| panic!("[{key}] missing"))
    }

    #[test]
    fn defaults_print_every_section_and_load_back() {
        let text = Config::default().to_toml().expect("render");
        let parsed: toml::Table = text.parse().expect("valid TOML");
        for key in [
            "listen",
            "idle_timeout",
            "expire_after",
            "store",
            "state",
            "forward",
        ] {
            assert!(parsed.contains_key(key), "{key} missing:\n{text}");
        }
        for section in [
            "s3",
            "postgres",
            "tus",
            "ietf",
            "s3_multipart",
            "resumablejs",
            "content_range",
            "form",
            "events",
            "health",
            "metrics",
            "tls",
            "signing",
            "auth",
            "public_url",
            "log",
        ] {
            table(&parsed, section);
        }
        assert_eq!(parsed["expire_after"].as_str(), Some("1day"));
        assert_eq!(
            table(&parsed, "ietf")["progress_interval"].as_str(),
            Some("1s")
        );
        assert_eq!(
            table(&parsed, "s3")["part_size"].as_integer(),
            Some(8 << 20)
        );
        let back = load(&text).expect("loads back");
        assert_eq!(back.to_toml().expect("render"), text, "a fixed point");
    }

    #[test]
    fn forward_rules_and_set_options_are_printed_secrets_are_not() {
        let config = with_everything();
        let text = config.to_toml().expect("render");
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} printed:\n{text}");
        }
        let parsed: toml::Table = text.parse().expect("valid TOML");
        let forward = parsed["forward"].as_array().expect("[[forward]]");
        assert_eq!(forward.len(), 2);
        assert_eq!(
            forward[1]["target"].as_str(),
            Some("http://app.internal/chunks")
        );
        assert!(text.contains("[[forward]]"), "{text}");
        assert_eq!(table(&parsed, "auth")["token_key"].as_str(), Some(REDACTED));
        assert_eq!(table(&parsed, "signing")["key"].as_str(), Some(REDACTED));
        let s3 = table(&parsed, "s3");
        assert_eq!(s3["secret_key"].as_str(), Some(REDACTED));
        assert_eq!(s3["access_key"].as_str(), Some("AKIAEXAMPLE"));
        assert_eq!(s3["ca_file"].as_str(), Some("/etc/chunkd/ca.pem"));
        assert_eq!(
            table(&parsed, "postgres")["url"].as_str(),
            Some("postgres://chunkd:<redacted>@db:5432/chunkd")
        );
        assert_eq!(
            table(&parsed, "public_url")["base"].as_str(),
            Some("https://uploads.example.com")
        );
        let back = load(&text).expect("loads back");
        assert_eq!(back.forward.len(), 2);
        assert_eq!(back.s3.secret_key, REDACTED);
    }

    #[test]
    fn unset_secrets_print_as_unset() {
        let text = Config::default().to_toml().expect("render");
        let parsed: toml::Table = text.parse().expect("valid TOML");
        assert_eq!(table(&parsed, "auth")["token_key"].as_str(), Some(""));
        assert!(!text.contains(REDACTED), "{text}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", with_everything());
        for secret in SECRETS {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
