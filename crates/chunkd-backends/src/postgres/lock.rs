//! Upload locks that hold across instances: a lease row per locked upload, renewed by
//! its holder, with LISTEN/NOTIFY so a newer request anywhere asks the holder to let go
//! (newest wins) and a released lock is taken at once.
//!
//! A holder that dies (kill -9, lost host) stops renewing; its row expires after `ttl`
//! and the next request takes over. A holder that finds its row gone or wanted stops
//! its request at the next chunk. Records are compare-and-swapped besides, so even a
//! holder that stalled past its lease cannot overwrite a newer writer's state.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chunkd_core::memory::MemoryLocker;
use chunkd_core::{Error, Lease, Locker, Result, UploadId};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::{Pg, PgError};

const CHANNEL: &str = "chunkd_locks";
/// How often a waiting request asks the holder again (the holder may have changed).
const ASK_AGAIN: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_millis(250);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Signal {
    /// Upload id, and the token of the request that wants it.
    Wanted(String, String),
    Freed(String),
}

/// Locks shared through PostgreSQL by every instance using the same database.
pub struct PgLocker {
    inner: Arc<Inner>,
    /// Dropped with the locker: its leases' heartbeats and the listener stop.
    _alive: watch::Sender<()>,
}

struct Inner {
    pg: Pg,
    /// In-process exclusivity first, so one instance never races itself in the table.
    local: MemoryLocker,
    ttl: Duration,
    process: String,
    leases: AtomicU64,
    signals: broadcast::Sender<Signal>,
    alive: watch::Receiver<()>,
}

impl fmt::Debug for PgLocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLocker")
            .field("process", &self.inner.process)
            .field("ttl", &self.inner.ttl)
            .finish()
    }
}

