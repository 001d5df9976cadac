//! Hook transports for chunkd: every hook event as tusd's hook JSON, to an HTTP webhook
//! (signed with HMAC-SHA256) or to a command's stdin. [`TransportHooks`] is a
//! [`chunkd_core::Hooks`]: pre-hooks wait for the answer, within a timeout, and a hook
//! that fails refuses or allows as configured; post-events are queued and delivered in
//! order, retried with backoff, each with an `Idempotency-Key`.
//!
//! Post-event delivery is in memory: events queued when the process dies are lost, and
//! after `retries` failures an event is given up, logged and counted
//! ([`TransportHooks::given_up`]).

mod signing;
mod transport;
mod tusd;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chunkd_core::{HookEvent, HookKind, Hooks, Rejection, UploadId, Verdict};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use signing::{MIN_KEY_BYTES, SIGNATURE_HEADER};
pub use transport::TransportError;

use signing::Signer;
use transport::{CommandHook, Delivery, Transport, Webhook};

/// `[hooks]`: where events go and how hooks are held to account. `Debug` leaves the
/// secrets out.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HookSettings {
    /// POST every event here (`http://` or `https://`); empty for none.
    pub url: String,
    /// Or run this program for every event; empty for none.
    pub command: PathBuf,
    /// HMAC-SHA256 keys the webhook signs with (at least 16 bytes each): one, or two
    /// during a rotation, the newest first.
    pub secrets: Vec<String>,
    /// The hooks to call (`pre-create`, `post-finish`, …); empty for all.
    pub events: Vec<String>,
    /// How long a hook may take to answer.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// What a failing pre-hook (unreachable, slow, not 2xx, not JSON) means: `refuse`
    /// the request (503), or `allow` it.
    pub on_failure: OnFailure,
    /// The request headers passed on, by name; empty for all (credentials included, as
    /// tusd does: a pre-create hook often authorizes by them).
    pub headers: Vec<String>,
    /// At most one post-receive per upload this often.
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
    /// Post-events are tried this many more times after a failure, with backoff.
    pub retries: u32,
    /// Largest answer read from a hook.
    pub max_answer_bytes: usize,
}

impl Default for HookSettings {
    fn default() -> Self {
        HookSettings {
            url: String::new(),
            command: PathBuf::new(),
            secrets: Vec::new(),
            events: Vec::new(),
            timeout: Duration::from_secs(10),
            on_failure: OnFailure::Refuse,
            headers: Vec::new(),
            progress_interval: Duration::from_secs(1),
            retries: 5,
            max_answer_bytes: 64 << 10,
        }
    }
}

impl std::fmt::Debug for HookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookSettings")
            .field("url", &self.url)
            .field("command", &self.command)
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .field("on_failure", &self.on_failure)
            .field("headers", &self.headers)
            .field("progress_interval", &self.progress_interval)
            .field("retries", &self.retries)
            .field("max_answer_bytes", &self.max_answer_bytes)
            .finish()
    }
}

/// What a pre-hook that gave no usable answer means.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The request is refused (503).
    #[default]
    Refuse,
    /// The request goes ahead.
    Allow,
}

/// Settings that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("hooks: {0}")]
pub struct SettingsError(String);

/// Hooks delivered by a transport; see the crate's documentation.
pub struct TransportHooks {
    shared: Arc<Shared>,
    posts: mpsc::Sender<HookEvent>,
}

struct Shared {
    transport: Transport,
    settings: HookSettings,
    events: Vec<HookKind>,
    headers: Vec<String>,
    given_up: AtomicU64,
}

/// Post-events waiting beyond this many are dropped (and counted): the queue is memory.
const QUEUE: usize = 10_000;

impl TransportHooks {
    /// The hooks `settings` describe, `None` when they name no transport. Starts the
    /// post-event delivery task, so it needs a Tokio runtime.
    pub fn new(settings: HookSettings) -> Result<Option<TransportHooks>, SettingsError> {
        let transport = match (
            settings.url.is_empty(),
            settings.command.as_os_str().is_empty(),
        ) {
            (true, true) => return Ok(None),
            (false, false) => return Err(SettingsError("set url or command, not both".into())),
            (false, true) => {
                if settings.secrets.is_empty() || settings.secrets.len() > 2 {
                    return Err(SettingsError(
                        "a webhook needs one or two secrets to sign with".into(),
                    ));
                }
                if settings.secrets.iter().any(|s| s.len() < MIN_KEY_BYTES) {
                    return Err(SettingsError(format!(
                        "each secret needs at least {MIN_KEY_BYTES} bytes"
                    )));
                }
                let signer = Signer::new(
                    settings
                        .secrets
                        .iter()
                        .map(|s| s.as_bytes().to_vec())
                        .collect(),
                );
                Transport::Webhook(Arc::new(
                    Webhook::new(&settings.url, signer).map_err(SettingsError)?,
                ))
            }
            (true, false) => {
                Transport::Command(Arc::new(CommandHook::new(settings.command.clone())))
            }
        };
        let events = match settings.events.is_empty() {
            true => HookKind::ALL.to_vec(),
            false => settings
                .events
                .iter()
                .map(|name| name.parse::<HookKind>().map_err(SettingsError))
                .collect::<Result<_, _>>()?,
        };
        let headers = settings
            .headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let shared = Arc::new(Shared {
            transport,
            settings,
            events,
            headers,
            given_up: AtomicU64::new(0),
        });
        let (posts, queue) = mpsc::channel(QUEUE);
        tokio::spawn(deliver_posts(shared.clone(), queue));
        Ok(Some(TransportHooks { shared, posts }))
    }

