use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::hooks::{HookEvent, HookKind};
use crate::id::UploadId;
use crate::state::{OutboxEvent, StateStore, outbox_key};
use crate::upload::UploadInfo;

/// Keeps upload records, and the outbox, in memory.
#[derive(Debug, Default)]
pub struct MemoryState {
    inner: Mutex<Records>,
}

#[derive(Debug, Default)]
struct Records {
    uploads: HashMap<UploadId, UploadInfo>,
    outbox: BTreeMap<u64, Outboxed>,
    next_seq: u64,
}

#[derive(Debug)]
struct Outboxed {
    key: String,
    event: HookEvent,
    attempts: u32,
    due: SystemTime,
    held_until: Option<SystemTime>,
    parked: bool,
}

impl Records {
    /// The outbox's half of a commit, under the same lock as the record's.
    fn note(&mut self, event: Option<&HookEvent>) {
        let Some(event) = event else { return };
        if event.kind == HookKind::PostReceive {
            let waiting = self.outbox.values_mut().find(|o| {
                o.event.kind == HookKind::PostReceive
                    && o.event.upload.id == event.upload.id
                    && o.attempts == 0
                    && o.held_until.is_none()
                    && !o.parked
            });
            if let Some(waiting) = waiting {
                waiting.event = event.clone();
                return;
            }
        }
        self.next_seq += 1;
        self.outbox.insert(
            self.next_seq,
            Outboxed {
                key: outbox_key(),
                event: event.clone(),
                attempts: 0,
                due: SystemTime::UNIX_EPOCH,
                held_until: None,
                parked: false,
            },
        );
    }
}

impl MemoryState {
    /// An empty state store, lost when the process exits.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Records) -> Result<T>) -> Result<T> {
        let mut records = self
            .inner
            .lock()
            .map_err(|_| Error::backend("memory", "poisoned lock"))?;
        f(&mut records)
    }
}

#[async_trait]
impl StateStore for MemoryState {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn insert_with_event(&self, info: &UploadInfo, event: Option<&HookEvent>) -> Result<()> {
        self.with(|r| {
            if r.uploads.contains_key(&info.id) {
                return Err(Error::AlreadyExists(info.id.clone()));
            }
            r.uploads.insert(info.id.clone(), info.clone());
            r.note(event);
            Ok(())
        })
    }

    async fn finished_of(&self, owner: &str, limit: usize) -> Result<Vec<UploadInfo>> {
        self.with(|r| {
            let mut owned: Vec<UploadInfo> = r
                .uploads
                .values()
                .filter(|u| u.owner.as_deref() == Some(owner) && !u.may_expire())
                .cloned()
                .collect();
            owned.sort_by_key(|u| std::cmp::Reverse(u.created_at));
            owned.truncate(limit);
            Ok(owned)
        })
    }

    async fn get(&self, id: &UploadId) -> Result<UploadInfo> {
        self.with(|r| {
            r.uploads
                .get(id)
                .cloned()
                .ok_or_else(|| Error::NotFound(id.clone()))
        })
    }

    async fn update_with_event(
        &self,
        info: &UploadInfo,
        event: Option<&HookEvent>,
    ) -> Result<UploadInfo> {
        self.with(|r| {
            let stored = r
                .uploads
                .get_mut(&info.id)
                .ok_or_else(|| Error::NotFound(info.id.clone()))?;
            if stored.revision != info.revision {
                return Err(Error::Conflict);
            }
            let mut next = info.clone();
            next.revision += 1;
            *stored = next.clone();
            r.note(event);
            Ok(next)
        })
    }

    async fn remove_with_event(
        &self,
        id: &UploadId,
        revision: Option<u64>,
        event: Option<&HookEvent>,
    ) -> Result<()> {
        self.with(|r| {
            match (r.uploads.get(id), revision) {
                (Some(stored), Some(rev)) if stored.revision != rev => return Err(Error::Conflict),
                _ => {}
            }
            r.uploads.remove(id);
            r.note(event);
            Ok(())
        })
    }

    async fn expired(&self, now: SystemTime, limit: usize) -> Result<Vec<UploadId>> {
        self.with(|r| {
            Ok(r.uploads
                .values()
                .filter(|i| i.is_expired(now))
                .take(limit)
                .map(|i| i.id.clone())
                .collect())
        })
    }

    async fn claim_events(
        &self,
        now: SystemTime,
        hold: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        self.with(|r| {
            let mut seen = HashSet::new();
            let mut claimed = Vec::new();
            for (seq, o) in r.outbox.iter_mut() {
                if claimed.len() >= limit {
                    break;
                }
                // Only each upload's oldest unparked event may go.
                if o.parked || !seen.insert(o.event.upload.id.clone()) {
                    continue;
                }
                let held = o.held_until.is_some_and(|until| until > now);
                if held || o.due > now {
                    continue;
                }
                o.held_until = Some(now + hold);
                claimed.push(OutboxEvent {
                    seq: *seq,
                    key: o.key.clone(),
                    attempts: o.attempts,
                    event: o.event.clone(),
                });
            }
            Ok(claimed)
        })
    }

    async fn event_delivered(&self, seq: u64) -> Result<()> {
        self.with(|r| {
            r.outbox.remove(&seq);
            Ok(())
        })
    }

    async fn event_failed(&self, seq: u64, retry_at: SystemTime, park: bool) -> Result<()> {
        self.with(|r| {
            if let Some(o) = r.outbox.get_mut(&seq) {
                o.attempts = o.attempts.saturating_add(1);
                o.due = retry_at;
                o.held_until = None;
                o.parked = park;
            }
            Ok(())
        })
    }

    async fn parked_events(&self) -> Result<u64> {
        self.with(|r| Ok(r.outbox.values().filter(|o| o.parked).count() as u64))
    }

    async fn replay_parked(&self, now: SystemTime) -> Result<u64> {
        self.with(|r| {
            let mut replayed = 0;
            for o in r.outbox.values_mut().filter(|o| o.parked) {
                o.parked = false;
                o.attempts = 0;
                o.due = now;
                o.held_until = None;
                replayed += 1;
            }
            Ok(replayed)
        })
    }
}
