//! Upload records in an embedded SQLite database (WAL mode).
//!
//! Several processes on one machine may open the same file (the server and `chunkd gc`);
//! every update is a compare-and-swap on the record's revision.

mod cache;
mod outbox;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chunkd_core::state::{OutboxEvent, epoch_millis};
use chunkd_core::{Error, HookEvent, Result, StateStore, UploadId, UploadInfo};
use rusqlite::{Connection, OptionalExtension, params};

use self::cache::RecordCache;

use crate::sync::SyncPolicy;

#[derive(Debug, thiserror::Error)]
enum SqliteError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("record of {id} is unreadable: {source}")]
    Record {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("state database mutex poisoned")]
    Poisoned,
}

impl From<SqliteError> for Error {
    fn from(e: SqliteError) -> Self {
        let full = matches!(
            &e,
            SqliteError::Sql(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DiskFull
        );
        match full {
            true => Error::StorageFull,
            false => Error::backend("sqlite", e),
        }
    }
}

/// `open` is [`UploadInfo::may_expire`]: unfinished, or a partial upload (its name is
/// older than finished partials expiring).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS uploads (
    id          TEXT PRIMARY KEY,
    revision    INTEGER NOT NULL,
    open        INTEGER NOT NULL,
    expires_ms  INTEGER,
    record      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_expiry ON uploads (expires_ms) WHERE open = 1;
CREATE INDEX IF NOT EXISTS uploads_owner ON uploads (json_extract(record, '$.owner')) WHERE open = 0;
CREATE TABLE IF NOT EXISTS ready (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    at_ms       INTEGER NOT NULL
);
";

/// Upload records in one SQLite file.
///
/// Writes go through one connection on tokio's blocking pool (a commit waits for fsync).
/// Reads are answered from a cache of records the writer keeps coherent (see
/// `cache.rs`); a miss uses a second connection inline: in WAL mode a reader never waits
/// for a writer, and a primary-key lookup takes microseconds, less than a hop to another
/// thread.
#[derive(Debug, Clone)]
pub struct SqliteState {
    conn: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    cache: Option<Arc<RecordCache>>,
}

fn millis(t: Option<SystemTime>) -> Option<i64> {
    t.map(|t| {
        t.duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as i64
    })
}

fn decode(id: &str, json: &str) -> std::result::Result<UploadInfo, SqliteError> {
    serde_json::from_str(json).map_err(|source| SqliteError::Record {
        id: id.to_owned(),
        source,
    })
}

fn encode(info: &UploadInfo) -> std::result::Result<String, SqliteError> {
    serde_json::to_string(info).map_err(|source| SqliteError::Record {
        id: info.id.to_string(),
        source,
    })
}

impl SqliteState {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: impl AsRef<Path>, sync: SyncPolicy) -> Result<Self> {
        let open = || -> std::result::Result<Connection, SqliteError> {
            let conn = Connection::open(path.as_ref())?;
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            let synchronous = match sync {
                SyncPolicy::Always => "FULL",
                SyncPolicy::Never => "NORMAL",
            };
            conn.pragma_update(None, "synchronous", synchronous)?;
            conn.execute_batch(SCHEMA)?;
            conn.execute_batch(outbox::SCHEMA)?;
            Ok(conn)
        };
        let conn = open()?;
        let reader = Connection::open_with_flags(
            path.as_ref(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|r| r.busy_timeout(Duration::from_secs(10)).map(|()| r))
        .map_err(SqliteError::from)?;
        Ok(SqliteState {
            conn: Arc::new(Mutex::new(conn)),
            reader: Arc::new(Mutex::new(reader)),
            cache: Some(Arc::new(RecordCache::new())),
        })
    }

    /// Reads every record from the database: for several processes that all change
    /// records in one database file, where no process's cache would see the others'
    /// commits.
    pub fn uncached(mut self) -> Self {
        self.cache = None;
        self
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().map_err(|_| SqliteError::Poisoned)?;
            f(&conn)
        })
        .await
        .map_err(|e| Error::backend("sqlite", e))?
    }
}

