//! The engine as one identity sees it: the only way to touch an upload.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use super::Uploads;
use super::write::{WriteOutcome, WriteRequest};
use crate::body::ByteStream;
use crate::error::{Error, Result};
use crate::hooks::{Access, HookKind, ReplySlot, RequestInfo, with_request};
use crate::id::UploadId;
use crate::owner::Owner;
use crate::upload::{NewUpload, UploadInfo};

/// [`Uploads`] on behalf of one [`Owner`]. Uploads it creates are that owner's; an upload
/// of another identity is [`Error::NotFound`] to every call, checked before the upload's
/// lock is asked for. Cheap to make and to clone.
#[derive(Clone, Debug)]
pub struct Caller {
    uploads: Uploads,
    owner: Owner,
    request: Option<Arc<RequestInfo>>,
    reply: Option<ReplySlot>,
}

impl Caller {
    pub(super) fn new(uploads: Uploads, owner: Owner) -> Self {
        Caller {
            uploads,
            owner,
            request: None,
            reply: None,
        }
    }

    /// This caller acting for `request`: hook events it causes describe it.
    pub fn with_request(mut self, request: RequestInfo) -> Self {
        self.request = Some(Arc::new(request));
        self
    }

    /// This caller with `slot` as where a pre-finish hook's [`Reply`](crate::Reply) to
    /// the request that completes an upload is left, for the front end to apply.
    pub fn answering_into(mut self, slot: ReplySlot) -> Self {
        self.reply = Some(slot);
        self
    }

    /// Runs `work` as this caller's request: its hook events name the request.
    async fn scoped<F: Future>(&self, work: F) -> F::Output {
        with_request(self.request.clone(), self.reply.clone(), work).await
    }

    /// The pre-access hook's say on `access` to `id`, when a hook listens for it.
    async fn access(&self, id: &UploadId, access: Access) -> Result<()> {
        if !self.uploads.0.hooks.wants(HookKind::PreAccess) {
            return Ok(());
        }
        self.scoped(async {
            let info = self.uploads.visible(id, &self.owner).await?;
            self.uploads
                .ask_access(HookKind::PreAccess, &info, Some(access))
                .await
        })
        .await
    }

    /// The identity this caller acts for.
    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The engine behind this caller (capabilities, limits, events).
    pub fn engine(&self) -> &Uploads {
        &self.uploads
    }

    /// Creates an upload owned by this caller. A zero-length upload is finished at once;
    /// a final upload (whose parts must be this caller's partial uploads) is
    /// concatenated as soon as all its parts are finished.
    pub async fn create(&self, new: NewUpload) -> Result<UploadInfo> {
        self.scoped(self.uploads.create(new, &self.owner)).await
    }

    /// Stores a body of unknown length as one finished upload (a form's file, a one-shot
    /// POST). A body that does not end cleanly leaves nothing behind.
    pub async fn create_whole(
        &self,
        mut new: NewUpload,
        body: ByteStream<'_>,
    ) -> Result<UploadInfo> {
        new.length = None;
        let info = self.create(new).await?;
        let whole = WriteRequest {
            atomic: true,
            completes: true,
            ..WriteRequest::default()
        };
        // The caller's own new upload: no access to ask the hooks for.
        let written = self
            .scoped(self.uploads.write(&info.id, &self.owner, whole, body))
            .await;
        match written {
            Ok(outcome) if outcome.info.is_finished() => Ok(outcome.info),
            Ok(outcome) => {
                self.discard(&info.id).await;
                Err(outcome.stopped().err().unwrap_or(Error::IncompleteBody))
            }
            Err(e) => {
                self.discard(&info.id).await;
                Err(e)
            }
        }
    }

    async fn discard(&self, id: &UploadId) {
        // The caller's own leftover: no access to ask for.
        if let Err(e) = self.scoped(self.uploads.terminate(id, &self.owner)).await {
            tracing::warn!(upload.id = %id, error = %e, "incomplete upload not removed");
        }
    }

