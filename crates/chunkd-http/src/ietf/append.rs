//! Writing a request's bytes (with progress 104s) and answering the request that
//! completes an upload, or that reaches one already complete.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use chunkd_core::{
    BodyEnd, Caller, ChecksumAlgorithm, UploadId, UploadInfo, WriteOutcome, WriteRequest,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::sync::watch;

use super::Ietf;
use super::digest::{self, Digest, REPR_DIGEST_KEY};
use super::handlers::{Answer, set, upload_resumption_supported};
use super::problem::{Kind, Problem};
use super::version::{INTEROP_HEADER, Interop};
use crate::body;
use crate::forward::{Completed, CompletedFile};
use crate::interim::Interim;

/// What a completing response reports besides the upload itself.
pub(super) struct Completion {
    pub status: StatusCode,
    pub origin: String,
    pub want: Option<ChecksumAlgorithm>,
    pub location: Option<String>,
    /// A `Repr-Digest` sent with this request (one sent at creation is in the metadata).
    pub repr_digest: Option<Digest>,
    /// This request finished the upload, rather than asking again for the answer of the
    /// one that did: only then is the recorded digest checked and the application told.
    pub finished_now: bool,
}

impl Ietf {
    /// An append to a finished upload. An empty completing append at the end is a
    /// client asking again for a final answer it lost: it gets it. Anything else is
    /// refused as the draft says: content means an inconsistent length, an empty append
    /// a completed upload.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn append_to_completed(
        &self,
        interop: Interop,
        caller: &Caller,
        info: UploadInfo,
        offset: u64,
        complete: bool,
        body_len: Option<u64>,
        completion: Completion,
    ) -> Answer {
        let empty = body_len == Some(0);
        if empty && complete && offset == info.offset {
            let again = Completion {
                finished_now: false,
                ..completion
            };
            return self.completed(interop, caller, &info, again).await;
        }
        let problem = if empty {
            Problem {
                kind: Kind::CompletedUpload,
                ..Problem::new(StatusCode::GONE, "the upload is already complete")
            }
        } else {
            Problem::inconsistent_length("the upload is already complete")
        };
        Err(Problem {
            offset: Some(info.offset),
            complete: Some(true),
            ..problem
        })
    }

    /// Writes the body at the request's offset. When the client says this request ends
    /// the upload, the upload must be finished by it: a clean end with the length still
    /// open settles the length; a cut-off body leaves the upload open to resume.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn append(
        &self,
        interop: Interop,
        caller: &Caller,
        interim: Option<&Interim>,
        id: &UploadId,
        mut write: WriteRequest,
        complete: bool,
        body: Body,
    ) -> Result<UploadInfo, Problem> {
        write.completes = complete;
        let stream = body::byte_stream(body, self.idle_timeout, |_| {});
        let outcome = self
            .write_reporting(interop, caller, interim, id, write, stream)
            .await?;
        let end = outcome.end;
        let info = outcome.stopped()?;
        if !complete || info.is_finished() {
            return Ok(info);
        }
        if end != BodyEnd::Clean {
            return Err(Problem {
                offset: Some(info.offset),
                complete: Some(false),
                ..Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the request body ended early; resume from Upload-Offset",
                )
            });
        }
        // A clean completing body settles an open length, so the length is known here.
        let length = info.length.unwrap_or(info.offset);
        Err(Problem::inconsistent_length(format!(
            "the upload is {length} bytes but the request completing it ends at {}",
            info.offset
        )))
    }

    /// The engine write, with a 104 carrying each newly committed offset (at most one
    /// per `progress_interval`) for clients that understand progress 104s.
    async fn write_reporting(
        &self,
        interop: Interop,
        caller: &Caller,
        interim: Option<&Interim>,
        id: &UploadId,
        mut write: WriteRequest,
        stream: chunkd_core::ByteStream<'static>,
    ) -> Result<WriteOutcome, chunkd_core::Error> {
        let Some(interim) = interim.filter(|_| interop.progress_interim()) else {
            return caller.write(id, write, stream).await;
        };
        let (committed, mut offsets) = watch::channel(write.offset);
        write.committed = Some(Arc::new(committed));
        let writing = caller.write(id, write, stream);
        tokio::pin!(writing);
        let mut last_report: Option<Instant> = None;
        loop {
            tokio::select! {
                result = &mut writing => return result,
                changed = offsets.changed() => {
                    if changed.is_err() {
                        return writing.await;
                    }
                    let offset = *offsets.borrow_and_update();
                    if last_report.is_some_and(|at| at.elapsed() < self.progress_interval) {
                        continue;
                    }
                    last_report = Some(Instant::now());
                    let mut progress = HeaderMap::new();
                    progress.insert("upload-offset", HeaderValue::from(offset));
                    if let Some(version) = interop.announced() {
                        progress.insert(INTEROP_HEADER, HeaderValue::from(u16::from(version)));
                    }
                    if let Err(e) = interim.send(upload_resumption_supported(), &progress).await {
                        tracing::debug!(error = %e, "progress 104 not delivered");
                    }
                }
            }
        }
    }

    /// The answer to the request that completed an upload: the upload resource's
    /// target processed the representation, so this is a file description, with the
    /// representation digest checked (and reported when asked for).
    pub(super) async fn completed(
        &self,
        interop: Interop,
        caller: &Caller,
        info: &UploadInfo,
        c: Completion,
    ) -> Answer {
        // Checked when the upload finished (a mismatch discarded it): not read again.
        let recorded = info
            .metadata
            .text(REPR_DIGEST_KEY)
            .and_then(Digest::parse_field)
            .filter(|_| c.finished_now);
        let mut known: Option<Digest> = None;
        for expected in recorded.into_iter().chain(c.repr_digest) {
            let actual = match known.take() {
                Some(d) if d.algorithm == expected.algorithm => d,
                _ => digest::of_upload(caller, &info.id, expected.algorithm).await?,
            };
            if actual != expected {
                // Resuming cannot fix this: the representation is complete and wrong.
                if let Err(e) = caller.terminate(&info.id).await {
                    tracing::warn!(error = %e, "could not discard an upload failing its digest");
                }
                return Err(Problem {
                    complete: Some(true),
                    ..Problem::bad_request(
                        "the upload does not match its Repr-Digest and was discarded",
                    )
                });
            }
            known = Some(actual);
        }
        let mut response = self.reply(c.status, interop);
        if let Some(algorithm) = c.want {
            let digest = match known {
                Some(d) if d.algorithm == algorithm => d,
                _ => digest::of_upload(caller, &info.id, algorithm).await?,
            };
            set(&mut response, "repr-digest", digest.field());
        }
        let url = self
            .download_path
            .as_ref()
            .map(|p| format!("{}{p}/{}", c.origin, info.id));
        let file = CompletedFile::of(info, url);
        *response.body_mut() = Body::from(serde_json::to_string(&file).unwrap_or_default());
        set(&mut response, "content-type", "application/json");
        if let Some(location) = c.location {
            set(&mut response, "location", location);
        }
        self.set_complete(&mut response, interop, true);
        set(&mut response, "upload-offset", info.offset);
        if c.finished_now {
            response
                .extensions_mut()
                .insert(Completed::notify(vec![file]));
        }
        Ok(response)
    }
}
