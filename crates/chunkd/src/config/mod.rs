//! Configuration: defaults, then a TOML file, then `CHUNKD_*` environment variables
//! (`__` separates nested keys: `CHUNKD_TUS__PATH`), then command-line flags.
//!
//! The libraries' settings are embedded as they are (`[tus]` is a `tus::Config`, `[s3]`
//! an `S3Config`), so their defaults live in one place: the library's `Default`. What
//! only the binary knows (the idle timeout, the public URL, download paths, the signer)
//! is filled in when the parts are assembled.

mod access;
mod paths;
mod render;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chunkd_backends::{PgConfig, S3Config, SyncPolicy};
use chunkd_core::Limits;
use chunkd_http::interim::ConnectionLimits;
use chunkd_http::listener::Address;
use chunkd_http::{
    PublicUrl, content_range, events, form, health, ietf, resumablejs, s3_multipart, tus, ui,
};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use access::{AuthConfig, AuthMode, SigningConfig};

use crate::cli::Cli;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The main listener: `host:port`, `tls://host:port` or `unix:/path`.
    pub listen: Address,
    /// More listeners, written the same way, serving the same.
    pub also_listen: Vec<Address>,
    /// The certificate `tls://` listeners present.
    pub tls: chunkd_http::tls::Config,
    /// Upload files live in `<data_dir>/files`, state in `<data_dir>/state.sqlite3`.
    pub data_dir: PathBuf,
    /// `always`: fsync data before an offset is saved and commit state durably;
    /// `never`: leave flushing to the OS (survives a process crash, not a power loss).
    pub sync: SyncPolicy,
    /// Largest upload in bytes; 0 means no limit.
    pub max_size: u64,
    /// Unfinished uploads idle this long are deleted ("0s" keeps them forever).
    #[serde(with = "humantime_serde")]
    pub expire_after: Duration,
    /// How often the server deletes expired uploads.
    #[serde(with = "humantime_serde")]
    pub gc_interval: Duration,
    /// How long a request waits for an upload another request is writing.
    #[serde(with = "humantime_serde")]
    pub lock_timeout: Duration,
    /// A long request body is made durable and its offset saved every this many bytes.
    pub checkpoint_bytes: u64,
    /// Most partial uploads one tus final (or Resumable.js/Flow.js file) may join.
    pub max_concat_parts: usize,
    /// A request body that sends nothing for this long is ended; what arrived is kept.
    /// Every front end uses it.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long shutdown waits for in-flight requests after asking them to stop.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// What one client may hold: header read timeout, connections served at once.
    pub connections: ConnectionLimits,
    /// Where upload bytes live: `fs` (`<data_dir>/files`) or `s3` (see `[s3]`).
    pub store: StoreBackend,
    pub s3: S3Config,
    /// Where upload records and locks live: `sqlite` (embedded, one instance) or
    /// `postgres` (several instances sharing the work).
    pub state: StateBackend,
    pub postgres: PgConfig,
    pub tus: tus::Config,
    pub ietf: ietf::Config,
    /// Browser-direct S3 multipart (with `store = "s3"`).
    pub s3_multipart: s3_multipart::Config,
    pub resumablejs: resumablejs::Config,
    pub content_range: content_range::Config,
    pub form: form::Config,
    /// The server-sent-events stream of each user's own uploads.
    pub events: events::Config,
    /// `/healthz` and `/readyz` for load balancers; never behind `auth.required`.
    pub health: health::Config,
    /// The upload page for people with a browser, at `/`.
    pub ui: ui::Config,
    /// `/metrics` in Prometheus text format.
    pub metrics: crate::metrics::Config,
    pub signing: SigningConfig,
    /// Forward mode: `[[forward]]` tables of `prefix` and `target`.
    pub forward: Vec<ForwardConfig>,
    pub auth: AuthConfig,
    /// Hooks: tusd's hook JSON to a signed webhook (`url`) or a `command`.
    pub hooks: chunkd_hooks::HookSettings,
    pub public_url: PublicUrl,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Fs,
    S3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    Sqlite,
    Postgres,
}

