//! A server-sent-events stream of the caller's own uploads: `created`, `progress`,
//! `finished` and `failed`, each with the upload and the running total of the caller's
//! current batch, so a page can show every upload under way and a batch of files as one
//! bar. Best effort: an event a slow reader missed is not sent again (a `lagged` event
//! says how many were missed), and a reconnecting client starts afresh.
//!
//! It shows what the engine's events show: this instance's uploads, and with a relay
//! ([`chunkd_core::EventRelay`]) every instance's. Partial uploads (the chunks of
//! Resumable.js and Flow.js, tus concatenation's parts) are left out; their files show
//! when they are joined.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chunkd_core::metadata::keys;
use chunkd_core::{ConcatKind, Event, Owner, UploadInfo, Uploads};
use futures::stream::{self, StreamExt};
use http::StatusCode;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::identity::{self, slots};

/// Settings of the event stream.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Where the stream is served (`GET`; a token in the `access_token` query parameter
    /// is taken only with `Accept: text/event-stream`).
    pub path: String,
    /// Serve anonymous callers too. They all see every anonymous upload, so this is for
    /// servers whose users are not told apart (one user, a trusted network).
    pub anonymous: bool,
    /// Streams one client (an identity, or an anonymous address) may have open at once.
    pub max_streams_per_client: usize,
    /// A comment is sent this often when nothing happens, so proxies keep the stream.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub keep_alive: Duration,
    /// A stream ends after this long, so it does not outlive the token that opened it
    /// (an `EventSource` reconnects, identified afresh).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_lifetime: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: "/events".to_owned(),
            anonymous: false,
            max_streams_per_client: 4,
            keep_alive: Duration::from_secs(15),
            max_lifetime: Duration::from_secs(3600),
        }
    }
}

#[derive(Clone)]
struct EventStreams {
    uploads: Uploads,
    config: Config,
    slots: std::sync::Arc<slots::Slots>,
}

/// The event stream at `config.path`.
pub fn router<S>(uploads: Uploads, config: Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let path = format!("/{}", config.path.trim_matches('/'));
    let slots = slots::Slots::new(config.max_streams_per_client.max(1));
    let router = Router::new()
        .route(&path, get(open))
        .with_state(EventStreams {
            uploads,
            config,
            slots,
        });
    crate::accounting::account(router, "events")
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

async fn open(State(state): State<EventStreams>, req: Request) -> Response {
    let owner = match identity::stream_owner_of(&req) {
        Ok(owner) => owner,
        Err(refusal) => return refuse(refusal.status, &refusal.message),
    };
    if owner.is_anonymous() && !state.config.anonymous {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the event stream shows a user's own uploads: send an identity",
        );
    }
    let Some(slot) = state
        .slots
        .take(slots::client_key(&owner, req.extensions()))
    else {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too many event streams open from this client",
        );
    };
    let watch = Watch {
        events: state.uploads.events(),
        owner,
        batch: Batch::default(),
        _slot: slot,
    };
    let ready = stream::once(async { Ok(SseEvent::default().event("ready").data("{}")) });
    let stopping = state.uploads.stopping();
    let lifetime = tokio::time::sleep(state.config.max_lifetime);
    let events = stream::unfold(watch, |mut watch| async move {
        let event = watch.next().await?;
        Some((Ok::<_, Infallible>(event), watch))
    })
    .take_until(futures::future::select(
        Box::pin(stopping),
        Box::pin(lifetime),
    ));
    Sse::new(ready.chain(events))
        .keep_alive(KeepAlive::new().interval(state.config.keep_alive))
        .into_response()
}

/// One open stream: the engine's events, the caller's only.
struct Watch {
    events: tokio::sync::broadcast::Receiver<Event>,
    owner: Owner,
    batch: Batch,
    _slot: slots::Slot,
}

