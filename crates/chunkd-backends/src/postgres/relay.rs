//! Engine events between instances through PostgreSQL NOTIFY: what one instance's
//! uploads do reaches every instance's event stream. Best effort, as NOTIFY is: a
//! listener that reconnects misses what was sent meanwhile.

use std::fmt;

use chunkd_core::relay::EventRelay;
use chunkd_core::{Event, Metadata};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};

use super::Pg;

/// NOTIFY refuses payloads of 8000 bytes and more.
const MAX_PAYLOAD: usize = 7900;
/// Events waiting to be sent; more are dropped rather than slow an upload.
const QUEUE: usize = 1024;

/// [`EventRelay`] through the deployment's database.
pub struct PgEventRelay {
    outgoing: mpsc::Sender<String>,
    incoming: broadcast::Sender<Event>,
    instance: String,
    listening: watch::Receiver<bool>,
    /// Dropped with the relay: its sender and listener stop.
    _alive: watch::Sender<()>,
}

impl fmt::Debug for PgEventRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgEventRelay")
            .field("instance", &self.instance)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Relayed {
    from: String,
    event: Event,
}

impl PgEventRelay {
    /// A relay on `pg`'s notification channel (one per schema, so deployments sharing a
    /// database stay apart). Spawns its sender and listener: call it inside a runtime.
    pub fn new(pg: Pg) -> PgEventRelay {
        let (alive_tx, alive) = watch::channel(());
        let (outgoing, mut queued) = mpsc::channel::<String>(QUEUE);
        let (incoming, _) = broadcast::channel(QUEUE);
        let instance = chunkd_core::UploadId::generate().as_str().to_owned();
        let channel = pg.channel("chunkd_events");
        let sender = {
            let pg = pg.clone();
            let channel = channel.clone();
            async move {
                // One sender, so the instance's events go out in their order.
                while let Some(payload) = queued.recv().await {
                    let sent = async {
                        let client = pg.client().await?;
                        client
                            .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
                            .await?;
                        Ok::<_, super::PgError>(())
                    };
                    if let Err(e) = sent.await {
                        tracing::debug!(error = %e, "an event was not relayed");
                    }
                }
            }
        };
        tokio::spawn(sender);
        let (listened, listening) = watch::channel(false);
        let listener = {
            let incoming = incoming.clone();
            let own = instance.clone();
            super::notify::listen(
                pg.config.clone(),
                channel,
                alive,
                listened,
                move |payload| match serde_json::from_str::<Relayed>(payload) {
                    Ok(relayed) if relayed.from != own => {
                        let _ = incoming.send(relayed.event);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "a relayed event does not read"),
                },
            )
        };
        tokio::spawn(listener);
        PgEventRelay {
            outgoing,
            incoming,
            instance,
            listening,
            _alive: alive_tx,
        }
    }

    /// Resolves once the relay hears the other instances (what they send before is not
    /// seen): for startup checks and tests.
    pub async fn listening(&self) {
        let mut listening = self.listening.clone();
        let _ = listening.wait_for(|yes| *yes).await;
    }

    /// `event` as sent: without the store's bookkeeping, and with only the file's name
    /// and type when its metadata would not fit.
    fn payload(&self, event: &Event) -> Option<String> {
        let mut event = event.clone();
        let upload = upload_of(&mut event);
        upload.store.clear();
        let mut relayed = Relayed {
            from: self.instance.clone(),
            event,
        };
        let json = serde_json::to_string(&relayed).ok()?;
        if json.len() <= MAX_PAYLOAD {
            return Some(json);
        }
        let upload = upload_of(&mut relayed.event);
        let mut kept = Metadata::new();
        for key in [
            chunkd_core::metadata::keys::FILENAME,
            chunkd_core::metadata::keys::FILETYPE,
        ] {
            if let Some(value) = upload.metadata.get(key) {
                kept.insert(key, value.to_vec());
            }
        }
        upload.metadata = kept;
        let json = serde_json::to_string(&relayed).ok()?;
        (json.len() <= MAX_PAYLOAD).then_some(json)
    }
}

fn upload_of(event: &mut Event) -> &mut chunkd_core::UploadInfo {
    match event {
        Event::Created(info)
        | Event::Progress(info)
        | Event::Finished(info)
        | Event::Refused(info, _)
        | Event::Terminated(info)
        | Event::Expired(info) => info,
    }
}

impl EventRelay for PgEventRelay {
    fn publish(&self, event: &Event) {
        match self.payload(event) {
            Some(payload) => {
                if self.outgoing.try_send(payload).is_err() {
                    tracing::debug!("event relay queue full; an event was dropped");
                }
            }
            None => tracing::debug!(upload.id = %event.upload().id, "an event too large to relay"),
        }
    }

    fn subscribe(&self) -> BoxStream<'static, Event> {
        let theirs = self.incoming.subscribe();
        futures::stream::unfold(theirs, |mut theirs| async move {
            loop {
                match theirs.recv().await {
                    Ok(event) => return Some((event, theirs)),
                    // Best effort: a slow reader skips ahead.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}
