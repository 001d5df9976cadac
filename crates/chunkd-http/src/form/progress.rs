//! Upload progress by `X-Progress-ID`, as nginx's upload progress module reports it:
//! `starting`, `uploading` (received of size), `done`, `error` (with status).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Finished entries stay visible this long, for late polls.
const KEEP_FINISHED: Duration = Duration::from_secs(60);

/// A client-chosen progress id: 1 to 64 letters, digits, `-` or `_`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Uploading,
    Done,
    Error(u16),
}

#[derive(Debug)]
pub struct Entry {
    received: AtomicU64,
    size: Option<u64>,
    state: Mutex<(State, Option<Instant>)>,
}

impl Entry {
    pub fn add(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    pub fn finish(&self, state: State) {
        if let Ok(mut s) = self.state.lock() {
            *s = (state, Some(Instant::now()));
        }
    }

    /// Still reported: running, or finished less than [`KEEP_FINISHED`] ago.
    fn is_kept(&self) -> bool {
        match self.state() {
            (State::Uploading, _) => true,
            (_, finished) => finished.is_some_and(|t| t.elapsed() < KEEP_FINISHED),
        }
    }

    fn state(&self) -> (State, Option<Instant>) {
        self.state
            .lock()
            .map(|s| *s)
            .unwrap_or((State::Error(500), None))
    }
}

/// What a progress poll sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    Starting,
    Uploading { received: u64, size: Option<u64> },
    Done { received: u64 },
    Error { status: u16 },
}

type Key = (Option<String>, String);

/// Progress of tagged uploads in flight, per owner.
#[derive(Debug, Default)]
pub struct Tracker {
    entries: Mutex<Entries>,
    walks: AtomicUsize,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<Key, Arc<Entry>>,
    last_walk: Option<Instant>,
}

/// Finished entries past [`KEEP_FINISHED`] are dropped at most this often: a walk over
/// every entry per request would make each poll cost as much as all uploads together.
const WALK_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, PartialEq, Eq)]
pub enum TrackError {
    /// An upload with this id is still running.
    Busy,
}

impl Tracker {
    #[cfg(test)]
    fn walks(&self) -> usize {
        self.walks.load(Ordering::Relaxed)
    }

    /// Drops finished entries past their time, unless that was done a moment ago.
    fn prune(&self, entries: &mut Entries) {
        if entries.last_walk.is_some_and(|t| t.elapsed() < WALK_EVERY) {
            return;
        }
        self.walks.fetch_add(1, Ordering::Relaxed);
        entries.map.retain(|_, e| e.is_kept());
        entries.last_walk = Some(Instant::now());
    }

    /// Starts tracking an upload of `size` bytes (the request's Content-Length).
    pub fn begin(
        &self,
        owner: Option<&str>,
        id: &str,
        size: Option<u64>,
    ) -> Result<Arc<Entry>, TrackError> {
        let mut entries = self.entries.lock().map_err(|_| TrackError::Busy)?;
        self.prune(&mut entries);
        let key = (owner.map(str::to_owned), id.to_owned());
        if entries
            .map
            .get(&key)
            .is_some_and(|e| e.state().0 == State::Uploading)
        {
            return Err(TrackError::Busy);
        }
        let entry = Arc::new(Entry {
            received: AtomicU64::new(0),
            size,
            state: Mutex::new((State::Uploading, None)),
        });
        entries.map.insert(key, entry.clone());
        Ok(entry)
    }

    pub fn report(&self, owner: Option<&str>, id: &str) -> Report {
        let Ok(entries) = self.entries.lock() else {
            return Report::Error { status: 500 };
        };
        let key = (owner.map(str::to_owned), id.to_owned());
        let Some(entry) = entries.map.get(&key).filter(|e| e.is_kept()) else {
            return Report::Starting;
        };
        let received = entry.received.load(Ordering::Relaxed);
        match entry.state().0 {
            State::Uploading => Report::Uploading {
                received,
                size: entry.size,
            },
            State::Done => Report::Done { received },
            State::Error(status) => Report::Error { status },
        }
    }

    /// Forgets a finished entry; `Err(Busy)` while it runs, `Ok(false)` if unknown.
    pub fn clear(&self, owner: Option<&str>, id: &str) -> Result<bool, TrackError> {
        let mut entries = self.entries.lock().map_err(|_| TrackError::Busy)?;
        let key = (owner.map(str::to_owned), id.to_owned());
        match entries.map.get(&key).map(|e| e.state().0) {
            None => Ok(false),
            Some(State::Uploading) => Err(TrackError::Busy),
            Some(_) => Ok(entries.map.remove(&key).is_some()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_lifecycle_per_owner() {
        let t = Tracker::default();
        assert_eq!(t.report(None, "a"), Report::Starting);
        let e = t.begin(Some("alice"), "a", Some(10)).expect("begin");
        e.add(4);
        assert_eq!(
            t.report(Some("alice"), "a"),
            Report::Uploading {
                received: 4,
                size: Some(10)
            }
        );
        assert_eq!(
            t.report(Some("bob"), "a"),
            Report::Starting,
            "another owner sees nothing"
        );
        assert_eq!(
            t.begin(Some("alice"), "a", None).err(),
            Some(TrackError::Busy)
        );
        assert_eq!(t.clear(Some("alice"), "a"), Err(TrackError::Busy));
        e.add(6);
        e.finish(State::Done);
        assert_eq!(t.report(Some("alice"), "a"), Report::Done { received: 10 });
        assert_eq!(t.clear(Some("alice"), "a"), Ok(true));
        assert_eq!(t.report(Some("alice"), "a"), Report::Starting);
    }

    #[test]
    fn polls_do_not_walk_every_entry() {
        let t = Tracker::default();
        for i in 0..1000 {
            t.begin(None, &format!("f{i}"), None)
                .expect("begin")
                .finish(State::Done);
        }
        let before = t.walks();
        for i in 0..1000 {
            assert_eq!(
                t.report(None, &format!("f{i}")),
                Report::Done { received: 0 }
            );
        }
        t.begin(None, "new", None).expect("begin");
        assert!(
            t.walks() - before <= 1,
            "{} walks over every entry for 1001 calls",
            t.walks() - before
        );
    }

    #[test]
    fn validates_ids() {
        assert!(valid_id("abc-DEF_123"));
        for bad in ["", "a b", "../x", "a\0", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }
}