impl PgLocker {
    /// Locks in `pg`; a holder that stops renewing loses its lock after `ttl`.
    pub fn new(pg: Pg, ttl: Duration) -> PgLocker {
        let (alive_tx, alive) = watch::channel(());
        let (signals, _) = broadcast::channel(1024);
        let process = format!(
            "{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        let inner = Arc::new(Inner {
            pg,
            local: MemoryLocker::new(),
            ttl: ttl.max(Duration::from_millis(300)),
            process,
            leases: AtomicU64::new(0),
            signals,
            alive,
        });
        tokio::spawn(listen(
            inner.pg.config.clone(),
            inner.signals.clone(),
            inner.alive.clone(),
        ));
        PgLocker {
            inner,
            _alive: alive_tx,
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Inner {
    /// `Ok(None)` when the lease is ours, else `Ok(Some(current holder))`.
    async fn try_acquire(
        &self,
        id: &str,
        token: &str,
    ) -> std::result::Result<Option<String>, PgError> {
        let client = self.pg.client().await?;
        let row = client
            .query_opt(
                "INSERT INTO chunkd_locks (upload_id, holder, expires_at, wanted)
                 VALUES ($1, $2, now() + make_interval(secs => $3), 0)
                 ON CONFLICT (upload_id) DO UPDATE
                   SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at, wanted = 0
                   WHERE chunkd_locks.expires_at < now()
                 RETURNING holder",
                &[&id, &token, &secs(self.ttl)],
            )
            .await?;
        if row.is_some() {
            return Ok(None);
        }
        let holder = client
            .query_opt(
                "SELECT holder FROM chunkd_locks WHERE upload_id = $1",
                &[&id],
            )
            .await?;
        Ok(Some(holder.map(|r| r.get(0)).unwrap_or_default()))
    }

    async fn ask_to_release(&self, id: &str, token: &str) -> std::result::Result<(), PgError> {
        let client = self.pg.client().await?;
        client
            .execute(
                "UPDATE chunkd_locks SET wanted = wanted + 1 WHERE upload_id = $1",
                &[&id],
            )
            .await?;
        client
            .execute(
                "SELECT pg_notify($1, 'want ' || $2::text || ' ' || $3::text)",
                &[&CHANNEL, &id, &token],
            )
            .await?;
        Ok(())
    }

    /// Extends the lease; `Some(wanted)` while it is ours, `None` once it is lost.
    async fn renew(&self, id: &str, token: &str) -> std::result::Result<Option<i64>, PgError> {
        let client = self.pg.client().await?;
        let row = client
            .query_opt(
                "UPDATE chunkd_locks SET expires_at = now() + make_interval(secs => $3)
                 WHERE upload_id = $1 AND holder = $2 RETURNING wanted",
                &[&id, &token, &secs(self.ttl)],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn release(&self, id: &str, token: &str) -> std::result::Result<(), PgError> {
        let client = self.pg.client().await?;
        client
            .execute(
                "DELETE FROM chunkd_locks WHERE upload_id = $1 AND holder = $2",
                &[&id, &token],
            )
            .await?;
        client
            .execute(
                "SELECT pg_notify($1, 'free ' || $2::text)",
                &[&CHANNEL, &id],
            )
            .await?;
        Ok(())
    }
}

/// Lock signals of every instance, from the notification channel; waiters poll
/// meanwhile when it is interrupted, so a lost signal only costs latency.
async fn listen(
    config: tokio_postgres::Config,
    signals: broadcast::Sender<Signal>,
    alive: watch::Receiver<()>,
) {
    let (listening, _) = watch::channel(false);
    super::notify::listen(
        config,
        CHANNEL.to_owned(),
        alive,
        listening,
        move |payload| {
            let mut words = payload.split(' ');
            let signal = match (words.next(), words.next(), words.next()) {
                (Some("want"), Some(id), Some(by)) => Signal::Wanted(id.to_owned(), by.to_owned()),
                (Some("free"), Some(id), None) => Signal::Freed(id.to_owned()),
                _ => return,
            };
            let _ = signals.send(signal);
        },
    )
    .await;
}

/// Waits for a `Freed(id)` signal (or for `wait` to pass).
async fn freed(signals: &mut broadcast::Receiver<Signal>, id: &str, wait: Duration) {
    let _ = tokio::time::timeout(wait, async {
        loop {
            match signals.recv().await {
                Ok(Signal::Freed(freed)) if freed == id => return,
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                _ => {}
            }
        }
    })
    .await;
}

/// Renews the lease and turns "wanted" or "lost" into the contended signal.
async fn heartbeat(
    inner: Arc<Inner>,
    id: String,
    token: String,
    contended: watch::Sender<bool>,
    mut signals: broadcast::Receiver<Signal>,
) {
    let mut alive = inner.alive.clone();
    let mut tick = tokio::time::interval(inner.ttl / 3);
    tick.tick().await;
    let mut renewed_at = Instant::now();
    loop {
        tokio::select! {
            // A renewal that hangs (a pool waiting for a connection) counts as failed.
            _ = tick.tick() => match tokio::time::timeout(inner.ttl / 3, inner.renew(&id, &token)).await {
                Ok(Ok(Some(0))) => renewed_at = Instant::now(),
                Ok(Ok(Some(_) | None)) => { contended.send_replace(true); }
                failed => {
                    match failed {
                        Ok(Err(e)) => tracing::warn!(error = %e, upload.id = %id, "lock renewal failed"),
                        _ => tracing::warn!(upload.id = %id, "lock renewal timed out"),
                    }
                    // The database may be away for this instance only: past half the
                    // lease's lifetime, stop the request before another instance can
                    // take the lease and write beside it.
                    if renewed_at.elapsed() >= inner.ttl / 2 {
                        contended.send_replace(true);
                    }
                }
            },
            signal = signals.recv() => match signal {
                // A want this request sent itself while it waited is no contention.
                Ok(Signal::Wanted(wanted, by)) if wanted == id && by != token => {
                    contended.send_replace(true);
                }
                Err(broadcast::error::RecvError::Closed) => return,
                _ => {}
            },
            _ = alive.changed() => return,
        }
    }
}

/// Held lock: stops the heartbeat and deletes the row when dropped.
struct Held {
    inner: Arc<Inner>,
    id: String,
    token: String,
    heartbeat: tokio::task::JoinHandle<()>,
    _local: Lease,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.heartbeat.abort();
        let (inner, id, token) = (self.inner.clone(), self.id.clone(), self.token.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = inner.release(&id, &token).await {
                    // The row expires after the ttl anyway.
                    tracing::warn!(error = %e, upload.id = %id, "lock release failed");
                }
            });
        }
    }
}

impl PgLocker {
    /// A fresh token naming this process and lease.
    fn token(&self) -> String {
        format!(
            "{}-{}",
            self.inner.process,
            self.inner.leases.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The lease once the row is ours: renewed by a heartbeat, contended when a request
    /// here or on another instance asks for it.
    fn held(
        &self,
        key: &str,
        token: String,
        mut local: Lease,
        signals: broadcast::Receiver<Signal>,
    ) -> Lease {
        let inner = &self.inner;
        let (contended_tx, mut contended_rx) = watch::channel(false);
        let heartbeat = tokio::spawn(heartbeat(
            inner.clone(),
            key.to_owned(),
            token.clone(),
            contended_tx,
            signals,
        ));
        let local_contended = local.take_contended();
        let contended = async move {
            tokio::select! {
                () = local_contended => {}
                _ = contended_rx.wait_for(|wanted| *wanted) => {}
            }
        };
        let held = Held {
            inner: inner.clone(),
            id: key.to_owned(),
            token,
            heartbeat,
            _local: local,
        };
        Lease::new(held, contended)
    }
}

#[async_trait]
impl Locker for PgLocker {
    async fn lock(&self, id: &UploadId, timeout: Duration) -> Result<Lease> {
        let inner = &self.inner;
        let deadline = Instant::now() + timeout;
        let local = inner.local.lock(id, timeout).await?;
        let token = self.token();
        let key = id.as_str();
        let mut signals = inner.signals.subscribe();
        let mut pause = Duration::from_millis(10);
        let mut asked_at: Option<Instant> = None;
        loop {
            let Some(holder) = inner.try_acquire(key, &token).await? else {
                break;
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Locked);
            }
            // This process's previous lease is on its way out (the local lock is ours):
            // just wait for it. Another process's holder is asked to let go.
            let ours = holder.starts_with(&format!("{}-", inner.process));
            if !ours && asked_at.is_none_or(|at| now - at >= ASK_AGAIN) {
                inner.ask_to_release(key, &token).await?;
                asked_at = Some(now);
            }
            freed(&mut signals, key, pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
        Ok(self.held(key, token, local, signals))
    }

    async fn try_lock(&self, id: &UploadId) -> Result<Option<Lease>> {
        let inner = &self.inner;
        let Some(local) = inner.local.try_lock(id).await? else {
            return Ok(None);
        };
        let token = self.token();
        let key = id.as_str();
        let signals = inner.signals.subscribe();
        // Held elsewhere: nobody is asked to let go, and the local lease drops.
        if inner.try_acquire(key, &token).await?.is_some() {
            return Ok(None);
        }
        Ok(Some(self.held(key, token, local, signals)))
    }
}
