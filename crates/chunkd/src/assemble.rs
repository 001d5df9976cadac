//! Configuration to parts: stores, engine, routers.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use chunkd_backends::{
    FlockLocker, FsStore, Pg, PgEventRelay, PgLocker, PgState, S3Store, SqliteState,
};
use chunkd_core::{DataStore, Limits, Uploads};
use chunkd_http::signed_ids::{self, Signer};
use chunkd_http::{forward, identity};
use http::HeaderName;

use crate::config::{AuthConfig, AuthMode, Config, StateBackend, StoreBackend};

/// How long startup waits for the event relay to hear the other instances.
const RELAY_START: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether this process is the only one writing the embedded state database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Processes {
    /// The server, perhaps with `chunkd gc` beside it: records may be cached.
    One,
    /// Several writers (host application workers): every read asks the database.
    Several,
}

pub async fn uploads(config: &Config) -> anyhow::Result<Uploads> {
    uploads_for(config, Processes::One, None).await
}

/// The engine for `processes` on one data directory, its hooks (`[hooks]`) going to
/// `receiver` when given instead of a webhook or command.
pub async fn uploads_for(
    config: &Config,
    processes: Processes,
    receiver: Option<Arc<dyn chunkd_hooks::Receiver>>,
) -> anyhow::Result<Uploads> {
    let store: Arc<dyn DataStore> = match config.store {
        StoreBackend::Fs => {
            let files = config.data_dir.join("files");
            Arc::new(
                FsStore::new(&files, config.sync)
                    .with_context(|| format!("cannot use data directory {}", files.display()))?,
            )
        }
        StoreBackend::S3 => Arc::new(
            S3Store::connect(config.s3.clone())
                .await
                .context("cannot use the S3 bucket in [s3]")?,
        ),
    };
    let limits = Limits {
        max_size: (config.max_size > 0).then_some(config.max_size),
        expire_after: (!config.expire_after.is_zero()).then_some(config.expire_after),
        lock_timeout: config.lock_timeout,
        checkpoint_bytes: config.checkpoint_bytes,
        max_concat_parts: config.max_concat_parts,
    };
    let builder = match config.state {
        StateBackend::Sqlite => {
            let state_path = config.data_dir.join("state.sqlite3");
            let state = SqliteState::open(&state_path, config.sync)
                .with_context(|| format!("cannot open state database {}", state_path.display()))?;
            match processes {
                // The process's own locks (the engine's default): a HEAD takes a free
                // lease in memory. `chunkd gc` beside it purges only expired uploads,
                // and a write under way renews its upload's expiry at every checkpoint.
                Processes::One => Uploads::builder(store, Arc::new(state)),
                Processes::Several => {
                    // Each writer reads every record afresh and takes locks every other
                    // process sees (a HEAD then costs a few system calls more).
                    let locks = config.data_dir.join("locks");
                    let locker = FlockLocker::new(&locks).with_context(|| {
                        format!("cannot use lock directory {}", locks.display())
                    })?;
                    Uploads::builder(store, Arc::new(state.uncached())).locker(Arc::new(locker))
                }
            }
        }
        StateBackend::Postgres => {
            let pg = Pg::connect(&config.postgres)
                .await
                .context("cannot use the PostgreSQL database in postgres.url")?;
            // Instances share locks, and the events their uploads' streams show.
            let relay = Arc::new(PgEventRelay::new(pg.clone()));
            if tokio::time::timeout(RELAY_START, relay.listening())
                .await
                .is_err()
            {
                tracing::warn!("not yet hearing other instances' upload events; going on");
            }
            Uploads::builder(store, Arc::new(PgState::new(pg.clone())))
                .relay(relay)
                .locker(Arc::new(PgLocker::new(pg, config.postgres.lock_ttl)))
        }
    };
    let builder = match chunkd_hooks::TransportHooks::with_receiver(config.hooks.clone(), receiver)?
    {
        Some(hooks) => {
            let delivery = hooks.settings().delivery();
            builder.hooks(Arc::new(hooks)).delivery(delivery)
        }
        None => builder,
    };
    Ok(builder.limits(limits).build())
}

