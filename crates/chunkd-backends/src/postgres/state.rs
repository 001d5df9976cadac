//! Upload records in PostgreSQL, shared by every instance of a deployment.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chunkd_core::state::OutboxEvent;
use chunkd_core::{Error, HookEvent, Result, StateStore, UploadId, UploadInfo};
use deadpool_postgres::GenericClient;

use super::{Pg, PgError, outbox};

/// Upload records in one PostgreSQL table; every update is a compare-and-swap on the
/// record's revision, so instances never overwrite each other's changes.
#[derive(Debug, Clone)]
pub struct PgState {
    pg: Pg,
}

impl PgState {
    /// Uses `pg` (see [`Pg::connect`]), creating the tables if needed.
    pub fn new(pg: Pg) -> Self {
        PgState { pg }
    }
}

fn encode(info: &UploadInfo) -> std::result::Result<String, PgError> {
    serde_json::to_string(info).map_err(|source| PgError::Record {
        id: info.id.to_string(),
        source,
    })
}

fn decode(id: &str, json: &str) -> std::result::Result<UploadInfo, PgError> {
    serde_json::from_str(json).map_err(|source| PgError::Record {
        id: id.to_owned(),
        source,
    })
}

fn revision(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The record changes, on a connection or inside a transaction.
mod change {
    use super::*;

    pub(super) async fn insert(c: &impl GenericClient, info: &UploadInfo) -> Result<()> {
        let json = encode(info)?;
        let inserted = c
            .execute(
                "INSERT INTO chunkd_uploads (id, revision, open, expires_at, record)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                &[
                    &info.id.as_str(),
                    &revision(info.revision),
                    &info.may_expire(),
                    &info.expires_at,
                    &json,
                ],
            )
            .await
            .map_err(PgError::from)?;
        if inserted == 0 {
            return Err(Error::AlreadyExists(info.id.clone()));
        }
        Ok(())
    }

    pub(super) async fn update(c: &impl GenericClient, info: &UploadInfo) -> Result<UploadInfo> {
        let mut next = info.clone();
        next.revision += 1;
        let json = encode(&next)?;
        let updated = c
            .execute(
                "UPDATE chunkd_uploads SET revision = $3, open = $4, expires_at = $5, record = $6
                 WHERE id = $1 AND revision = $2",
                &[
                    &info.id.as_str(),
                    &revision(info.revision),
                    &revision(next.revision),
                    &next.may_expire(),
                    &next.expires_at,
                    &json,
                ],
            )
            .await
            .map_err(PgError::from)?;
        if updated == 1 {
            return Ok(next);
        }
        Err(match exists(c, &info.id).await? {
            true => Error::Conflict,
            false => Error::NotFound(info.id.clone()),
        })
    }

    pub(super) async fn remove(
        c: &impl GenericClient,
        id: &UploadId,
        rev: Option<u64>,
    ) -> Result<()> {
        let removed = match rev {
            None => c
                .execute("DELETE FROM chunkd_uploads WHERE id = $1", &[&id.as_str()])
                .await
                .map_err(PgError::from)?,
            Some(rev) => c
                .execute(
                    "DELETE FROM chunkd_uploads WHERE id = $1 AND revision = $2",
                    &[&id.as_str(), &revision(rev)],
                )
                .await
                .map_err(PgError::from)?,
        };
        if removed == 0 && rev.is_some() && exists(c, id).await? {
            return Err(Error::Conflict);
        }
        Ok(())
    }

    async fn exists(c: &impl GenericClient, id: &UploadId) -> Result<bool> {
        let row = c
            .query_opt(
                "SELECT 1 FROM chunkd_uploads WHERE id = $1",
                &[&id.as_str()],
            )
            .await
            .map_err(PgError::from)?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl StateStore for PgState {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn check(&self) -> Result<()> {
        let client = self.pg.client().await?;
        client
            .execute(
                "INSERT INTO chunkd_ready (id, at) VALUES (1, now())
                 ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                &[],
            )
            .await
            .map_err(super::PgError::from)?;
        Ok(())
    }

    async fn insert_with_event(&self, info: &UploadInfo, event: Option<&HookEvent>) -> Result<()> {
        let mut client = self.pg.client().await?;
        let Some(event) = event else {
            return change::insert(&client, info).await;
        };
        let tx = client.transaction().await.map_err(PgError::from)?;
        change::insert(&tx, info).await?;
        outbox::note(&tx, event).await?;
        tx.commit().await.map_err(PgError::from)?;
        Ok(())
    }

    async fn get(&self, id: &UploadId) -> Result<UploadInfo> {
        let client = self.pg.client().await?;
        let row = client
            .query_opt(
                "SELECT record FROM chunkd_uploads WHERE id = $1",
                &[&id.as_str()],
            )
            .await
            .map_err(PgError::from)?;
        match row {
            Some(row) => Ok(decode(id.as_str(), row.get(0))?),
            None => Err(Error::NotFound(id.clone())),
        }
    }

    async fn finished_of(&self, owner: &str, limit: usize) -> Result<Vec<UploadInfo>> {
        let client = self.pg.client().await?;
        // The expression is the index's, so the index serves the lookup.
        let rows = client
            .query(
                "SELECT id, record FROM chunkd_uploads
                 WHERE NOT open AND (record::jsonb ->> 'owner') = $1
                 ORDER BY (record::jsonb -> 'created_at' ->> 'secs_since_epoch')::bigint DESC,
                          (record::jsonb -> 'created_at' ->> 'nanos_since_epoch')::bigint DESC
                 LIMIT $2",
                &[&owner, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(PgError::from)?;
        let mut owned = Vec::with_capacity(rows.len());
        for row in rows {
            owned.push(decode(row.get(0), row.get(1))?);
        }
        Ok(owned)
    }

    async fn update_with_event(
        &self,
        info: &UploadInfo,
        event: Option<&HookEvent>,
    ) -> Result<UploadInfo> {
        let mut client = self.pg.client().await?;
        let Some(event) = event else {
            return change::update(&client, info).await;
        };
        let tx = client.transaction().await.map_err(PgError::from)?;
        let next = change::update(&tx, info).await?;
        outbox::note(&tx, event).await?;
        tx.commit().await.map_err(PgError::from)?;
        Ok(next)
    }

    async fn remove_with_event(
        &self,
        id: &UploadId,
        rev: Option<u64>,
        event: Option<&HookEvent>,
    ) -> Result<()> {
        let mut client = self.pg.client().await?;
        let Some(event) = event else {
            return change::remove(&client, id, rev).await;
        };
        let tx = client.transaction().await.map_err(PgError::from)?;
        change::remove(&tx, id, rev).await?;
        outbox::note(&tx, event).await?;
        tx.commit().await.map_err(PgError::from)?;
        Ok(())
    }

    async fn expired(&self, now: SystemTime, limit: usize) -> Result<Vec<UploadId>> {
        let client = self.pg.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT id FROM chunkd_uploads WHERE open AND expires_at <= $1
                 ORDER BY expires_at LIMIT $2",
                &[&now, &limit],
            )
            .await
            .map_err(PgError::from)?;
        Ok(rows
            .iter()
            .filter_map(|row| row.get::<_, &str>(0).parse().ok())
            .collect())
    }

    async fn claim_events(
        &self,
        now: SystemTime,
        hold: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        let client = self.pg.client().await?;
        Ok(outbox::claim(&client, now, now + hold, limit).await?)
    }

    async fn event_delivered(&self, seq: u64) -> Result<()> {
        let client = self.pg.client().await?;
        Ok(outbox::delivered(&client, seq).await?)
    }

    async fn event_failed(&self, seq: u64, retry_at: SystemTime, park: bool) -> Result<()> {
        let client = self.pg.client().await?;
        Ok(outbox::failed(&client, seq, retry_at, park).await?)
    }

    async fn parked_events(&self) -> Result<u64> {
        let client = self.pg.client().await?;
        Ok(outbox::parked(&client).await?)
    }

    async fn replay_parked(&self, now: SystemTime) -> Result<u64> {
        let client = self.pg.client().await?;
        Ok(outbox::replay_parked(&client, now).await?)
    }
}
