//! The upload engine: the only thing protocol front ends call.

mod asking;
mod caller;
mod concat;
mod direct;
mod guard;
mod outbox;
mod write;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

pub use caller::Caller;
pub use guard::{ExpectedChecksum, TrailerSlot};
pub use outbox::Delivery;
pub use write::{BodyEnd, WriteOutcome, WriteRequest};

use crate::checksum::ChecksumAlgorithm;
use crate::error::{Error, Result};
use crate::hooks::{Event, HookKind, Hooks, NoHooks, Verdict};
use crate::id::UploadId;
use crate::lock::{Lease, Locker};
use crate::memory::MemoryLocker;
use crate::owner::Owner;
use crate::relay::EventRelay;
use crate::state::StateStore;
use crate::store::{DataStore, DirectParts, Part};
use crate::upload::{ConcatKind, NewUpload, Status, UploadInfo};

/// Limits applied to every upload, whatever protocol it came through.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest upload accepted, in bytes.
    pub max_size: Option<u64>,
    /// Unfinished uploads not written to for this long are purged.
    pub expire_after: Option<Duration>,
    /// How long a request waits for the upload's lock before giving up.
    pub lock_timeout: Duration,
    /// A long request body is committed (made durable, offset saved) every this many bytes.
    pub checkpoint_bytes: u64,
    /// Most partial uploads one final upload may list (each is read, and its record
    /// held, while the final is made).
    pub max_concat_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: None,
            expire_after: Some(Duration::from_secs(24 * 3600)),
            lock_timeout: Duration::from_secs(20),
            checkpoint_bytes: 16 << 20,
            max_concat_parts: 10_000,
        }
    }
}

/// What the assembled engine can do, so front ends advertise only what is real.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// Unfinished uploads expire.
    pub expiration: bool,
    /// Algorithms a client may name for a body's checksum.
    pub checksum_algorithms: &'static [ChecksumAlgorithm],
    /// Largest upload accepted ([`Limits::max_size`]), for protocols that announce it.
    pub max_size: Option<u64>,
}

struct Inner {
    store: Arc<dyn DataStore>,
    state: Arc<dyn StateStore>,
    locker: Arc<dyn Locker>,
    hooks: Arc<dyn Hooks>,
    limits: Limits,
    capabilities: Capabilities,
    events: broadcast::Sender<Event>,
    relay: Option<Arc<dyn EventRelay>>,
    shutdown: CancellationToken,
    delivery: Delivery,
    progress: outbox::ProgressThrottle,
    outbox_written: tokio::sync::Notify,
}

/// The upload engine. Cheap to clone; use it as shared state.
#[derive(Clone)]
pub struct Uploads(Arc<Inner>);

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads")
            .field("store", &self.0.store)
            .field("state", &self.0.state)
            .field("limits", &self.0.limits)
            .finish()
    }
}

/// Assembles an [`Uploads`] engine from its seams; see [`Uploads::builder`].
pub struct UploadsBuilder {
    store: Arc<dyn DataStore>,
    state: Arc<dyn StateStore>,
    locker: Option<Arc<dyn Locker>>,
    hooks: Arc<dyn Hooks>,
    limits: Limits,
    delivery: Delivery,
    relay: Option<Arc<dyn EventRelay>>,
}

impl UploadsBuilder {
    /// Serialises writers with `locker` instead of an in-process lock; several instances
    /// sharing one state store need a shared locker.
    pub fn locker(mut self, locker: Arc<dyn Locker>) -> Self {
        self.locker = Some(locker);
        self
    }