/// When a request under `prefix` completes an upload, POST the file's description to
/// `target` and answer the client with the application's response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    pub prefix: String,
    /// An `http://` URL of the application.
    pub target: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info` or `chunkd_core=debug,info` (RUST_LOG wins if set).
    pub filter: String,
    /// `pretty` or `json`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        // The engine's limits are written as 0 for "none".
        let limits = Limits::default();
        Config {
            listen: Address::Tcp(SocketAddr::from(([127, 0, 0, 1], 1080))),
            also_listen: Vec::new(),
            tls: chunkd_http::tls::Config::default(),
            data_dir: PathBuf::from("./chunkd-data"),
            sync: SyncPolicy::default(),
            max_size: limits.max_size.unwrap_or(0),
            expire_after: limits.expire_after.unwrap_or_default(),
            gc_interval: Duration::from_secs(600),
            lock_timeout: limits.lock_timeout,
            checkpoint_bytes: limits.checkpoint_bytes,
            max_concat_parts: limits.max_concat_parts,
            idle_timeout: chunkd_http::DEFAULT_IDLE_TIMEOUT,
            shutdown_timeout: Duration::from_secs(30),
            store: StoreBackend::Fs,
            s3: S3Config::default(),
            state: StateBackend::Sqlite,
            postgres: PgConfig::default(),
            tus: tus::Config::default(),
            ietf: ietf::Config::default(),
            s3_multipart: s3_multipart::Config::default(),
            resumablejs: resumablejs::Config::default(),
            content_range: content_range::Config::default(),
            form: form::Config::default(),
            events: events::Config::default(),
            health: health::Config::default(),
            ui: ui::Config::default(),
            metrics: crate::metrics::Config::default(),
            signing: SigningConfig::default(),
            forward: Vec::new(),
            auth: AuthConfig::default(),
            hooks: chunkd_hooks::HookSettings::default(),
            public_url: PublicUrl::default(),
            log: LogConfig::default(),
            connections: ConnectionLimits::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".to_owned(),
            format: LogFormat::Pretty,
        }
    }
}

impl Config {
    pub fn load(cli: &Cli) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &cli.config {
            anyhow::ensure!(
                path.exists(),
                "configuration file {} not found",
                path.display()
            );
            figment = figment.merge(Toml::file(path));
        }
        let mut overrides = figment::value::Dict::new();
        let o = &cli.overrides;
        if let Some(v) = &o.listen {
            overrides.insert("listen".into(), v.to_string().into());
        }
        if let Some(v) = &o.data_dir {
            overrides.insert("data_dir".into(), v.display().to_string().into());
        }
        if let Some(v) = o.max_size {
            overrides.insert("max_size".into(), v.into());
        }
        let mut config: Config = figment
            .merge(Self::environment())
            .merge(Serialized::globals(overrides))
            .extract()
            .context("invalid configuration")?;
        if let Some(base) = &o.public_url {
            config.public_url.base = Some(base.clone());
        }
        // `base = ""` has always meant "from the request", as leaving it out does.
        config.public_url.base = config.public_url.base.take().filter(|b| !b.is_empty());
        config.validate()?;
        Ok(config)
    }

    /// The settings of an application that runs chunkd inside itself: defaults, then
    /// `settings` (the keys of the TOML file, nested as there), then `CHUNKD_*`
    /// variables, as the file and the environment are for the binary.
    /// Every path is put below `mount` (`""`: none), the prefix under which the
    /// application routes requests to chunkd.
    pub fn from_settings(settings: &impl Serialize, mount: &str) -> anyhow::Result<Self> {
        let mut config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Serialized::globals(settings))
            .merge(Self::environment())
            .extract()
            .context("invalid chunkd settings")?;
        config.public_url.base = config.public_url.base.take().filter(|b| !b.is_empty());
        paths::prefix_all(&mut config, mount);
        config.validate()?;
        Ok(config)
    }

    /// `CHUNKD_*` variables naming a setting. Others (`CHUNKD_CONFIG`, or variables of
    /// scripts around chunkd) are reported and ignored, never fatal.
    fn environment() -> Env {
        let known = Self::top_level_keys();
        for (key, _) in std::env::vars() {
            if let Some(name) = key.strip_prefix("CHUNKD_") {
                let top = name
                    .split("__")
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if top != "config" && !known.contains(&top) {
                    eprintln!("chunkd: ignoring {key}: no such setting");
                }
            }
        }
        Env::prefixed("CHUNKD_").split("__").filter(move |k| {
            // Keys keep their case here; settings are matched case-insensitively.
            let top = k.as_str().split('.').next().unwrap_or_default();
            known.iter().any(|n| n.eq_ignore_ascii_case(top))
        })
    }

    fn top_level_keys() -> Vec<String> {
        match figment::value::Value::serialize(Config::default()) {
            Ok(figment::value::Value::Dict(_, dict)) => dict.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Everything [`Config::load`] checks beyond the types: what would otherwise fail
    /// later, or panic, when the parts are assembled.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.checkpoint_bytes > 0,
            "checkpoint_bytes must be positive"
        );
        paths::check(&paths::mounts(self))?;
        if self.ui.enabled {
            paths::check_exact(&paths::mounts(self), ("ui.path", &self.ui.path))?;
            if self.ui.protocol == ui::PageProtocol::S3 {
                anyhow::ensure!(
                    self.store == StoreBackend::S3,
                    "ui.protocol = \"s3\" needs store = \"s3\""
                );
                // Uppy's S3 plugin asks `{base}/s3/multipart`.
                anyhow::ensure!(
                    self.s3_multipart
                        .path
                        .trim_end_matches('/')
                        .ends_with("/s3"),
                    "ui.protocol = \"s3\" needs s3_multipart.path to end in /s3 (Uppy asks .../s3/multipart)"
                );
            }
        }
        if self.metrics.enabled && self.metrics.listen.is_some() {
            // Alone on its listener, it collides with nothing, but must still route.
            paths::check(&[("metrics.path", self.metrics.path.as_str())])?;
        }
        for rule in &self.forward {
            anyhow::ensure!(
                rule.prefix.starts_with('/'),
                "forward.prefix must start with /"
            );
            anyhow::ensure!(
                rule.target.starts_with("http://"),
                "forward.target must be an http:// URL"
            );
        }
        anyhow::ensure!(
            self.state != StateBackend::Postgres || !self.postgres.url.is_empty(),
            "state = \"postgres\" needs postgres.url"
        );
        anyhow::ensure!(
            self.store != StoreBackend::S3
                || !(self.s3.endpoint.is_empty() || self.s3.bucket.is_empty()),
            "store = \"s3\" needs s3.endpoint and s3.bucket"
        );
        if let Some(base) = &self.public_url.base {
            anyhow::ensure!(
                base.starts_with("http://") || base.starts_with("https://"),
                "public_url.base must be an http(s) URL"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `toml` as the configuration file (no environment, no flags).
    pub(super) fn load(toml: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("chunkd.toml");
        std::fs::write(&file, toml).expect("write");
        let cli = <Cli as clap::Parser>::parse_from([
            "chunkd",
            "--config",
            file.to_str().expect("utf-8 path"),
        ]);
        Config::load(&cli)
    }

    #[test]
    fn knows_every_top_level_setting() {
        let keys = Config::top_level_keys();
        for k in [
            "listen",
            "data_dir",
            "sync",
            "tus",
            "public_url",
            "log",
            "checkpoint_bytes",
            "s3",
            "postgres",
            "resumablejs",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
    }

    #[test]
    fn file_settings_are_overridden_by_flags() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("chunkd.toml");
        std::fs::write(
            &file,
            "max_size = 5\nexpire_after = \"2h\"\n[tus]\npath = \"/uploads\"\n\
             [ietf]\npath = \"/ietf\"\n",
        )
        .expect("write");
        let cli = <Cli as clap::Parser>::parse_from([
            "chunkd",
            "--config",
            file.to_str().expect("utf-8 path"),
            "--max-size",
            "7",
        ]);
        let config = Config::load(&cli).expect("config");
        assert_eq!(config.tus.path, "/uploads");
        assert_eq!(config.expire_after, Duration::from_secs(7200));
        assert_eq!(config.max_size, 7, "the flag wins over the file");
        assert_eq!(
            config.listen.to_string(),
            "127.0.0.1:1080",
            "defaults fill the rest"
        );
    }

    #[test]
    fn unknown_file_settings_are_refused() {
        assert!(load("max_sise = 5\n").is_err());
        // Filled in from the top-level settings, not settable per front end.
        assert!(load("[tus]\nidle_timeout = \"5s\"\n").is_err());
        assert!(load("[s3]\npart_sise = 5\n").is_err());
    }

    #[test]
    fn library_sections_keep_the_keys_users_write() {
        let config = load(
            "[s3]\nendpoint = \"http://s3\"\nbucket = \"b\"\npart_size = 16777216\n\
             create_bucket = true\nca_file = \"/etc/ca.pem\"\n\
             [ietf]\nprogress_interval = \"250ms\"\n\
             [s3_multipart]\npart_url_validity = \"1h\"\n\
             [postgres]\nurl = \"postgres://db/x\"\nschema = \"chunkd\"\npool_size = 4\n\
             lock_ttl = \"3s\"\n\
             [resumablejs]\nflow_path = \"/flowjs\"\n\
             [content_range]\npath = \"/drf\"\n\
             [form]\nupload_path = \"/u\"\nprogress_path = \"/p\"\n\
             [public_url]\nbase = \"\"\ntrust_forwarded = true\n",
        )
        .expect("config");
        assert_eq!(config.s3.part_size, 16 << 20);
        assert!(config.s3.create_bucket);
        assert_eq!(config.s3.region, "us-east-1", "library default");
        assert_eq!(config.s3.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.ietf.progress_interval, Duration::from_millis(250));
        assert_eq!(config.ietf.path, "/uploads", "library default");
        assert_eq!(
            config.s3_multipart.part_url_validity,
            Duration::from_secs(3600)
        );
        assert_eq!(config.postgres.lock_ttl, Duration::from_secs(3));
        assert_eq!(config.postgres.pool_size, 4);
        assert_eq!(config.postgres.schema, "chunkd");
        assert_eq!(config.resumablejs.flow_path, "/flowjs");
        assert_eq!(config.resumablejs.resumable_path, "/resumable");
        assert_eq!(config.content_range.path, "/drf");
        assert_eq!(
            (
                config.form.upload_path.as_str(),
                config.form.progress_path.as_str()
            ),
            ("/u", "/p")
        );
        assert_eq!(config.public_url.base, None, "empty base: from the request");
        assert!(config.public_url.trust_forwarded);
    }

    #[test]
    fn defaults_are_the_libraries() {
        let config = Config::default();
        let limits = Limits::default();
        assert_eq!(config.lock_timeout, limits.lock_timeout);
        assert_eq!(config.checkpoint_bytes, limits.checkpoint_bytes);
        assert_eq!(config.expire_after, Duration::from_secs(24 * 3600));
        assert_eq!(config.idle_timeout, Duration::from_secs(60));
        assert_eq!(config.tus.path, "/files");
        assert_eq!(config.s3.part_size, 8 << 20);
        assert_eq!(config.postgres.pool_size, 16);
    }

    #[test]
    fn a_route_collision_is_a_startup_error_not_a_panic() {
        let err = load("[content_range]\npath = \"/files\"\n").expect_err("must refuse");
        assert_eq!(
            format!("{err:#}"),
            r#"content_range.path "/files" collides with tus.path "/files""#
        );
        let err = load("[form]\nupload_path = \"/up load\"\n").expect_err("must refuse");
        assert!(format!("{err:#}").starts_with(r#"form.upload_path "/up load""#));
    }
}