/// A secret from the configuration itself or from a file (trimmed); `None` when neither is set.
fn secret(inline: &str, file: &str, what: &str) -> anyhow::Result<Option<Vec<u8>>> {
    match (inline.is_empty(), file.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Ok(Some(inline.as_bytes().to_vec())),
        (true, false) => Ok(Some(
            std::fs::read(file)
                .with_context(|| format!("cannot read {what} file {file}"))?
                .trim_ascii()
                .to_vec(),
        )),
        (false, false) => anyhow::bail!("set {what} inline or as a file, not both"),
    }
}

fn identity(
    config: &AuthConfig,
    max_uploads_per_client: usize,
) -> anyhow::Result<identity::Config> {
    let source = match config.mode {
        AuthMode::None => identity::Source::None,
        AuthMode::App => identity::Source::Provided,
        AuthMode::Header => identity::Source::TrustedHeader(
            HeaderName::try_from(config.header.as_str())
                .context("auth.header is not a header name")?,
        ),
        AuthMode::Token => {
            let key = secret(&config.token_key, &config.token_key_file, "auth.token_key")?
                .context(
                    "auth.mode = \"token\" needs one of auth.token_key, auth.token_key_file",
                )?;
            let mut rules = identity::TokenRules::new(key).context("auth.token_key")?;
            let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            rules.audience = nonempty(&config.token_audience);
            rules.issuer = nonempty(&config.token_issuer);
            rules.require_expiry = config.token_require_exp;
            identity::Source::Token(rules)
        }
    };
    anyhow::ensure!(
        !(config.required && config.mode == AuthMode::None),
        "auth.required needs auth.mode = \"header\" or \"token\""
    );
    Ok(identity::Config {
        source,
        required: config.required,
        max_uploads_per_client,
    })
}

