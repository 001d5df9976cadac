//! Post-events through the outbox: saved with the change they describe, then delivered
//! to the hooks at least once, each upload's in order, retried with backoff and parked
//! after too many failures.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;

use super::Uploads;
use crate::error::Error;
use crate::hooks::{Delivered, Event, HookEvent, HookKind};
use crate::id::UploadId;
use crate::state::OutboxEvent;
use crate::upload::UploadInfo;

/// How post-events are delivered.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// At most one post-receive per upload this often.
    pub progress_interval: Duration,
    /// An event failing this many times is parked.
    pub attempts: u32,
    /// The wait after the first failure; it doubles with each failure after.
    pub first_retry: Duration,
    /// The longest wait between two attempts.
    pub max_retry: Duration,
    /// How long an instance holds an event it is delivering; longer than a delivery
    /// can take, so no other instance delivers it meanwhile.
    pub hold: Duration,
    /// How often the outbox is looked at when nothing here wrote to it (events of
    /// other instances, retries falling due).
    pub poll: Duration,
    /// Events (of different uploads) delivered at once.
    pub concurrency: usize,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            progress_interval: Duration::from_secs(1),
            attempts: 12,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(600),
            hold: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            concurrency: 8,
        }
    }
}

impl Delivery {
    /// The wait before attempt `failures + 1`.
    fn backoff(&self, failures: u32) -> Duration {
        let doubled = self.first_retry.saturating_mul(
            1u32.checked_shl(failures.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        doubled.min(self.max_retry)
    }
}

/// When each upload's last post-receive was saved, so a fast upload does not write one
/// at every checkpoint.
#[derive(Debug, Default)]
pub(super) struct ProgressThrottle(Mutex<HashMap<UploadId, Instant>>);

/// Uploads remembered before the quiet ones are forgotten.
const REMEMBERED: usize = 10_000;

impl ProgressThrottle {
    fn due(&self, id: &UploadId, interval: Duration) -> bool {
        let Ok(mut last) = self.0.lock() else {
            return true;
        };
        let now = Instant::now();
        if last
            .get(id)
            .is_some_and(|at| now.duration_since(*at) < interval)
        {
            return false;
        }
        last.insert(id.clone(), now);
        // Uploads abandoned mid-way never finish: forget those long quiet.
        if last.len() > REMEMBERED {
            last.retain(|_, at| now.duration_since(*at) < interval);
        }
        true
    }

    fn forget(&self, id: &UploadId) {
        if let Ok(mut last) = self.0.lock() {
            last.remove(id);
        }
    }
}

impl Uploads {
    /// The post-event of `kind` describing `info` as it is about to be saved, when a
    /// hook wants it (post-receive at most once per interval per upload).
    pub(super) fn post_event(&self, kind: HookKind, info: &UploadInfo) -> Option<HookEvent> {
        if !self.0.hooks.wants(kind) {
            return None;
        }
        match kind {
            HookKind::PostReceive => {
                let interval = self.0.delivery.progress_interval;
                if !self.0.progress.due(&info.id, interval) {
                    return None;
                }
            }
            HookKind::PostFinish | HookKind::PostTerminate => self.0.progress.forget(&info.id),
            _ => {}
        }
        Some(self.hook_event(kind, info, None))
    }

    /// Wakes the delivery loop after an event was saved.
    pub(super) fn outbox_written(&self, event: &Option<HookEvent>) {
        if event.is_some() {
            self.0.outbox_written.notify_one();
        }
    }

    /// Delivers the outbox's events to the hooks until [`Uploads::shutdown`]. Run it once
    /// per process (several processes may share one state store: each event is still
    /// delivered by one at a time). Does nothing when no hook wants post-events.
    pub async fn deliver_events(&self) {
        let wanted = [
            HookKind::PostCreate,
            HookKind::PostReceive,
            HookKind::PostFinish,
            HookKind::PostTerminate,
        ];
        if !wanted.into_iter().any(|kind| self.0.hooks.wants(kind)) {
            return;
        }
        let delivery = &self.0.delivery;
        let shutdown = self.0.shutdown.clone();
        while !shutdown.is_cancelled() {
            let batch = match self
                .0
                .state
                .claim_events(SystemTime::now(), delivery.hold, 64)
                .await
            {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %crate::error::with_causes(&e), "outbox unreadable; trying again");
                    Vec::new()
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    () = self.0.outbox_written.notified() => {}
                    () = tokio::time::sleep(delivery.poll) => {}
                    () = shutdown.cancelled() => {}
                }
                continue;
            }
            futures::stream::iter(batch)
                .for_each_concurrent(delivery.concurrency.max(1), |event| self.deliver_one(event))
                .await;
        }
    }

