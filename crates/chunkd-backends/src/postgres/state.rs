//! Upload records in PostgreSQL, shared by every instance of a deployment.

use std::time::SystemTime;

use async_trait::async_trait;
use chunkd_core::{Error, Result, StateStore, UploadId, UploadInfo};

use super::{Pg, PgError};

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

#[async_trait]
impl StateStore for PgState {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn insert(&self, info: &UploadInfo) -> Result<()> {
        let client = self.pg.client().await?;
        let json = encode(info)?;
        let inserted = client
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

    async fn update(&self, info: &UploadInfo) -> Result<UploadInfo> {
        let mut next = info.clone();
        next.revision += 1;
        let json = encode(&next)?;
        let client = self.pg.client().await?;
        let updated = client
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
        let exists = client
            .query_opt(
                "SELECT 1 FROM chunkd_uploads WHERE id = $1",
                &[&info.id.as_str()],
            )
            .await
            .map_err(PgError::from)?;
        Err(match exists {
            Some(_) => Error::Conflict,
            None => Error::NotFound(info.id.clone()),
        })
    }

    async fn remove(&self, id: &UploadId, rev: Option<u64>) -> Result<()> {
        let client = self.pg.client().await?;
        let removed = match rev {
            None => client
                .execute("DELETE FROM chunkd_uploads WHERE id = $1", &[&id.as_str()])
                .await
                .map_err(PgError::from)?,
            Some(rev) => client
                .execute(
                    "DELETE FROM chunkd_uploads WHERE id = $1 AND revision = $2",
                    &[&id.as_str(), &revision(rev)],
                )
                .await
                .map_err(PgError::from)?,
        };
        if removed == 0 && rev.is_some() {
            let exists = client
                .query_opt(
                    "SELECT 1 FROM chunkd_uploads WHERE id = $1",
                    &[&id.as_str()],
                )
                .await
                .map_err(PgError::from)?;
            if exists.is_some() {
                return Err(Error::Conflict);
            }
        }
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
}
