//! The application's own state about uploads: which files each user finished, learnt
//! from the engine's events rather than by asking the engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::extract::State;
use chunkd_core::Event;
use chunkd_http::completed::CompletedFile;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::sessions::User;

/// Finished uploads by owner; clones share them.
#[derive(Clone, Default)]
pub struct Finished(Arc<Mutex<HashMap<String, Vec<CompletedFile>>>>);

impl Finished {
    /// A record kept current by `events` (from [`chunkd_core::Uploads::events`]) for as
    /// long as the engine runs.
    pub fn following(mut events: broadcast::Receiver<Event>) -> Self {
        let finished = Finished::default();
        let record = finished.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::Finished(info)) => {
                        // Every request is signed in, so every upload has an owner.
                        let Some(owner) = info.owner.clone() else {
                            continue;
                        };
                        // Downloads are served by the tus router, below its mount.
                        let url = format!("/files/{}", info.id);
                        let file = CompletedFile::of(&info, Some(url));
                        tracing::info!(upload.id = %info.id, %owner, "upload finished");
                        record.lock().entry(owner).or_default().push(file);
                    }
                    Ok(_) => {}
                    // Progress events come often; a slow moment may drop some, and with
                    // them perhaps a Finished one, which a real application would then
                    // look up in its database.
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "upload events missed");
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        finished
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<CompletedFile>>> {
        // Pushes are single calls: a panic elsewhere cannot leave a list half-changed.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `GET /api/uploads`: the files the signed-in user finished, oldest first.
pub async fn list(State(finished): State<Finished>, User(user): User) -> Json<Vec<CompletedFile>> {
    Json(finished.lock().get(&user).cloned().unwrap_or_default())
}
