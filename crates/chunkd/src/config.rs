//! Configuration: defaults, then a TOML file, then `CHUNKD_*` environment variables
//! (`__` separates nested keys: `CHUNKD_TUS__PATH`), then command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chunkd_backends::SyncPolicy;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::cli::Cli;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
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
    /// A request body that sends nothing for this long is ended; what arrived is kept.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long shutdown waits for in-flight requests after asking them to stop.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Where upload bytes live: `fs` (`<data_dir>/files`) or `s3` (see `[s3]`).
    pub store: StoreBackend,
    pub s3: S3Settings,
    /// Where upload records and locks live: `sqlite` (embedded, one instance) or
    /// `postgres` (several instances sharing the work).
    pub state: StateBackend,
    pub postgres: PostgresConfig,
    pub tus: TusConfig,
    pub ietf: IetfConfig,
    pub s3_multipart: S3MultipartConfig,
    pub resumablejs: ResumableJsConfig,
    pub content_range: ContentRangeConfig,
    pub form: FormConfig,
    pub signing: SigningConfig,
    /// Forward mode: `[[forward]]` tables of `prefix` and `target`.
    pub forward: Vec<ForwardConfig>,
    pub auth: AuthConfig,
    pub public_url: PublicUrlConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TusConfig {
    /// Mount path of the tus creation endpoint.
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Fs,
    S3,
}

/// An S3-compatible bucket for upload bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// `https://host:port` (or `http://`) of the service.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Objects are named `<prefix><upload id>`.
    pub prefix: String,
    /// Size of every multipart part but the last (at least 5 MiB); memory per request.
    pub part_size: u64,
    /// Address buckets as `bucket.host` instead of `host/bucket`.
    pub virtual_host: bool,
    /// Create the bucket at startup if it is missing.
    pub create_bucket: bool,
    /// PEM certificates to trust for `https://` besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".to_owned(),
            access_key: String::new(),
            secret_key: String::new(),
            prefix: String::new(),
            part_size: 8 << 20,
            virtual_host: false,
            create_bucket: false,
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Keep chunkd's tables in this schema (created if missing); empty: the default.
    pub schema: String,
    /// Connections per instance.
    pub pool_size: usize,
    /// An instance that stops renewing its lock on an upload (crashed, cut off) loses it
    /// after this long.
    #[serde(with = "humantime_serde")]
    pub lock_ttl: Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: String::new(),
            schema: String::new(),
            pool_size: 16,
            lock_ttl: Duration::from_secs(10),
        }
    }
}

/// Browser-direct S3 multipart (with `store = "s3"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3MultipartConfig {
    /// Mount path of the companion-style endpoints (`{path}/multipart/...`).
    pub path: String,
    /// How long a signed part URL stays valid.
    #[serde(with = "humantime_serde")]
    pub part_url_validity: Duration,
}

impl Default for S3MultipartConfig {
    fn default() -> Self {
        S3MultipartConfig {
            path: "/s3".to_owned(),
            part_url_validity: Duration::from_secs(15 * 60),
        }
    }
}

/// The IETF resumable-upload draft (interop versions 3 to 8).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IetfConfig {
    /// Mount path of the creation endpoint.
    pub path: String,
    /// Least time between two progress 104s of one request ("0s": at every checkpoint).
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
}

