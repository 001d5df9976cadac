//! What the engine counts, through the [`metrics`] facade: the application installs the
//! recorder it wants (the chunkd binary: a Prometheus exporter); without one, every
//! count is a no-op. Names follow tusd's (`tusd_uploads_created` is
//! `chunkd_uploads_created_total`) so a dashboard carries over.

mod metered;

pub(crate) use metered::{MeteredData, MeteredState};

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram};

use crate::hooks::{Event, HookKind};

/// Uploads created.
pub const UPLOADS_CREATED: &str = "chunkd_uploads_created_total";
/// Uploads that received their last byte and became readable.
pub const UPLOADS_FINISHED: &str = "chunkd_uploads_finished_total";
/// Uploads whose last byte arrived but whose pre-finish hook refused them.
pub const UPLOADS_REFUSED: &str = "chunkd_uploads_refused_total";
/// Uploads removed by a client (or for outgrowing their limit).
pub const UPLOADS_TERMINATED: &str = "chunkd_uploads_terminated_total";
/// Unfinished uploads purged after their expiry.
pub const UPLOADS_EXPIRED: &str = "chunkd_uploads_expired_total";
/// Writes to uploads under way now.
pub const UPLOADS_IN_FLIGHT: &str = "chunkd_uploads_in_flight";
/// Bytes appended to uploads (committed, so a byte sent twice counts twice).
pub const BYTES_STORED: &str = "chunkd_bytes_stored_total";
/// Time per data-store or state-store call, by `store` (data, state), `backend` and
/// `operation`, with `outcome` ok or error.
pub const STORE_DURATION: &str = "chunkd_store_operation_duration_seconds";
/// Requests that found their upload's lock held and waited for it.
pub const LOCK_WAITS: &str = "chunkd_lock_waits_total";
/// How long those requests waited.
pub const LOCK_WAIT_DURATION: &str = "chunkd_lock_wait_duration_seconds";
/// Writes that stopped because a newer request for the same upload asked for its lock.
pub const WRITES_INTERRUPTED: &str = "chunkd_writes_interrupted_total";
/// Hook invocations, by `hook` (tusd's names: pre-create, post-finish, …).
pub const HOOK_INVOCATIONS: &str = "chunkd_hook_invocations_total";
/// Hook invocations that failed (unreachable, slow, a bad answer), by `hook`.
pub const HOOK_FAILURES: &str = "chunkd_hook_failures_total";
/// Post-events parked after failing every attempt.
pub const HOOK_EVENTS_PARKED: &str = "chunkd_hook_events_parked_total";

/// Gives each engine metric its help text and unit; call once after installing a
/// recorder.
pub fn describe() {
    describe_counter!(UPLOADS_CREATED, "Uploads created");
    describe_counter!(
        UPLOADS_FINISHED,
        "Uploads that received their last byte and became readable"
    );
    describe_counter!(
        UPLOADS_REFUSED,
        "Uploads whose last byte arrived but whose pre-finish hook refused them"
    );
    describe_counter!(UPLOADS_TERMINATED, "Uploads removed by a client");
    describe_counter!(
        UPLOADS_EXPIRED,
        "Unfinished uploads purged after their expiry"
    );
    describe_gauge!(UPLOADS_IN_FLIGHT, "Writes to uploads under way");
    describe_counter!(
        BYTES_STORED,
        Unit::Bytes,
        "Bytes appended to uploads and committed"
    );
    describe_histogram!(
        STORE_DURATION,
        Unit::Seconds,
        "Time per data-store and state-store call (a write lasts as long as its body)"
    );
    describe_counter!(LOCK_WAITS, "Requests that waited for their upload's lock");
    describe_histogram!(
        LOCK_WAIT_DURATION,
        Unit::Seconds,
        "How long requests waited for their upload's lock"
    );
    describe_counter!(
        WRITES_INTERRUPTED,
        "Writes stopped because a newer request for the upload took over"
    );
    describe_counter!(HOOK_INVOCATIONS, "Hook invocations");
    describe_counter!(HOOK_FAILURES, "Hook invocations that failed");
    describe_counter!(
        HOOK_EVENTS_PARKED,
        "Post-events parked after failing every attempt"
    );
}

/// Counts what an engine event says happened.
pub(crate) fn event(event: &Event) {
    let name = match event {
        Event::Created(_) => UPLOADS_CREATED,
        Event::Finished(_) => UPLOADS_FINISHED,
        Event::Refused(..) => UPLOADS_REFUSED,
        Event::Terminated(_) => UPLOADS_TERMINATED,
        Event::Expired(_) => UPLOADS_EXPIRED,
        Event::Progress(_) => return,
    };
    counter!(name).increment(1);
}

pub(crate) fn bytes_stored(bytes: u64) {
    counter!(BYTES_STORED).increment(bytes);
}

pub(crate) fn lock_waited(waited: Duration) {
    counter!(LOCK_WAITS).increment(1);
    histogram!(LOCK_WAIT_DURATION).record(waited.as_secs_f64());
}

pub(crate) fn write_interrupted() {
    counter!(WRITES_INTERRUPTED).increment(1);
}

/// A hook of `kind` was called.
pub fn hook_invoked(kind: HookKind) {
    counter!(HOOK_INVOCATIONS, "hook" => kind.name()).increment(1);
}

/// A hook of `kind` failed: for transports, which alone can tell a failure from an
/// answer.
pub fn hook_failed(kind: HookKind) {
    counter!(HOOK_FAILURES, "hook" => kind.name()).increment(1);
}

pub(crate) fn event_parked() {
    counter!(HOOK_EVENTS_PARKED).increment(1);
}

/// Counts a write under way while it lives.
pub(crate) struct InFlight(());

impl InFlight {
    pub(crate) fn start() -> Self {
        metrics::gauge!(UPLOADS_IN_FLIGHT).increment(1.0);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(UPLOADS_IN_FLIGHT).decrement(1.0);
    }
}
