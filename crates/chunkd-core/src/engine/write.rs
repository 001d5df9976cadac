//! The write path: lock, check, stream through the guard in checkpoints, commit, finish.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::{Instrument, info_span};

use futures::StreamExt;

use super::guard::{ExpectedChecksum, GuardedBody, Segment, Stop};
use super::{Finish, Uploads};
use crate::body::ByteStream;
use crate::error::{Error, Result};
use crate::hooks::Event;
use crate::id::UploadId;
use crate::owner::Owner;
use crate::upload::UploadInfo;

/// One append request, in protocol-neutral terms.
#[derive(Clone, Debug, Default)]
pub struct WriteRequest {
    /// Where the client believes the upload stands.
    pub offset: u64,
    /// The total length, declared now (tus deferred length).
    pub declare_length: Option<u64>,
    /// The body's size when known up front (Content-Length): an oversized body is refused
    /// before a byte is read.
    pub body_len: Option<u64>,
    /// Verify the body against this checksum; on mismatch nothing of it is kept.
    pub checksum: Option<ExpectedChecksum>,
    /// Keep nothing unless the body ends cleanly (a whole file in one request, where a
    /// cut-off body is not a resumable prefix).
    pub atomic: bool,
    /// This body ends the upload: if the length is still open and the body ends cleanly,
    /// the upload is as long as what has arrived, and it finishes.
    pub completes: bool,
    /// Told the committed offset after each checkpoint, for progress reports that must
    /// only ever name durable offsets.
    pub committed: Option<Arc<watch::Sender<u64>>>,
}

/// How a request body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// The client sent all of it.
    Clean,
    /// The connection failed, or the body went idle, before its end; what arrived is kept.
    Disconnected,
    /// A newer request on the same upload took over; what arrived is kept.
    Interrupted,
    /// The server is shutting down; what arrived is kept.
    ShuttingDown,
}

/// What a write did: the record afterwards, and how the body ended.
#[derive(Clone, Debug)]
#[must_use]
pub struct WriteOutcome {
    /// The upload record after the write.
    pub info: UploadInfo,
    /// Whether the body arrived whole or why it stopped early.
    pub end: BodyEnd,
}

impl WriteOutcome {
    /// The record, or, for a request stopped by a newer one or by shutdown before the
    /// upload finished, the error that says so with the offset that was kept.
    pub fn stopped(self) -> Result<UploadInfo> {
        if self.info.is_finished() {
            return Ok(self.info);
        }
        let offset = self.info.offset;
        match self.end {
            BodyEnd::Interrupted => Err(Error::Interrupted { offset }),
            BodyEnd::ShuttingDown => Err(Error::ShuttingDown { offset }),
            BodyEnd::Clean | BodyEnd::Disconnected => Ok(self.info),
        }
    }
}

impl Uploads {
    pub(super) async fn write(
        &self,
        id: &UploadId,
        owner: &Owner,
        req: WriteRequest,
        body: ByteStream<'_>,
    ) -> Result<WriteOutcome> {
        let span = info_span!("upload.write", upload.id = %id, upload.offset = req.offset);
        self.write_inner(id, owner, req, body)
            .instrument(span)
            .await
    }