    /// Post-events given up after every retry, or dropped from a full queue.
    pub fn given_up(&self) -> u64 {
        self.shared.given_up.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn body(&self, event: &HookEvent) -> Vec<u8> {
        let keep = |name: &str| self.headers.is_empty() || self.headers.iter().any(|h| h == name);
        tusd::request_body(event, &keep)
    }

    async fn call(
        &self,
        event: &HookEvent,
        body: &[u8],
        key: &str,
    ) -> Result<Vec<u8>, TransportError> {
        let delivery = Delivery {
            event,
            body,
            idempotency_key: key,
        };
        self.transport
            .call(
                delivery,
                self.settings.timeout,
                self.settings.max_answer_bytes,
            )
            .await
    }

    /// A pre-hook: the answer, or the failure policy.
    async fn ask(&self, event: &HookEvent) -> Verdict {
        let body = self.body(event);
        let key = UploadId::generate();
        let failure = match self.call(event, &body, key.as_str()).await {
            Ok(answer) => match tusd::verdict(event.kind, &answer) {
                Ok(verdict) => return verdict,
                Err(e @ tusd::AnswerError::NotJson(_)) => e.to_string(),
                Err(unsafe_answer) => {
                    tracing::error!(upload.id = %event.upload.id, hook = event.kind.name(), error = %unsafe_answer, "refused a hook's answer");
                    return reject(500, "the upload could not be prepared");
                }
            },
            Err(e) => e.to_string(),
        };
        match self.settings.on_failure {
            OnFailure::Refuse => {
                tracing::error!(upload.id = %event.upload.id, hook = event.kind.name(), error = %failure, "hook failed; the request is refused");
                reject(503, "the upload cannot be checked now; try again later")
            }
            OnFailure::Allow => {
                tracing::warn!(upload.id = %event.upload.id, hook = event.kind.name(), error = %failure, "hook failed; the request goes ahead");
                Verdict::Continue
            }
        }
    }
}

fn reject(status: u16, message: &str) -> Verdict {
    Verdict::Reject(
        Rejection::new(status, message).unwrap_or_else(|_| Rejection::forbidden(message)),
    )
}

/// Delivers post-events one at a time, so each upload's arrive in order; progress of an
/// upload at most once per `progress_interval`.
async fn deliver_posts(shared: Arc<Shared>, mut queue: mpsc::Receiver<HookEvent>) {
    let mut last_progress: HashMap<UploadId, Instant> = HashMap::new();
    while let Some(event) = queue.recv().await {
        match event.kind {
            HookKind::PostReceive => {
                let now = Instant::now();
                let due = last_progress
                    .get(&event.upload.id)
                    .is_none_or(|at| now.duration_since(*at) >= shared.settings.progress_interval);
                if !due {
                    continue;
                }
                last_progress.insert(event.upload.id.clone(), now);
                // Uploads abandoned mid-way never finish: forget those long quiet.
                if last_progress.len() > QUEUE {
                    let interval = shared.settings.progress_interval;
                    last_progress.retain(|_, at| now.duration_since(*at) < interval);
                }
            }
            HookKind::PostFinish | HookKind::PostTerminate => {
                last_progress.remove(&event.upload.id);
            }
            _ => {}
        }
        let body = shared.body(&event);
        let key = UploadId::generate();
        let mut backoff = Duration::from_secs(1);
        let mut attempt = 0;
        loop {
            match shared.call(&event, &body, key.as_str()).await {
                Ok(_) => break,
                Err(e) if attempt < shared.settings.retries => {
                    tracing::warn!(upload.id = %event.upload.id, hook = event.kind.name(), error = %e, attempt, "hook delivery failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    attempt += 1;
                }
                Err(e) => {
                    shared.given_up.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(upload.id = %event.upload.id, hook = event.kind.name(), error = %e, "hook delivery given up");
                    break;
                }
            }
        }
    }
}

#[async_trait]
impl Hooks for TransportHooks {
    fn wants(&self, kind: HookKind) -> bool {
        self.shared.events.contains(&kind)
    }

    async fn pre_access(&self, event: &HookEvent) -> Verdict {
        self.shared.ask(event).await
    }

    async fn pre_create(&self, event: &HookEvent) -> Verdict {
        self.shared.ask(event).await
    }

    async fn pre_finish(&self, event: &HookEvent) -> Verdict {
        self.shared.ask(event).await
    }

    async fn pre_terminate(&self, event: &HookEvent) -> Verdict {
        self.shared.ask(event).await
    }

    fn notify(&self, event: HookEvent) {
        if let Err(mpsc::error::TrySendError::Full(event)) = self.posts.try_send(event) {
            self.shared.given_up.fetch_add(1, Ordering::Relaxed);
            tracing::error!(upload.id = %event.upload.id, hook = event.kind.name(), "hook queue full; event dropped");
        }
    }
}
