//! Hook transports for chunkd: every hook event as tusd's hook JSON, to an HTTP webhook
//! (signed with HMAC-SHA256) or to a command's stdin. [`TransportHooks`] is a
//! [`chunkd_core::Hooks`]: pre-hooks wait for the answer, within a timeout, and a hook
//! that fails refuses or allows as configured. Post-events come from the engine's
//! outbox ([`chunkd_core::Uploads::deliver_events`]), which retries them with backoff as
//! [`HookSettings::delivery`] says; each carries its outbox key as `Idempotency-Key`.

mod signing;
mod transport;
mod tusd;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chunkd_core::{
    Delivered, Delivery, DeliveryError, HookEvent, HookKind, Hooks, Rejection, UploadId, Verdict,
};
use serde::{Deserialize, Serialize};

pub use signing::{MIN_KEY_BYTES, SIGNATURE_HEADER};
pub use transport::{Receiver, TransportError};

use signing::Signer;
use transport::{CommandHook, Transport, Webhook};

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
    /// Post-events are tried this many more times after a failure, then parked.
    pub retries: u32,
    /// The wait after a post-event's first failure; it doubles with each one after.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// The longest wait between two attempts.
    #[serde(with = "humantime_serde")]
    pub max_retry_backoff: Duration,
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
            retries: 20,
            retry_backoff: Duration::from_secs(1),
            max_retry_backoff: Duration::from_secs(600),
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
            .field("retry_backoff", &self.retry_backoff)
            .field("max_retry_backoff", &self.max_retry_backoff)
            .field("max_answer_bytes", &self.max_answer_bytes)
            .finish()
    }
}

impl HookSettings {
    /// How the engine's outbox delivers post-events: each attempt is bounded by
    /// `timeout`, so an event is held for twice that (and a second), after which an
    /// instance that died delivering it no longer keeps it from another.
    pub fn delivery(&self) -> Delivery {
        Delivery {
            progress_interval: self.progress_interval,
            attempts: self.retries.saturating_add(1),
            first_retry: self.retry_backoff,
            max_retry: self.max_retry_backoff.max(self.retry_backoff),
            hold: self
                .timeout
                .saturating_mul(2)
                .saturating_add(Duration::from_secs(1)),
            ..Delivery::default()
        }
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
    transport: Transport,
    settings: HookSettings,
    events: Vec<HookKind>,
    headers: Vec<String>,
}

impl TransportHooks {
    /// The hooks `settings` describe, `None` when they name no transport.
    pub fn new(settings: HookSettings) -> Result<Option<TransportHooks>, SettingsError> {
        Self::with_receiver(settings, None)
    }

    /// The hooks `settings` describe, with `receiver` as their transport when given
    /// (then `url` and `command` must be unset); `None` when there is no transport.
    pub fn with_receiver(
        settings: HookSettings,
        receiver: Option<Arc<dyn Receiver>>,
    ) -> Result<Option<TransportHooks>, SettingsError> {
        let external = !settings.url.is_empty() || !settings.command.as_os_str().is_empty();
        let transport = match (receiver, external) {
            (Some(_), true) => {
                return Err(SettingsError(
                    "hooks go to the application's own receiver: leave url and command unset"
                        .into(),
                ));
            }
            (Some(receiver), false) => Transport::Receiver(receiver),
            (None, _) => match external_transport(&settings)? {
                Some(transport) => transport,
                None => return Ok(None),
            },
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
        Ok(Some(TransportHooks {
            transport,
            settings,
            events,
            headers,
        }))
    }

    /// The settings these hooks were made from.
    pub fn settings(&self) -> &HookSettings {
        &self.settings
    }

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
        let delivery = transport::Delivery {
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
                    chunkd_core::metrics::hook_failed(event.kind);
                    tracing::error!(upload.id = %event.upload.id, hook = event.kind.name(), error = %unsafe_answer, "refused a hook's answer");
                    return reject(500, "the upload could not be prepared");
                }
            },
            Err(e) => e.to_string(),
        };
        chunkd_core::metrics::hook_failed(event.kind);
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

/// The webhook or command `settings` name, if any.
fn external_transport(settings: &HookSettings) -> Result<Option<Transport>, SettingsError> {
    Ok(Some(
        match (
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
        },
    ))
}

fn reject(status: u16, message: &str) -> Verdict {
    Verdict::Reject(
        Rejection::new(status, message).unwrap_or_else(|_| Rejection::forbidden(message)),
    )
}

#[async_trait]
impl Hooks for TransportHooks {
    fn wants(&self, kind: HookKind) -> bool {
        self.events.contains(&kind)
    }

    async fn pre_access(&self, event: &HookEvent) -> Verdict {
        self.ask(event).await
    }

    async fn pre_create(&self, event: &HookEvent) -> Verdict {
        self.ask(event).await
    }

    async fn pre_finish(&self, event: &HookEvent) -> Verdict {
        self.ask(event).await
    }

    async fn pre_terminate(&self, event: &HookEvent) -> Verdict {
        self.ask(event).await
    }

    async fn deliver(&self, event: &HookEvent, key: &str) -> Result<Delivered, DeliveryError> {
        let body = self.body(event);
        self.call(event, &body, key)
            .await
            .map(|answer| tusd::delivered(&answer))
            .map_err(|e| DeliveryError(e.to_string()))
    }
}
