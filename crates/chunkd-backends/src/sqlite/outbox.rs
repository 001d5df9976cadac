//! The outbox table: post-events saved in the same transaction as the record change
//! they describe, handed out to one deliverer at a time.

use chunkd_core::state::{OutboxEvent, outbox_key};
use chunkd_core::{HookEvent, HookKind};
use rusqlite::{Connection, params};

use super::SqliteError;

/// `held_ms`: handed out until then (0: never handed out). `due_ms`: not before then.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    upload_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    event       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_ms      INTEGER NOT NULL DEFAULT 0,
    held_ms     INTEGER NOT NULL DEFAULT 0,
    parked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_by_upload ON outbox (upload_id, seq) WHERE parked = 0;
";

fn encode(event: &HookEvent) -> Result<String, SqliteError> {
    serde_json::to_string(event).map_err(|source| SqliteError::Record {
        id: event.upload.id.to_string(),
        source,
    })
}

/// Saves `event` on `conn`, inside the caller's transaction: folded into the upload's
/// waiting post-receive when it is one and one was never handed out.
pub(super) fn note(conn: &Connection, event: &HookEvent) -> Result<(), SqliteError> {
    let json = encode(event)?;
    let id = event.upload.id.as_str();
    if event.kind == HookKind::PostReceive {
        let folded = conn
            .prepare_cached(
                "UPDATE outbox SET event = ?1 WHERE seq = (
                     SELECT seq FROM outbox WHERE upload_id = ?2 AND kind = 'post-receive'
                     AND attempts = 0 AND held_ms = 0 AND parked = 0
                     ORDER BY seq DESC LIMIT 1)",
            )?
            .execute(params![json, id])?;
        if folded > 0 {
            return Ok(());
        }
    }
    conn.prepare_cached(
        "INSERT INTO outbox (upload_id, kind, key, event) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, event.kind.name(), outbox_key(), json])?;
    Ok(())
}

/// Hands out up to `limit` events due by `now_ms`, each upload's oldest only, held
/// until `until_ms`. An event that no longer reads is parked, not handed out forever.
pub(super) fn claim(
    conn: &Connection,
    now_ms: i64,
    until_ms: i64,
    limit: usize,
) -> Result<Vec<OutboxEvent>, SqliteError> {
    let tx = conn.unchecked_transaction()?;
    let rows: Vec<(i64, String, u32, String)> = tx
        .prepare_cached(
            "UPDATE outbox SET held_ms = ?1 WHERE seq IN (
                 SELECT o.seq FROM outbox o
                 WHERE o.parked = 0 AND o.due_ms <= ?2 AND o.held_ms <= ?2
                 AND o.seq = (SELECT MIN(p.seq) FROM outbox p
                              WHERE p.upload_id = o.upload_id AND p.parked = 0)
                 ORDER BY o.seq LIMIT ?3)
             RETURNING seq, key, attempts, event",
        )?
        .query_map(
            params![until_ms, now_ms, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut claimed = Vec::with_capacity(rows.len());
    for (seq, key, attempts, json) in rows {
        match serde_json::from_str::<HookEvent>(&json) {
            Ok(event) => claimed.push(OutboxEvent {
                seq: seq as u64,
                key,
                attempts,
                event,
            }),
            Err(e) => {
                tracing::error!(seq, error = %e, "outbox event unreadable; parked");
                tx.execute("UPDATE outbox SET parked = 1 WHERE seq = ?1", [seq])?;
            }
        }
    }
    tx.commit()?;
    claimed.sort_by_key(|o| o.seq);
    Ok(claimed)
}

pub(super) fn delivered(conn: &Connection, seq: u64) -> Result<(), SqliteError> {
    conn.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
        .execute([seq as i64])?;
    Ok(())
}

pub(super) fn failed(
    conn: &Connection,
    seq: u64,
    retry_ms: i64,
    park: bool,
) -> Result<(), SqliteError> {
    conn.prepare_cached(
        "UPDATE outbox SET attempts = attempts + 1, due_ms = ?2, held_ms = 0, parked = ?3
         WHERE seq = ?1",
    )?
    .execute(params![seq as i64, retry_ms, park])?;
    Ok(())
}

pub(super) fn replay_parked(conn: &Connection, now_ms: i64) -> Result<u64, SqliteError> {
    let n = conn.execute(
        "UPDATE outbox SET parked = 0, attempts = 0, due_ms = ?1, held_ms = 0 WHERE parked = 1",
        [now_ms],
    )?;
    Ok(n as u64)
}

pub(super) fn parked(conn: &Connection) -> Result<u64, SqliteError> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM outbox WHERE parked = 1", [], |row| {
        row.get(0)
    })?;
    Ok(n as u64)
}