impl Default for IetfConfig {
    fn default() -> Self {
        IetfConfig {
            path: "/uploads".to_owned(),
            progress_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResumableJsConfig {
    /// Target for Resumable.js clients.
    pub resumable_path: String,
    /// Target for Flow.js clients.
    pub flow_path: String,
}

impl Default for ResumableJsConfig {
    fn default() -> Self {
        ResumableJsConfig {
            resumable_path: "/resumable".to_owned(),
            flow_path: "/flow".to_owned(),
        }
    }
}

/// Content-Range chunking (django-chunked-upload, drf-chunked-upload, blueimp).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentRangeConfig {
    pub path: String,
}

impl Default for ContentRangeConfig {
    fn default() -> Self {
        ContentRangeConfig {
            path: "/chunked".to_owned(),
        }
    }
}

/// Plain form uploads with an `X-Progress-ID` progress endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FormConfig {
    pub upload_path: String,
    pub progress_path: String,
}

impl Default for FormConfig {
    fn default() -> Self {
        FormConfig {
            upload_path: "/upload".to_owned(),
            progress_path: "/progress".to_owned(),
        }
    }
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

/// Signed upload identifiers (HMAC, bound to the uploader).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningConfig {
    /// The HMAC key; empty disables signed identifiers.
    pub key: String,
    /// ...or a file holding it.
    pub key_file: String,
    /// `POST` issues an identifier, `GET {path}/{id}` verifies one.
    pub path: String,
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

/// Who uploads: uploads belong to the identity that created them.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Refuse requests without a valid identity (403).
    pub required: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    None,
    Header,
    Token,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::None,
            header: "X-Forwarded-User".to_owned(),
            token_key: String::new(),
            token_key_file: String::new(),
            required: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PublicUrlConfig {
    /// Fixed origin for upload URLs (e.g. https://uploads.example.com); empty = from Host.
    pub base: String,
    /// Build upload URLs from Forwarded / X-Forwarded-* (only behind a trusted proxy).
    pub trust_forwarded: bool,
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
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 1080)),
            data_dir: PathBuf::from("./chunkd-data"),
            sync: SyncPolicy::Always,
            max_size: 0,
            expire_after: Duration::from_secs(24 * 3600),
            gc_interval: Duration::from_secs(600),
            lock_timeout: Duration::from_secs(20),
            checkpoint_bytes: 16 << 20,
            shutdown_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            store: StoreBackend::Fs,
            s3: S3Settings::default(),
            state: StateBackend::Sqlite,
            postgres: PostgresConfig::default(),
            tus: TusConfig::default(),
            ietf: IetfConfig::default(),
            s3_multipart: S3MultipartConfig::default(),
            resumablejs: ResumableJsConfig::default(),
            content_range: ContentRangeConfig::default(),
            form: FormConfig::default(),
            signing: SigningConfig::default(),
            forward: Vec::new(),
            auth: AuthConfig::default(),
            public_url: PublicUrlConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for TusConfig {
    fn default() -> Self {
        TusConfig {
            path: "/files".to_owned(),
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
        if let Some(v) = o.listen {
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
            config.public_url.base = base.clone();
        }
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

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.checkpoint_bytes > 0,
            "checkpoint_bytes must be positive"
        );
        for path in [
            &self.tus.path,
            &self.ietf.path,
            &self.s3_multipart.path,
            &self.resumablejs.resumable_path,
            &self.resumablejs.flow_path,
        ] {
            anyhow::ensure!(
                path.starts_with('/'),
                "mount paths must start with /: {path}"
            );
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
        let base = &self.public_url.base;
        anyhow::ensure!(
            base.is_empty() || base.starts_with("http://") || base.starts_with("https://"),
            "public_url.base must be an http(s) URL"
        );
        Ok(())
    }

    pub fn to_toml(&self) -> anyhow::Result<String> {
        let value = figment::value::Value::serialize(self)?;
        let mut out = String::new();
        render_toml(&mut out, "", &value);
        Ok(out)
    }
}

/// Minimal TOML rendering for `chunkd config` (flat values first, then tables).
fn render_toml(out: &mut String, prefix: &str, value: &figment::value::Value) {
    use figment::value::Value;
    let Value::Dict(_, dict) = value else { return };
    for (k, v) in dict {
        let rendered = match v {
            Value::String(_, s) => Some(format!("{s:?}")),
            Value::Num(_, n) => n
                .to_u128()
                .map(|n| n.to_string())
                .or_else(|| n.to_f64().map(|f| f.to_string())),
            Value::Bool(_, b) => Some(b.to_string()),
            _ => None,
        };
        if let Some(r) = rendered {
            out.push_str(&format!("{k} = {r}\n"));
        }
    }
    for (k, v) in dict {
        if let Value::Dict(..) = v {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push_str(&format!("\n[{name}]\n"));
            render_toml(out, &name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "max_size = 5\nexpire_after = \"2h\"\n[tus]\npath = \"/uploads\"\n",
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
        assert_eq!(config.listen.port(), 1080, "defaults fill the rest");
    }

    #[test]
    fn unknown_file_settings_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("chunkd.toml");
        std::fs::write(&file, "max_sise = 5\n").expect("write");
        let cli = <Cli as clap::Parser>::parse_from([
            "chunkd",
            "--config",
            file.to_str().expect("utf-8 path"),
        ]);
        assert!(Config::load(&cli).is_err());
    }
}