    /// Lets `hooks` accept or refuse creation, finishing and termination.
    pub fn hooks(mut self, hooks: Arc<dyn Hooks>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Delivers post-events as `delivery` says instead of [`Delivery::default`].
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// Shares [`Uploads::events`] with the other instances through `relay` (run
    /// [`Uploads::relay_events`] to take theirs in).
    pub fn relay(mut self, relay: Arc<dyn EventRelay>) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Applies `limits` instead of [`Limits::default`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The engine, ready to be shared by every front end (clones share everything).
    pub fn build(self) -> Uploads {
        let capabilities = Capabilities {
            expiration: self.limits.expire_after.is_some(),
            checksum_algorithms: &ChecksumAlgorithm::ALL,
            max_size: self.limits.max_size,
        };
        let (events, _) = broadcast::channel(1024);
        Uploads(Arc::new(Inner {
            store: Arc::new(crate::metrics::MeteredData(self.store)),
            state: Arc::new(crate::metrics::MeteredState(self.state)),
            locker: self
                .locker
                .unwrap_or_else(|| Arc::new(MemoryLocker::default())),
            hooks: self.hooks,
            limits: self.limits,
            capabilities,
            events,
            relay: self.relay,
            shutdown: CancellationToken::new(),
            delivery: self.delivery,
            progress: Default::default(),
            outbox_written: Default::default(),
        }))
    }
}

impl Uploads {
    /// Starts an engine keeping bytes in `store` and records in `state`, with no hooks,
    /// default limits and an in-process locker until the builder says otherwise.
    pub fn builder(store: Arc<dyn DataStore>, state: Arc<dyn StateStore>) -> UploadsBuilder {
        UploadsBuilder {
            store,
            state,
            locker: None,
            hooks: Arc::new(NoHooks),
            limits: Limits::default(),
            delivery: Delivery::default(),
            relay: None,
        }
    }

    /// The engine as `owner` sees it: every call that touches an upload goes through
    /// this, and an upload of another identity is not found, before its lock is asked
    /// for (so a foreign request never interrupts the owner's).
    pub fn for_owner(&self, owner: Owner) -> Caller {
        Caller::new(self.clone(), owner)
    }

    /// What this engine can do, for front ends to advertise.
    pub fn capabilities(&self) -> &Capabilities {
        &self.0.capabilities
    }

    /// The limits every upload is held to.
    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// Whether any hook listens, so front ends describe requests only when one does.
    pub fn hooks_listen(&self) -> bool {
        HookKind::ALL
            .into_iter()
            .any(|kind| self.0.hooks.wants(kind))
    }

    /// Whether the state store takes a write now (readiness probes).
    pub async fn check_state(&self) -> Result<()> {
        self.0.state.check().await
    }

    /// Whether the data store answers now (readiness probes).
    pub async fn check_store(&self) -> Result<()> {
        self.0.store.check().await
    }

    /// Subscribes to post-events (created, progress, finished, terminated, expired).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.0.events.subscribe()
    }

    /// Asks every in-flight write to stop at the next chunk and commit what it has.
    pub fn shutdown(&self) {
        self.0.shutdown.cancel();
    }

    /// Resolves once [`Uploads::shutdown`] was called: long-lived responses (event
    /// streams) end then, so a graceful shutdown does not wait for them.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        self.0.shutdown.clone().cancelled_owned()
    }

    fn emit(&self, event: Event) {
        crate::metrics::event(&event);
        if let Some(relay) = &self.0.relay {
            relay.publish(&event);
        }
        // No subscribers is fine.
        let _ = self.0.events.send(event);
    }