    async fn write_inner(
        &self,
        id: &UploadId,
        owner: &Owner,
        req: WriteRequest,
        body: ByteStream<'_>,
    ) -> Result<WriteOutcome> {
        let (mut lease, mut info) = self.lock_visible(id, owner).await?;
        if info.is_final() {
            return Err(Error::FinalUpload);
        }
        if info.direct {
            return Err(Error::NotSupported(
                "appending to an upload whose parts go straight to the store",
            ));
        }
        if req.offset != info.offset {
            return Err(Error::OffsetMismatch {
                expected: info.offset,
                got: req.offset,
            });
        }
        if info.is_finished() {
            // A repeated last request: nothing to do.
            return Ok(WriteOutcome {
                info,
                end: BodyEnd::Clean,
            });
        }
        let mut dirty = false;
        if let Some(declared) = req.declare_length {
            match info.length {
                Some(length) if length == declared => {}
                Some(_) => return Err(Error::InvalidLength("the length is already set")),
                None if declared < info.offset => {
                    return Err(Error::InvalidLength(
                        "the length is below the current offset",
                    ));
                }
                None => {
                    self.check_size(&info, declared)?;
                    info.length = Some(declared);
                    dirty = true;
                }
            }
        }

        let max = self.max_size(&info);
        let (allowance, overflow): (u64, Box<dyn Fn() -> Error + Send>) = match (info.length, max) {
            (Some(length), _) => (
                length - info.offset,
                Box::new(move || Error::LengthExceeded { length }),
            ),
            (None, Some(max)) => (
                max.saturating_sub(info.offset),
                Box::new(move || Error::TooLarge { max }),
            ),
            (None, None) => (u64::MAX, Box::new(|| Error::TooLarge { max: u64::MAX })),
        };
        if req.body_len.is_some_and(|n| n > allowance) {
            return Err(overflow());
        }

        let committed = req.committed.clone();
        let contended = lease.take_contended();
        let shutdown = self.0.shutdown.clone();
        let stop = Box::pin(async move {
            tokio::select! {
                () = contended => Stop::Contended,
                () = shutdown.cancelled_owned() => Stop::Shutdown,
            }
        });
        let mut body = GuardedBody::new(body, allowance, overflow, req.checksum, req.atomic, stop);
        let segment_limit = if body.all_or_nothing() {
            u64::MAX
        } else {
            self.0.limits.checkpoint_bytes.max(1)
        };
        let mut carry = None;
        let mut claimed = false;
        let _in_flight = crate::metrics::InFlight::start();
        loop {
            if info.length == Some(info.offset) {
                // All stored, not yet finished: a retry after a crash between the store's
                // finish and the record's. No store write would read the body (there
                // is no room), so it is read here, where a byte past the length is the
                // guard's error.
                while body.next().await.is_some() {}
                if let Some(abort) = body.abort.take() {
                    return Err(abort.error_at(info.offset));
                }
                break;
            }
            let segment = Segment::new(&mut body, &mut carry, segment_limit);
            let written = match self.0.store.write(&info, Box::pin(segment)).await {
                Ok(w) => w,
                Err(store_err) => {
                    if dirty {
                        // Keep what earlier checkpoints and the declared length established.
                        info = self.0.state.update(&info).await?;
                    }
                    return Err(match body.abort.take() {
                        Some(abort) => abort.error_at(info.offset),
                        None => store_err,
                    });
                }
            };
            if written.bytes == 0 && !body.ended && carry.is_none() {
                // A store may return once without reading, to have its bookkeeping saved
                // before it writes (a claim); one that keeps doing so, or returns
                // without reading and without news, would be asked again forever.
                if claimed || written.store == info.store {
                    return Err(Error::backend(
                        self.0.store.name(),
                        "the store returned without reading the body",
                    ));
                }
                claimed = true;
            } else {
                claimed = false;
            }
            if written.bytes > 0 || dirty || written.store != info.store {
                info.offset += written.bytes;
                info.store = written.store;
                info.expires_at = self.next_expiry(&info);
                let event = match written.bytes {
                    0 => None,
                    _ => self.post_event(crate::hooks::HookKind::PostReceive, &info),
                };
                info = self
                    .0
                    .state
                    .update_with_event(&info, event.as_ref())
                    .await?;
                self.outbox_written(&event);
                dirty = false;
                if written.bytes > 0 {
                    crate::metrics::bytes_stored(written.bytes);
                    if let Some(committed) = &committed {
                        committed.send_replace(info.offset);
                    }
                    self.emit(Event::Progress(info.clone()));
                }
            }
            if body.ended && carry.is_none() {
                break;
            }
        }
        let end = match (body.stopped, body.disconnected) {
            (Some(Stop::Contended), _) => {
                crate::metrics::write_interrupted();
                BodyEnd::Interrupted
            }
            (Some(Stop::Shutdown), _) => BodyEnd::ShuttingDown,
            (None, true) => BodyEnd::Disconnected,
            (None, false) => BodyEnd::Clean,
        };
        drop(body);
        tracing::debug!(upload.offset = info.offset, ?end, "write committed");

        if req.completes && end == BodyEnd::Clean && info.length.is_none() {
            // Within the allowance, so within any size limit.
            info.length = Some(info.offset);
        }
        if info.length == Some(info.offset) {
            let info = self.finish(info, &mut lease, Finish::Store).await?;
            drop(lease);
            self.complete_pending_finals(&info).await;
            return Ok(WriteOutcome { info, end });
        }
        Ok(WriteOutcome { info, end })
    }
}