    async fn deliver_one(&self, outboxed: OutboxEvent) {
        let OutboxEvent {
            seq,
            key,
            attempts,
            event,
        } = outboxed;
        crate::metrics::hook_invoked(event.kind);
        let outcome = match self.0.hooks.deliver(&event, &key).await {
            Ok(answer) => {
                let stopped = match answer {
                    Delivered::StopUpload => self.stop_upload(&event).await,
                    Delivered::Noted => Ok(()),
                };
                match stopped {
                    Ok(()) => self.0.state.event_delivered(seq).await,
                    // The answer is asked for again, as a failed delivery is.
                    Err(e) => self.delivery_failed(seq, &key, &event, attempts, &e).await,
                }
            }
            Err(failure) => {
                crate::metrics::hook_failed(event.kind);
                self.delivery_failed(seq, &key, &event, attempts, &failure)
                    .await
            }
        };
        if let Err(e) = outcome {
            // The hold runs out and the event is handed out again: at least once.
            tracing::warn!(upload.id = %event.upload.id, %key, error = %crate::error::with_causes(&e), "outbox not updated after a delivery attempt");
        }
    }

    async fn delivery_failed(
        &self,
        seq: u64,
        key: &str,
        event: &HookEvent,
        attempts: u32,
        failure: &(dyn std::fmt::Display + Sync),
    ) -> crate::error::Result<()> {
        let failures = attempts.saturating_add(1);
        let park = failures >= self.0.delivery.attempts;
        match park {
            true => {
                crate::metrics::event_parked();
                tracing::error!(upload.id = %event.upload.id, hook = event.kind.name(), %key, error = %failure, failures, "post-event parked after every attempt failed")
            }
            false => {
                tracing::warn!(upload.id = %event.upload.id, hook = event.kind.name(), %key, error = %failure, failures, "post-event delivery failed; will retry")
            }
        }
        let retry_at = SystemTime::now() + self.0.delivery.backoff(failures);
        self.0.state.event_failed(seq, retry_at, park).await
    }

    /// An application's `StopUpload` answer: the running request lets go (the newest
    /// lock wins), then the unfinished upload is removed as if its client terminated it,
    /// without asking pre-terminate (the application asked for it). Only the upload the
    /// event was about, and only while unfinished; an error has the answer asked again.
    async fn stop_upload(&self, event: &HookEvent) -> crate::error::Result<()> {
        let id = &event.upload.id;
        if event.kind != HookKind::PostReceive {
            tracing::warn!(upload.id = %id, hook = event.kind.name(), "StopUpload answers only post-receive; ignored");
            return Ok(());
        }
        let _lease = self.lock(id).await?;
        let info = match self.0.state.get(id).await {
            Ok(info) => info,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if info.created_at != event.upload.created_at {
            tracing::warn!(upload.id = %id, "StopUpload for an earlier upload of the same id; ignored");
            return Ok(());
        }
        if info.is_finished() {
            tracing::warn!(upload.id = %id, "StopUpload came after the upload finished; it stays");
            return Ok(());
        }
        self.0.store.delete(&info).await?;
        let removed = self.post_event(HookKind::PostTerminate, &info);
        self.0
            .state
            .remove_with_event(id, Some(info.revision), removed.as_ref())
            .await?;
        self.outbox_written(&removed);
        tracing::info!(upload.id = %id, "upload stopped by the application");
        self.emit(Event::Terminated(info));
        Ok(())
    }

    /// Post-events parked after failing every attempt.
    pub async fn parked_events(&self) -> crate::error::Result<u64> {
        self.0.state.parked_events().await
    }

    /// Gives every parked event its attempts again, due now (after the receiver was
    /// mended). A replayed event arrives after its upload's later events did.
    pub async fn replay_parked(&self) -> crate::error::Result<u64> {
        let replayed = self.0.state.replay_parked(SystemTime::now()).await?;
        if replayed > 0 {
            self.0.outbox_written.notify_one();
        }
        Ok(replayed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let d = Delivery {
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(10),
            ..Delivery::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| d.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(d.backoff(u32::MAX), Duration::from_secs(10));
    }
}
