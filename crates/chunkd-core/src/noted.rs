//! The upload a request was about, noted by the engine for the front end's access log:
//! a protocol may name it in the path, the query or a form field, or learn it only
//! when it is created, and the engine sees every one of these.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::id::UploadId;

tokio::task_local! {
    static NOTED: NotedUpload;
}

/// Where the engine notes the upload of the request being served; see
/// [`NotedUpload::scope`].
#[derive(Clone, Debug, Default)]
pub struct NotedUpload(Arc<Mutex<Option<UploadId>>>);

impl NotedUpload {
    /// Runs `work` (a request's handling) with engine calls noting their upload here.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        NOTED.scope(self, work).await
    }

    /// The upload noted so far.
    pub fn get(&self) -> Option<UploadId> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Notes `id` for the request being served, if any. The first upload a request looks
/// at is its own; a creation notes its id (and the one a hook chose) with `replace`,
/// before it looks at a final upload's parts.
pub(crate) fn note(id: &UploadId, replace: bool) {
    let _ = NOTED.try_with(|noted| {
        let mut noted = noted.0.lock().unwrap_or_else(PoisonError::into_inner);
        if replace || noted.is_none() {
            *noted = Some(id.clone());
        }
    });
}
