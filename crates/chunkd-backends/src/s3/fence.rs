//! Fencing part numbers against writers that lost their lock.
//!
//! S3 keeps the last UploadPart of a number, and a writer whose lease ran out may still
//! have one in flight (it stops reading its body, but a part it was sending when it
//! stopped can land any time later). Were the next holder to send a part of the same
//! number, the late one could replace it, and the upload could never complete. So
//! writers never share a number:
//!
//! - Within one process, writes of one upload take turns: a new one waits until the old
//!   one's last request is answered (a local lock per upload, beside the engine's).
//! - A write whose record was last written by another store instance (another process,
//!   or one from before a restart) first claims its numbers: it lists the parts the
//!   service holds, and returns, having read nothing, a record whose next number lies
//!   past every listed part and past the previous claim, with one number left free for
//!   the one part the old writer may still be sending. The engine saves that record
//!   (compare-and-swap, so of two claims from the same record only one is kept) and
//!   calls again. An old writer sends its numbers upwards from its own claim, one at a
//!   time, so every number it can still send is at most one past what is listed or is
//!   its claim itself; the new claim is above both.
//!
//! It costs one ListParts and one record save when an upload moves to another instance,
//! and one or two part numbers of the 10,000; nothing when it stays.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chunkd_core::UploadId;
use tokio::sync::OwnedMutexGuard;

use super::record::Multipart;

/// The writes of this store instance in progress, one turn per upload at a time.
#[derive(Debug)]
pub(super) struct Writers {
    /// Names this instance in the records it writes.
    instance: String,
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// One write's turn on its upload; the next write of the upload waits for its drop.
pub(super) struct Turn<'a> {
    writers: &'a Writers,
    id: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Writers {
    pub(super) fn new() -> Writers {
        Writers {
            instance: UploadId::generate().as_str().to_owned(),
            turns: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn instance(&self) -> &str {
        &self.instance
    }

    /// Waits until no other write of `id` in this process is running.
    pub(super) async fn turn(&self, id: &UploadId) -> Turn<'_> {
        let lock = self
            .turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.as_str().to_owned())
            .or_default()
            .clone();
        Turn {
            writers: self,
            id: id.as_str().to_owned(),
            guard: Some(lock.lock_owned().await),
        }
    }

    /// Whether `multipart` must be claimed before this instance sends parts for it.
    pub(super) fn must_claim(&self, multipart: &Multipart) -> bool {
        multipart.writer.as_deref() != Some(self.instance.as_str())
    }

    /// Moves the next number past every part the service lists (`listed_last`) and past
    /// the previous claim, leaving one free, and names this instance as the writer.
    pub(super) fn claim(&self, multipart: &mut Multipart, listed_last: Option<u16>) {
        let highest_known = listed_last
            .unwrap_or(0)
            .max(multipart.next_number.saturating_sub(1));
        multipart.next_number = multipart.next_number.max(highest_known.saturating_add(2));
        multipart.writer = Some(self.instance.clone());
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut turns = self
            .writers
            .turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drop(self.guard.take());
        // Nobody else holds or waits for the lock: the map forgets the upload.
        if turns
            .get(&self.id)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            turns.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multipart(writer: &str, next_number: u16) -> Multipart {
        let mut m = Multipart::new("u".into(), 5 << 20, writer);
        m.next_number = next_number;
        m
    }

    #[test]
    fn a_claim_leaves_one_number_past_all_that_is_known() {
        let writers = Writers::new();
        // Parts 1 to 3 recorded, 4 and 5 listed (an old writer's, unrecorded): the old
        // writer may be sending 6.
        let mut m = multipart("old", 4);
        assert!(writers.must_claim(&m));
        writers.claim(&mut m, Some(5));
        assert_eq!(m.next_number, 7);
        assert!(!writers.must_claim(&m));
        // Nothing listed past the record: the old writer may be sending its next, 4.
        let mut m = multipart("old", 4);
        writers.claim(&mut m, Some(3));
        assert_eq!(m.next_number, 5);
        // An old claim at 9 with nothing sent yet: it may be sending 9.
        let mut m = multipart("old", 9);
        writers.claim(&mut m, Some(3));
        assert_eq!(m.next_number, 10);
        // A fresh upload.
        let mut m = multipart("old", 1);
        writers.claim(&mut m, None);
        assert_eq!(m.next_number, 2);
    }

    #[tokio::test]
    async fn writes_of_one_upload_take_turns_and_the_map_forgets_them() {
        let writers = Writers::new();
        let id = UploadId::generate();
        let first = writers.turn(&id).await;
        let other = writers.turn(&UploadId::generate()).await;
        let second = writers.turn(&id);
        tokio::pin!(second);
        assert!(
            futures::poll!(second.as_mut()).is_pending(),
            "a second write of the same upload waits"
        );
        drop(first);
        let second = second.await;
        drop(second);
        drop(other);
        assert!(writers.turns.lock().unwrap().is_empty());
    }
}