/// The front ends as configured, with what they take from the top-level settings.
pub fn router(config: &Config, uploads: Uploads) -> anyhow::Result<Router> {
    let public_url = config.public_url.clone();
    let idle_timeout = config.idle_timeout;
    // Finished uploads are downloaded from the tus mount, whichever front end made them.
    let download_path = Some(config.tus.path.clone());
    let tus = chunkd_http::tus::Config {
        public_url: public_url.clone(),
        idle_timeout,
        ..config.tus.clone()
    };
    let ietf = chunkd_http::ietf::Config {
        public_url: public_url.clone(),
        idle_timeout,
        download_path: download_path.clone(),
        ..config.ietf.clone()
    };
    let direct = chunkd_http::s3_multipart::Config {
        public_url: public_url.clone(),
        download_path: download_path.clone(),
        ..config.s3_multipart.clone()
    };
    let content_range = chunkd_http::content_range::Config {
        public_url: public_url.clone(),
        idle_timeout,
        ..config.content_range.clone()
    };
    let signing_key = secret(&config.signing.key, &config.signing.key_file, "signing.key")?;
    // The key signs progress ids and anonymous uploaders' cookies: as strong as a token key.
    if let Some(key) = &signing_key {
        anyhow::ensure!(
            key.len() >= identity::MIN_KEY_BYTES,
            "signing.key must be at least {} bytes",
            identity::MIN_KEY_BYTES
        );
    }
    let signer = signing_key.clone().map(Signer::new);
    let form = chunkd_http::form::Config {
        download_path,
        public_url,
        idle_timeout,
        signer: signer.clone(),
        ..config.form.clone()
    };
    // Several instances must derive the same anonymous uploader cookies.
    let chunks = chunkd_http::resumablejs::Config {
        idle_timeout,
        uploader_key: signing_key,
        ..config.resumablejs.clone()
    };
    let mut app = Router::new()
        .merge(chunkd_http::tus::router(uploads.clone(), tus))
        .merge(chunkd_http::ietf::router(uploads.clone(), ietf))
        .merge(chunkd_http::s3_multipart::router(uploads.clone(), direct))
        .merge(chunkd_http::resumablejs::router(uploads.clone(), chunks))
        .merge(chunkd_http::content_range::router(
            uploads.clone(),
            content_range,
        ))
        .merge(chunkd_http::form::router(uploads.clone(), form))
        .merge(chunkd_http::events::router(
            uploads.clone(),
            config.events.clone(),
        ));
    if let Some(signer) = signer {
        app = app.merge(signed_ids::router(signer, &config.signing.path));
    }
    let rules = config
        .forward
        .iter()
        .map(|r| -> anyhow::Result<forward::Rule> {
            Ok(forward::Rule {
                prefix: r.prefix.clone(),
                target: r
                    .target
                    .parse()
                    .with_context(|| format!("forward.target {} is not a URL", r.target))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The page's list of the caller's uploads needs the caller's identity.
    let app = app.merge(chunkd_http::ui::finished::router(
        uploads.clone(),
        &page(config),
    ));
    let app = forward::forward(app, rules);
    let app = identity::identify(
        app,
        identity(&config.auth, config.connections.max_uploads_per_client)?,
    );
    // Probes come from load balancers, which carry no identity; the page carries none
    // either (its requests to the endpoints carry the caller's).
    let mut app = app
        .merge(chunkd_http::health::router(uploads, config.health.clone()))
        .merge(chunkd_http::ui::router(page(config)));
    if config.metrics.enabled && config.metrics.listen.is_none() {
        // Scrapers carry no identity either; a separate `metrics.listen` keeps it private.
        app = app.merge(crate::metrics::router(
            crate::metrics::recorder()?,
            &config.metrics.path,
        ));
    }
    Ok(chunkd_http::cors(app))
}

/// The page's settings with what it must know of the server.
fn page(config: &Config) -> chunkd_http::ui::Config {
    chunkd_http::ui::Config {
        endpoints: chunkd_http::ui::Endpoints {
            tus: config.tus.path.clone(),
            ietf: config.ietf.path.clone(),
            s3: config.s3_multipart.path.clone(),
            max_size: (config.max_size > 0).then_some(config.max_size),
            token: config.auth.mode == AuthMode::Token,
            origins: config
                .public_url
                .base
                .as_deref()
                .and_then(|base| base.parse::<http::Uri>().ok())
                .and_then(|uri| Some(format!("{}://{}", uri.scheme()?, uri.authority()?)))
                .into_iter()
                .collect(),
        },
        ..config.ui.clone()
    }
}

#[cfg(test)]
mod tests {
    use chunkd_core::memory::{MemoryState, MemoryStore};

    use super::*;

    fn memory() -> Uploads {
        Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build()
    }

    /// Paths the startup check accepts are paths axum routes without panicking.
    #[test]
    fn accepted_paths_build_a_router() {
        let mut config = Config::default();
        let _: Router = router(&config, memory()).expect("defaults");
        config.tus.path = "/a:b/".into();
        config.ietf.path = "/up%20loads".into();
        config.resumablejs.resumable_path = "/r/".into();
        config.resumablejs.flow_path = "/~flow@x".into();
        config.content_range.path = "/c-r.v1".into();
        config.form.upload_path = "/f/up".into();
        config.form.progress_path = "/f/progress/".into();
        config.signing.key = "signing-key-0123456789abcdef0123456".into();
        config.signing.path = "/ids;v=1".into();
        config.validate().expect("the startup check accepts them");
        let _: Router = router(&config, memory()).expect("accepted paths");
    }

    /// Keys that would weaken what they sign stop the server at startup, by name.
    #[test]
    fn short_keys_are_refused_at_startup() {
        let mut config = Config::default();
        config.signing.key = "short".into();
        let err = router(&config, memory()).expect_err("a 5-byte signing key");
        assert!(format!("{err:#}").contains("signing.key"), "{err:#}");
        let auth = AuthConfig {
            mode: AuthMode::Token,
            token_key: "also-short".into(),
            ..AuthConfig::default()
        };
        let err = identity(&auth, 0).expect_err("a 10-byte token key");
        assert!(format!("{err:#}").contains("at least 32 bytes"), "{err:#}");
    }

    /// The token settings reach the rules tokens are checked by.
    #[test]
    fn token_settings_become_rules() {
        let auth = AuthConfig {
            mode: AuthMode::Token,
            token_key: "k".repeat(32),
            token_audience: "chunkd".into(),
            ..AuthConfig::default()
        };
        let identity::Source::Token(rules) = identity(&auth, 0).expect("valid").source else {
            panic!("token mode makes token rules");
        };
        assert_eq!(rules.audience.as_deref(), Some("chunkd"));
        assert_eq!(rules.issuer, None);
        assert!(rules.require_expiry, "expiry is required by default");
    }
}