    /// Takes the other instances' events (from the [relay](UploadsBuilder::relay)) into
    /// [`Uploads::events`] until [`Uploads::shutdown`]. Run it once per process; without
    /// a relay it returns at once.
    pub async fn relay_events(&self) {
        let Some(relay) = &self.0.relay else {
            return;
        };
        let mut theirs = relay.subscribe();
        let shutdown = self.0.shutdown.clone();
        loop {
            tokio::select! {
                event = futures::StreamExt::next(&mut theirs) => match event {
                    Some(event) => {
                        let _ = self.0.events.send(event);
                    }
                    None => return,
                },
                () = shutdown.cancelled() => return,
            }
        }
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    /// When `info`, written to now, expires: after its own idle expiry, or the server's.
    fn next_expiry(&self, info: &UploadInfo) -> Option<SystemTime> {
        let own = info.limits.expire_after_secs.map(Duration::from_secs);
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX));
        own.or(self.0.limits.expire_after)
            .map(|d| Self::now().checked_add(d).unwrap_or(far))
    }

    /// The largest size `info` may reach: the server's, or its own when lower.
    fn max_size(&self, info: &UploadInfo) -> Option<u64> {
        match (self.0.limits.max_size, info.limits.max_size) {
            (Some(server), Some(own)) => Some(server.min(own)),
            (server, own) => server.or(own),
        }
    }

    async fn lock(&self, id: &UploadId) -> Result<Lease> {
        self.0.locker.lock(id, self.0.limits.lock_timeout).await
    }

    fn check_size(&self, info: &UploadInfo, length: u64) -> Result<()> {
        match self.max_size(info) {
            Some(max) if length > max => Err(Error::TooLarge { max }),
            _ => Ok(()),
        }
    }

    /// The record, expiry applied, without regard to who asks (the engine's own view).
    async fn record(&self, id: &UploadId) -> Result<UploadInfo> {
        let info = self.0.state.get(id).await?;
        if info.is_expired(Self::now()) {
            return Err(Error::Expired(id.clone()));
        }
        Ok(info)
    }

    /// The record as `owner` may see it: another identity's upload is not found, and
    /// says nothing of whether it exists or expired.
    async fn visible(&self, id: &UploadId, owner: &Owner) -> Result<UploadInfo> {
        crate::noted::note(id, false);
        let info = self.0.state.get(id).await?;
        if !owner.may_access(info.owner.as_deref()) {
            return Err(Error::NotFound(id.clone()));
        }
        if info.is_expired(Self::now()) {
            return Err(Error::Expired(id.clone()));
        }
        Ok(info)
    }

    /// The upload's lease and its record, for `owner` only. A free lease is taken
    /// without signalling anyone; a held one is asked for only once the record shows
    /// the upload is `owner`'s, so another identity never makes a running request stop.
    async fn lock_visible(&self, id: &UploadId, owner: &Owner) -> Result<(Lease, UploadInfo)> {
        if let Some(lease) = self.0.locker.try_lock(id).await? {
            let info = self.visible(id, owner).await?;
            return Ok((lease, info));
        }
        self.visible(id, owner).await?;
        let started = std::time::Instant::now();
        let lease = self.lock(id).await;
        crate::metrics::lock_waited(started.elapsed());
        let lease = lease?;
        let info = self.visible(id, owner).await?;
        Ok((lease, info))
    }

    async fn create(&self, new: NewUpload, owner: &Owner) -> Result<UploadInfo> {
        let id = new.id.clone().unwrap_or_else(UploadId::generate);
        // The request is about this upload, whatever parts it looks at on the way.
        crate::noted::note(&id, true);
        async {
            if new.direct {
                // An upload nobody could ever send a byte to.
                self.direct_store()?;
            }
            let length = match &new.concat {
                ConcatKind::Final(parts) => Some(self.final_length(parts, owner).await?),
                ConcatKind::None | ConcatKind::Partial => new.length,
            };
            let mut info = UploadInfo {
                id: id.clone(),
                length,
                offset: 0,
                metadata: new.metadata,
                status: Status::Open,
                concat: new.concat,
                owner: owner.clone().into_record(),
                created_at: Self::now(),
                expires_at: None,
                store: Default::default(),
                pending_finals: Vec::new(),
                direct: new.direct,
                limits: Default::default(),
                revision: 0,
            };
            info.expires_at = self.next_expiry(&info);
            if let Some(length) = length {
                self.check_size(&info, length)?;
            }
            let mut chosen = new.id.is_some();
            if self.0.hooks.wants(HookKind::PreCreate) {
                let event = self.hook_event(HookKind::PreCreate, &info, None);
                crate::metrics::hook_invoked(HookKind::PreCreate);
                match self.0.hooks.pre_create(&event).await {
                    Verdict::Continue => {}
                    Verdict::Reject(r) => return Err(Error::Rejected(r)),
                    Verdict::Reply(_) => {
                        tracing::warn!("only pre-finish may reply; the reply is ignored");
                    }
                    Verdict::Change(changes) => {
                        chosen |= changes.id.is_some();
                        self.apply_changes(&mut info, changes)?;
                        crate::noted::note(&info.id, true);
                    }
                }
            }
            self.create_in_stores(&mut info, chosen).await?;
            tracing::debug!(upload.length = ?info.length, "upload created");
            self.emit(Event::Created(info.clone()));

            if let ConcatKind::Final(parts) = &info.concat {
                let parts = parts.clone();
                self.register_final(&info.id, &parts, info.expires_at)
                    .await?;
                self.try_complete_final(&info.id).await?;
                return self.record(&info.id).await;
            }
            if info.length == Some(0) {
                let mut lease = self.lock(&info.id).await?;
                return self.finish(info, &mut lease, Finish::Store).await;
            }
            Ok(info)
        }
        .instrument(info_span!("upload.create", upload.id = %id))
        .await
    }

    /// The store's half of a creation, then the record. A chosen id comes back with a
    /// client's retry, so the store's half left alone by a crash before the record was
    /// saved is taken over rather than refused forever; under the id's lock, so a
    /// concurrent creation of the same id is never taken for such a leftover.
    async fn create_in_stores(&self, info: &mut UploadInfo, chosen: bool) -> Result<()> {
        let _lease = match chosen {
            true => Some(self.lock(&info.id).await?),
            false => None,
        };
        info.store = match self.0.store.create(info).await {
            Err(Error::AlreadyExists(_))
                if chosen
                    && matches!(self.0.state.get(&info.id).await, Err(Error::NotFound(_))) =>
            {
                tracing::warn!(upload.id = %info.id, "taking over what a crash left in the store");
                self.0.store.delete(info).await?;
                self.0.store.create(info).await?
            }
            other => other?,
        };
        let event = self.post_event(HookKind::PostCreate, info);
        self.0.state.insert_with_event(info, event.as_ref()).await?;
        self.outbox_written(&event);
        Ok(())
    }

    async fn terminate(&self, id: &UploadId, owner: &Owner) -> Result<()> {
        async {
            let (_lease, info) = self.lock_visible(id, owner).await?;
            self.ask(HookKind::PreTerminate, &info).await?;
            self.0.store.delete(&info).await?;
            let event = self.post_event(HookKind::PostTerminate, &info);
            self.0
                .state
                .remove_with_event(id, None, event.as_ref())
                .await?;
            self.outbox_written(&event);
            self.emit(Event::Terminated(info));
            Ok(())
        }
        .instrument(info_span!("upload.terminate", upload.id = %id))
        .await
    }

    async fn read(
        &self,
        info: UploadInfo,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<(UploadInfo, crate::body::ByteStream<'static>)> {
        if !info.is_finished() {
            return Err(Error::NotFinished);
        }
        let length = info.length.unwrap_or(info.offset);
        let range = range.unwrap_or(0..length);
        if range.start > range.end || range.end > length {
            return Err(Error::RangeNotSatisfiable { length });
        }
        let stream = self.0.store.read(&info, range).await?;
        Ok((info, stream))
    }

    /// Deletes unfinished uploads whose expiry has passed. Safe to run from several
    /// processes at once: a record changed meanwhile is left alone.
    pub async fn purge_expired(&self) -> Result<usize> {
        let now = Self::now();
        let mut purged = 0;
        loop {
            let ids = self.0.state.expired(now, 256).await?;
            if ids.is_empty() {
                break;
            }
            let mut progressed = false;
            for id in ids {
                // An upload busy with a request is not idle: skip it, without asking
                // that request to stop (its record's expiry can pass between checkpoints).
                let Ok(Some(mut lease)) = self.0.locker.try_lock(&id).await else {
                    continue;
                };
                let info = match self.0.state.get(&id).await {
                    Ok(info) => info,
                    Err(Error::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                };
                if !info.is_expired(now) {
                    continue;
                }
                if self.keep_waiting_final(&info, now).await? {
                    progressed = true;
                    continue;
                }
                // Whole but never marked finished (a crash in between): not abandoned.
                if !info.is_finished()
                    && self
                        .finish_if_whole(info.clone(), &mut lease)
                        .await?
                        .is_finished()
                {
                    progressed = true;
                    continue;
                }
                // The record goes first, by compare-and-swap: if a writer touched it
                // meanwhile, the bytes stay.
                match self.0.state.remove(&id, Some(info.revision)).await {
                    Ok(()) => {}
                    Err(Error::Conflict) => continue,
                    Err(e) => return Err(e),
                }
                self.0.store.delete(&info).await?;
                purged += 1;
                progressed = true;
                tracing::info!(upload.id = %id, "expired upload purged");
                self.emit(Event::Expired(info));
            }
            if !progressed {
                break;
            }
        }
        Ok(purged)
    }

    /// Marks a complete upload finished: the pre-finish hook, the store's last step, the
    /// state update and the event. Every way an upload finishes comes through here.
    async fn finish(
        &self,
        mut info: UploadInfo,
        _lease: &mut Lease,
        step: Finish<'_>,
    ) -> Result<UploadInfo> {
        if let Err(refused) = self.ask(HookKind::PreFinish, &info).await {
            if let Error::Rejected(rejection) = &refused {
                self.emit(Event::Refused(info.clone(), rejection.message().to_owned()));
            }
            return Err(refused);
        }
        info.store = match step {
            Finish::Store => self.0.store.finish(&info).await?,
            Finish::Direct(store, parts) => store.complete(&info, parts).await?,
        };
        info.status = Status::Finished;
        // A partial only lives to be joined: it keeps an expiry, counted from now.
        info.expires_at = match info.concat {
            ConcatKind::Partial => self.next_expiry(&info),
            _ => None,
        };
        let event = self.post_event(HookKind::PostFinish, &info);
        let info = self
            .0
            .state
            .update_with_event(&info, event.as_ref())
            .await?;
        self.outbox_written(&event);
        tracing::info!(upload.id = %info.id, upload.length = ?info.length, "upload finished");
        self.emit(Event::Finished(info.clone()));
        Ok(info)
    }
}

impl Uploads {
    /// Finishes `info` if every byte is stored but the record never said finished: a
    /// process died between the store's finish and the record's update (stores finish
    /// idempotently). Anything else is returned as it is.
    async fn finish_if_whole(&self, info: UploadInfo, lease: &mut Lease) -> Result<UploadInfo> {
        let whole = !info.is_finished()
            && !info.is_final()
            && !info.direct
            && info.length == Some(info.offset);
        match whole {
            true => self.finish(info, lease, Finish::Store).await,
            false => Ok(info),
        }
    }
}

/// The store's last step when an upload finishes.
enum Finish<'a> {
    /// [`DataStore::finish`]: the bytes went through the engine.
    Store,
    /// [`DirectParts::complete`]: the client sent these parts straight to the store.
    Direct(&'a dyn DirectParts, &'a [Part]),
}