impl Watch {
    /// The next event for this caller; `None` when the engine is gone.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            let event = match self.events.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    // What the missed events said is unknown: the batch starts afresh.
                    self.batch = Batch::default();
                    return Some(
                        SseEvent::default()
                            .event("lagged")
                            .data(format!("{{\"missed\":{missed}}}")),
                    );
                }
                Err(RecvError::Closed) => return None,
            };
            let info = event.upload();
            if !self.owner.may_access(info.owner.as_deref())
                || matches!(info.concat, ConcatKind::Partial)
            {
                continue;
            }
            let (name, reason) = match &event {
                Event::Created(_) => ("created", None),
                Event::Progress(_) => ("progress", None),
                Event::Finished(_) => ("finished", None),
                Event::Refused(_, why) => ("failed", Some(format!("refused: {why}"))),
                Event::Terminated(_) => ("failed", Some("terminated".to_owned())),
                Event::Expired(_) => ("failed", Some("expired".to_owned())),
            };
            let total = self
                .batch
                .record(info, name != "created" && name != "progress");
            let data = Described::of(info, reason, total);
            let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_owned());
            return Some(SseEvent::default().event(name).data(json));
        }
    }
}

/// What an event says about its upload.
#[derive(Serialize)]
struct Described<'a> {
    id: &'a str,
    filename: Option<&'a str>,
    content_type: Option<&'a str>,
    offset: u64,
    /// `null` while the length is deferred.
    length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    batch: Total,
}

impl<'a> Described<'a> {
    fn of(info: &'a UploadInfo, reason: Option<String>, batch: Total) -> Self {
        Described {
            id: info.id.as_str(),
            filename: info.metadata.text(keys::FILENAME),
            content_type: info.metadata.text(keys::FILETYPE),
            offset: info.offset,
            length: info.length,
            reason,
            batch,
        }
    }
}

/// The caller's current batch: the uploads seen since none was running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
struct Total {
    uploads: usize,
    ended: usize,
    offset: u64,
    /// `null` while any upload's length is deferred.
    length: Option<u64>,
}

/// The uploads one stream has seen in the current batch.
#[derive(Debug, Default)]
struct Batch(BTreeMap<String, Seen>);

#[derive(Debug)]
struct Seen {
    offset: u64,
    length: Option<u64>,
    ended: bool,
    last_event: Instant,
}

/// Uploads one batch follows; a caller with more running has its total cover these.
const MAX_FOLLOWED: usize = 4096;

/// An upload with no event this long is abandoned (it expires later): it no longer
/// holds its batch open.
const ABANDONED_AFTER: Duration = Duration::from_secs(600);

impl Batch {
    /// Notes where `info` stands and returns the batch's total; when nothing of the
    /// batch runs any more, the next upload starts a new one.
    fn record(&mut self, info: &UploadInfo, ended: bool) -> Total {
        let id = info.id.as_str();
        let now = Instant::now();
        self.0
            .retain(|_, seen| seen.ended || now.duration_since(seen.last_event) < ABANDONED_AFTER);
        if self.0.len() < MAX_FOLLOWED || self.0.contains_key(id) {
            let seen = self.0.entry(id.to_owned()).or_insert(Seen {
                offset: 0,
                length: None,
                ended: false,
                last_event: now,
            });
            seen.offset = info.offset;
            seen.length = info.length;
            seen.ended |= ended;
            seen.last_event = now;
        }
        let total = self.total();
        if total.ended == total.uploads {
            self.0.clear();
        }
        total
    }

    fn total(&self) -> Total {
        let mut total = Total {
            length: Some(0),
            ..Total::default()
        };
        for seen in self.0.values() {
            total.uploads += 1;
            total.ended += usize::from(seen.ended);
            total.offset = total.offset.saturating_add(seen.offset);
            total.length = match (total.length, seen.length) {
                (Some(sum), Some(length)) => Some(sum.saturating_add(length)),
                _ => None,
            };
        }
        total
    }
}

#[cfg(test)]
mod tests;
