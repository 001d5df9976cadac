//! The outbox table: post-events saved in the same transaction as the record change
//! they describe. Several instances claim from it at once; `FOR UPDATE SKIP LOCKED`
//! and the hold make each event go to one of them at a time.

use std::time::SystemTime;

use chunkd_core::state::{OutboxEvent, outbox_key};
use chunkd_core::{HookEvent, HookKind};
use deadpool_postgres::GenericClient;

use super::PgError;

/// `held_until`: handed out until then (NULL: never handed out, or released after a
/// failure). `due_at`: not before then.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS chunkd_outbox (
    seq         BIGSERIAL PRIMARY KEY,
    upload_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    event       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_at      TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
    held_until  TIMESTAMPTZ,
    parked      BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS chunkd_outbox_by_upload ON chunkd_outbox (upload_id, seq)
    WHERE NOT parked;
";

fn encode(event: &HookEvent) -> Result<String, PgError> {
    serde_json::to_string(event).map_err(|source| PgError::Record {
        id: event.upload.id.to_string(),
        source,
    })
}

fn seq(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Saves `event` inside the caller's transaction: folded into the upload's waiting
/// post-receive when it is one and one was never handed out. The outer conditions are
/// checked again on the row a concurrent claim may just have changed.
pub(super) async fn note(c: &impl GenericClient, event: &HookEvent) -> Result<(), PgError> {
    let json = encode(event)?;
    let id = event.upload.id.as_str();
    if event.kind == HookKind::PostReceive {
        let folded = c
            .execute(
                "UPDATE chunkd_outbox SET event = $1
                 WHERE seq = (SELECT seq FROM chunkd_outbox WHERE upload_id = $2
                              AND kind = 'post-receive' AND attempts = 0
                              AND held_until IS NULL AND NOT parked
                              ORDER BY seq DESC LIMIT 1)
                 AND attempts = 0 AND held_until IS NULL AND NOT parked",
                &[&json, &id],
            )
            .await?;
        if folded > 0 {
            return Ok(());
        }
    }
    c.execute(
        "INSERT INTO chunkd_outbox (upload_id, kind, key, event) VALUES ($1, $2, $3, $4)",
        &[&id, &event.kind.name(), &outbox_key(), &json],
    )
    .await?;
    Ok(())
}

/// Hands out up to `limit` events due by `now`, each upload's oldest only, held until
/// `until`. An event that no longer reads is parked, not handed out forever.
pub(super) async fn claim(
    c: &impl GenericClient,
    now: SystemTime,
    until: SystemTime,
    limit: usize,
) -> Result<Vec<OutboxEvent>, PgError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c
        .query(
            "UPDATE chunkd_outbox SET held_until = $1 WHERE seq IN (
                 SELECT o.seq FROM chunkd_outbox o
                 WHERE NOT o.parked AND o.due_at <= $2
                 AND (o.held_until IS NULL OR o.held_until <= $2)
                 AND o.seq = (SELECT MIN(p.seq) FROM chunkd_outbox p
                              WHERE p.upload_id = o.upload_id AND NOT p.parked)
                 ORDER BY o.seq LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING seq, key, attempts, event",
            &[&until, &now, &limit],
        )
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.get(0);
        let attempts: i32 = row.get(2);
        match serde_json::from_str::<HookEvent>(row.get(3)) {
            Ok(event) => claimed.push(OutboxEvent {
                seq: seq as u64,
                key: row.get(1),
                attempts: attempts.max(0) as u32,
                event,
            }),
            Err(e) => {
                tracing::error!(seq, error = %e, "outbox event unreadable; parked");
                c.execute(
                    "UPDATE chunkd_outbox SET parked = true WHERE seq = $1",
                    &[&seq],
                )
                .await?;
            }
        }
    }
    claimed.sort_by_key(|o| o.seq);
    Ok(claimed)
}

pub(super) async fn delivered(c: &impl GenericClient, n: u64) -> Result<(), PgError> {
    c.execute("DELETE FROM chunkd_outbox WHERE seq = $1", &[&seq(n)])
        .await?;
    Ok(())
}

pub(super) async fn failed(
    c: &impl GenericClient,
    n: u64,
    retry_at: SystemTime,
    park: bool,
) -> Result<(), PgError> {
    c.execute(
        "UPDATE chunkd_outbox SET attempts = attempts + 1, due_at = $2, held_until = NULL,
         parked = $3 WHERE seq = $1",
        &[&seq(n), &retry_at, &park],
    )
    .await?;
    Ok(())
}

pub(super) async fn replay_parked(c: &impl GenericClient, now: SystemTime) -> Result<u64, PgError> {
    Ok(c.execute(
        "UPDATE chunkd_outbox SET parked = false, attempts = 0, due_at = $1,
         held_until = NULL WHERE parked",
        &[&now],
    )
    .await?)
}

pub(super) async fn parked(c: &impl GenericClient) -> Result<u64, PgError> {
    let row = c
        .query_one("SELECT COUNT(*) FROM chunkd_outbox WHERE parked", &[])
        .await?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}