fn sql(e: rusqlite::Error) -> Error {
    SqliteError::Sql(e).into()
}

#[async_trait]
impl StateStore for SqliteState {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn check(&self) -> Result<()> {
        let now = epoch_millis(SystemTime::now());
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO ready (id, at_ms) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
                [now],
            )
            .map_err(SqliteError::from)?;
            Ok(())
        })
        .await
    }

    async fn insert_with_event(&self, info: &UploadInfo, event: Option<&HookEvent>) -> Result<()> {
        let info = info.clone();
        let event = event.cloned();
        let cache = self.cache.clone();
        self.run(move |conn| {
            let json = encode(&info)?;
            let tx = conn.unchecked_transaction().map_err(sql)?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO uploads (id, revision, open, expires_ms, record)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        info.id.as_str(),
                        info.revision as i64,
                        info.may_expire(),
                        millis(info.expires_at),
                        json
                    ])
                })
                .map_err(sql)?;
            if inserted == 0 {
                return Err(Error::AlreadyExists(info.id.clone()));
            }
            if let Some(event) = &event {
                outbox::note(&tx, event)?;
            }
            let commit = cache.as_deref().map(|cache| cache.commit(&info.id));
            tx.commit().map_err(sql)?;
            if let Some(commit) = commit {
                commit.stored(&info, json.len());
            }
            Ok(())
        })
        .await
    }

    async fn get(&self, id: &UploadId) -> Result<UploadInfo> {
        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.get(id, SystemTime::now()));
        if let Some(info) = cached {
            return Ok(info);
        }
        let ticket = self.cache.as_ref().map(|cache| cache.ticket());
        let reader = self.reader.lock().map_err(|_| SqliteError::Poisoned)?;
        let json: Option<String> = reader
            .prepare_cached("SELECT record FROM uploads WHERE id = ?1")
            .and_then(|mut stmt| stmt.query_row([id.as_str()], |row| row.get(0)).optional())
            .map_err(sql)?;
        drop(reader);
        let info = json
            .as_deref()
            .map(|json| decode(id.as_str(), json))
            .transpose()?;
        if let (Some(cache), Some(ticket)) = (&self.cache, ticket) {
            let found = info.as_ref().zip(json.as_ref().map(String::len));
            cache.fill(ticket, id, found);
        }
        info.ok_or_else(|| Error::NotFound(id.clone()))
    }

    async fn finished_of(&self, owner: &str, limit: usize) -> Result<Vec<UploadInfo>> {
        let reader = self.reader.lock().map_err(|_| SqliteError::Poisoned)?;
        // The expression is the index's, so the index serves the lookup.
        let mut stmt = reader
            .prepare_cached(
                "SELECT id, record FROM uploads
                 WHERE open = 0 AND json_extract(record, '$.owner') = ?1
                 ORDER BY json_extract(record, '$.created_at.secs_since_epoch') DESC,
                          json_extract(record, '$.created_at.nanos_since_epoch') DESC
                 LIMIT ?2",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map(params![owner, limit as i64], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(sql)?;
        let mut owned = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(sql)?;
            owned.push(decode(&id, &json)?);
        }
        Ok(owned)
    }

    async fn update_with_event(
        &self,
        info: &UploadInfo,
        event: Option<&HookEvent>,
    ) -> Result<UploadInfo> {
        let mut next = info.clone();
        next.revision += 1;
        let event = event.cloned();
        let cache = self.cache.clone();
        self.run(move |conn| {
            let json = encode(&next)?;
            let tx = conn.unchecked_transaction().map_err(sql)?;
            let changed = tx
                .prepare_cached(
                    "UPDATE uploads SET revision = ?1, open = ?2, expires_ms = ?3, record = ?4
                     WHERE id = ?5 AND revision = ?6",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        next.revision as i64,
                        next.may_expire(),
                        millis(next.expires_at),
                        json,
                        next.id.as_str(),
                        (next.revision - 1) as i64
                    ])
                })
                .map_err(sql)?;
            if changed == 1 {
                if let Some(event) = &event {
                    outbox::note(&tx, event)?;
                }
                let commit = cache.as_deref().map(|cache| cache.commit(&next.id));
                tx.commit().map_err(sql)?;
                if let Some(commit) = commit {
                    commit.stored(&next, json.len());
                }
                return Ok(next);
            }
            // The caller's record was not the database's: the cached one may not be either.
            if let Some(cache) = &cache {
                cache.forget(&next.id);
            }
            let exists: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM uploads WHERE id = ?1)",
                    [next.id.as_str()],
                    |row| row.get(0),
                )
                .map_err(sql)?;
            Err(if exists {
                Error::Conflict
            } else {
                Error::NotFound(next.id.clone())
            })
        })
        .await
    }

    async fn remove_with_event(
        &self,
        id: &UploadId,
        revision: Option<u64>,
        event: Option<&HookEvent>,
    ) -> Result<()> {
        let id = id.clone();
        let event = event.cloned();
        let cache = self.cache.clone();
        self.run(move |conn| {
            let tx = conn.unchecked_transaction().map_err(sql)?;
            match revision {
                None => {
                    tx.execute("DELETE FROM uploads WHERE id = ?1", [id.as_str()])
                        .map_err(sql)?;
                }
                Some(rev) => {
                    let deleted = tx
                        .execute(
                            "DELETE FROM uploads WHERE id = ?1 AND revision = ?2",
                            params![id.as_str(), rev as i64],
                        )
                        .map_err(sql)?;
                    let exists: bool = tx
                        .query_row(
                            "SELECT EXISTS (SELECT 1 FROM uploads WHERE id = ?1)",
                            [id.as_str()],
                            |row| row.get(0),
                        )
                        .map_err(sql)?;
                    if deleted == 0 && exists {
                        if let Some(cache) = &cache {
                            cache.forget(&id);
                        }
                        return Err(Error::Conflict);
                    }
                }
            }
            if let Some(event) = &event {
                outbox::note(&tx, event)?;
            }
            // Dropped after the commit: the record is forgotten.
            let _commit = cache.as_deref().map(|cache| cache.commit(&id));
            tx.commit().map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn expired(&self, now: SystemTime, limit: usize) -> Result<Vec<UploadId>> {
        let now = millis(Some(now)).unwrap_or_default();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM uploads WHERE open = 1 AND expires_ms IS NOT NULL
                     AND expires_ms <= ?1 LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![now, limit as i64], |row| row.get::<_, String>(0))
                .map_err(sql)?;
            let mut ids = Vec::new();
            for row in rows {
                // A record with an id we would never generate is skipped, not fatal.
                if let Ok(id) = row.map_err(sql)?.parse() {
                    ids.push(id);
                }
            }
            Ok(ids)
        })
        .await
    }

    async fn claim_events(
        &self,
        now: SystemTime,
        hold: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        let (now, until) = (epoch_millis(now), epoch_millis(now + hold));
        self.run(move |conn| Ok(outbox::claim(conn, now, until, limit)?))
            .await
    }

    async fn event_delivered(&self, seq: u64) -> Result<()> {
        self.run(move |conn| Ok(outbox::delivered(conn, seq)?))
            .await
    }

    async fn event_failed(&self, seq: u64, retry_at: SystemTime, park: bool) -> Result<()> {
        let retry = epoch_millis(retry_at);
        self.run(move |conn| Ok(outbox::failed(conn, seq, retry, park)?))
            .await
    }

    async fn parked_events(&self) -> Result<u64> {
        self.run(|conn| Ok(outbox::parked(conn)?)).await
    }

    async fn replay_parked(&self, now: SystemTime) -> Result<u64> {
        let now = epoch_millis(now);
        self.run(move |conn| Ok(outbox::replay_parked(conn, now)?))
            .await
    }
}