    /// The current record. An expired upload not yet purged is [`Error::Expired`]; once
    /// purged it is [`Error::NotFound`].
    pub async fn info(&self, id: &UploadId) -> Result<UploadInfo> {
        self.access(id, Access::Info).await?;
        self.uploads.visible(id, &self.owner).await
    }

    /// The caller's finished uploads, newest first, at most `limit`. An anonymous caller
    /// lists none: anonymous uploads are everybody's who knows their URL, so a list of
    /// them would hand every such URL to anyone.
    pub async fn finished_uploads(&self, limit: usize) -> Result<Vec<UploadInfo>> {
        match self.owner.as_deref() {
            Some(name) => self.uploads.0.state.finished_of(name, limit).await,
            None => Ok(Vec::new()),
        }
    }

    /// The record after every earlier write on it has let go: what a client resuming
    /// after a network hiccup should see. The waiting also asks an older, still running
    /// request on the upload to stop (newest wins).
    ///
    /// It also repairs what a crash left half done: a whole upload not yet marked
    /// finished is finished, and a final upload whose parts are all finished is joined
    /// (no later write on a part would start it again).
    pub async fn settled_info(&self, id: &UploadId) -> Result<UploadInfo> {
        self.access(id, Access::Info).await?;
        self.scoped(async {
            let (mut lease, info) = self.uploads.lock_visible(id, &self.owner).await?;
            if info.is_final() && !info.is_finished() {
                drop(lease);
                self.uploads.try_complete_final(id).await?;
                return self.uploads.visible(id, &self.owner).await;
            }
            self.uploads.finish_if_whole(info, &mut lease).await
        })
        .await
    }

    /// Appends `body` at `req.offset`; see [`WriteOutcome`] for how the body ended.
    ///
    /// Bytes are committed every [`super::Limits::checkpoint_bytes`] and at the end, and
    /// everything that arrived before a client disconnect is kept. A newer request on the
    /// same upload makes this one stop at its next chunk and keep what it has; so does
    /// [`Uploads::shutdown`].
    pub async fn write(
        &self,
        id: &UploadId,
        req: WriteRequest,
        body: ByteStream<'_>,
    ) -> Result<WriteOutcome> {
        self.access(id, Access::Write).await?;
        self.scoped(self.uploads.write(id, &self.owner, req, body))
            .await
    }

    /// Streams a finished upload, or `range` of it.
    pub async fn read(
        &self,
        id: &UploadId,
        range: Option<Range<u64>>,
    ) -> Result<(UploadInfo, ByteStream<'static>)> {
        self.access(id, Access::Read).await?;
        let info = self.uploads.visible(id, &self.owner).await?;
        self.uploads.read(info, range).await
    }

    /// Deletes an upload, finished or not.
    pub async fn terminate(&self, id: &UploadId) -> Result<()> {
        self.access(id, Access::Terminate).await?;
        self.scoped(self.uploads.terminate(id, &self.owner)).await
    }

    /// A URL for part `number` of an open browser-direct upload, valid for `valid_for`.
    pub async fn sign_part(
        &self,
        id: &UploadId,
        number: u16,
        valid_for: std::time::Duration,
    ) -> Result<String> {
        self.access(id, Access::Write).await?;
        self.uploads
            .sign_part(id, &self.owner, number, valid_for)
            .await
    }

    /// The parts of a browser-direct upload stored so far (a client resuming after a
    /// page reload asks this).
    pub async fn direct_parts(&self, id: &UploadId) -> Result<Vec<crate::store::Part>> {
        self.access(id, Access::Info).await?;
        self.uploads.direct_parts(id, &self.owner).await
    }

    /// Completes a browser-direct upload from the parts the client names (number and
    /// ETag, checked against what the store holds). Repeating it after success is
    /// harmless.
    pub async fn complete_direct(
        &self,
        id: &UploadId,
        named: &[(u16, String)],
    ) -> Result<UploadInfo> {
        self.access(id, Access::Write).await?;
        self.scoped(self.uploads.complete_direct(id, &self.owner, named))
            .await
    }
}
