//! PostgreSQL for deployments of several instances: upload records ([`PgState`]) and
//! upload locks that hold across instances ([`PgLocker`]).

mod config;
mod lock;
mod notify;
mod outbox;
mod relay;
mod state;

use std::fmt;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

/// How long a request waits for a database connection, or for one to be made.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub use config::PgConfig;
pub use lock::PgLocker;
pub use relay::PgEventRelay;
pub use state::PgState;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PgError {
    #[error(transparent)]
    Sql(#[from] tokio_postgres::Error),
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("record of {id} is unreadable: {source}")]
    Record {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid database settings: {0}")]
    Settings(String),
}

impl From<PgError> for chunkd_core::Error {
    fn from(e: PgError) -> Self {
        chunkd_core::Error::backend("postgres", e)
    }
}

/// `open` is [`chunkd_core::UploadInfo::may_expire`]: unfinished, or a partial upload
/// (its name is older than finished partials expiring).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS chunkd_uploads (
    id          TEXT PRIMARY KEY,
    revision    BIGINT NOT NULL,
    open        BOOLEAN NOT NULL,
    expires_at  TIMESTAMPTZ,
    record      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunkd_uploads_expiry ON chunkd_uploads (expires_at) WHERE open;
CREATE INDEX IF NOT EXISTS chunkd_uploads_owner ON chunkd_uploads ((record::jsonb ->> 'owner')) WHERE NOT open;
CREATE TABLE IF NOT EXISTS chunkd_ready (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    at          TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS chunkd_locks (
    upload_id   TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    wanted      BIGINT NOT NULL DEFAULT 0
);
";

/// A connection pool to the deployment's database, with chunkd's tables in place.
#[derive(Clone)]
pub struct Pg {
    pool: Pool,
    config: tokio_postgres::Config,
    schema: String,
}

impl fmt::Debug for Pg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pg")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish()
    }
}

impl Pg {
    /// Connects to `settings.url` with up to `settings.pool_size` connections, and
    /// creates chunkd's tables if they are missing, in `settings.schema` when it is set
    /// (created too). Broken connections are replaced, so a database restart costs the
    /// requests in flight, not the process.
    pub async fn connect(settings: &PgConfig) -> chunkd_core::Result<Pg> {
        let mut config: tokio_postgres::Config = settings
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| PgError::Settings(e.to_string()))?;
        let schema = settings.schema.as_str();
        if !schema.is_empty() {
            let valid = schema.len() <= 63
                && schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !schema.as_bytes()[0].is_ascii_digit();
            if !valid {
                return Err(PgError::Settings(format!(
                    "schema {schema:?}: use lowercase letters, digits and _"
                ))
                .into());
            }
            let (client, connection) = config.connect(NoTls).await.map_err(PgError::from)?;
            let connection = tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .map_err(PgError::from)?;
            drop(client);
            let _ = connection.await;
            config.options(format!("-c search_path={schema}"));
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Bounded waits: a request (or a lease renewal) never hangs on an unreachable
        // database or an exhausted pool; it fails and says so.
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(2))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| PgError::Settings(e.to_string()))?;
        let pg = Pg {
            pool,
            config,
            schema: settings.schema.clone(),
        };
        pg.migrate().await?;
        Ok(pg)
    }

    /// The notification channel `base` of this deployment: NOTIFY is database-wide, so
    /// deployments in other schemas of one database get channels of their own.
    pub(crate) fn channel(&self, base: &str) -> String {
        match self.schema.as_str() {
            "" => base.to_owned(),
            // Identifiers stop at 63 bytes; the schema is checked to be plain ASCII.
            schema => format!("{base}_{}", &schema[..schema.len().min(62 - base.len())]),
        }
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        Ok(self.pool.get().await?)
    }

    /// Several instances may start at once: one creates the tables at a time.
    async fn migrate(&self) -> Result<(), PgError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock(7405315129)", &[])
            .await?;
        tx.batch_execute(SCHEMA).await?;
        tx.batch_execute(outbox::SCHEMA).await?;
        tx.commit().await?;
        Ok(())
    }
}
