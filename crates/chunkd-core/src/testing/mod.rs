//! Conformance suites every implementation of a seam must pass (feature `testing`).
//!
//! Each case is a public async fn; the macros expand them into one named test per
//! implementation, so a report reads `fs::resume_after_short_body`:
//!
//! ```text
//! async fn fs() -> Fixture<dyn DataStore> { ... }
//! chunkd_core::data_store_suite!(fs, concat: yes, direct: no);
//! ```
//!
//! A case for an optional capability returns an [`Outcome`], and the suite is told which
//! capabilities the implementation has. Declared `yes`, the case must run: a skip fails
//! the test. Declared `no`, the case is generated `#[ignore]`d with the reason (the
//! report reads `fs::direct_parts_are_signed_per_part ... ignored, declared without
//! direct parts`), and a companion test checks the capability is really absent, so the
//! declaration cannot lie in either direction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod direct;
pub mod engine;
mod lifecycle;
pub mod lock;
pub mod outbox;
mod running;
pub mod state;
pub mod store;

use std::any::Any;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::StreamExt;

use crate::body::ByteStream;
use crate::id::UploadId;
use crate::metadata::Metadata;
use crate::upload::{ConcatKind, Status, UploadInfo};

/// An implementation under test plus whatever must live as long as it (a temp dir).
pub struct Fixture<T: ?Sized> {
    /// The implementation the cases run against.
    pub it: Arc<T>,
    /// Dropped with the fixture, after the cases are done with `it` (a temp dir, a server).
    pub keep: Option<Box<dyn Any + Send>>,
}

impl<T: ?Sized> Fixture<T> {
    /// A fixture that needs nothing kept alive.
    pub fn new(it: Arc<T>) -> Self {
        Fixture { it, keep: None }
    }

    /// Keeps `keep` alive as long as the fixture.
    pub fn keeping(mut self, keep: impl Any + Send) -> Self {
        self.keep = Some(Box::new(keep));
        self
    }
}

/// A fresh open upload record.
pub fn sample_info(length: Option<u64>) -> UploadInfo {
    UploadInfo {
        id: UploadId::generate(),
        length,
        offset: 0,
        metadata: Metadata::new(),
        status: Status::Open,
        concat: ConcatKind::None,
        owner: None,
        created_at: SystemTime::now(),
        expires_at: None,
        store: Default::default(),
        pending_finals: Vec::new(),
        direct: false,
        limits: Default::default(),
        revision: 0,
    }
}

/// What a capability case did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Every check ran.
    Ran,
    /// The implementation lacks the capability the case checks (or declined it for
    /// this input); the reason says which.
    Skipped(String),
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A body yielding `data` in chunks of `chunk` bytes.
pub fn body_of(data: &[u8], chunk: usize) -> ByteStream<'static> {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

/// A body yielding `data`, then failing as a dropped connection does.
pub fn broken_body(data: &[u8]) -> ByteStream<'static> {
    let items = vec![
        Ok(Bytes::copy_from_slice(data)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    futures::stream::iter(items).boxed()
}

/// Collects a stream into memory.
pub async fn collect(mut stream: ByteStream<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("stream error"));
    }
    out
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($suite:ident, $factory:ident, [$(,)?] [$(#[$attr:meta])*]) => {};
    ($suite:ident, $factory:ident, [$case:ident $(, $rest:ident)* $(,)?] [$(#[$attr:meta])*]) => {
        #[tokio::test]
        $(#[$attr])*
        async fn $case() {
            let fixture = super::$factory().await;
            $crate::testing::$suite::$case(fixture.it.clone()).await;
        }
        $crate::__conformance_cases!($suite, $factory, [$($rest),*] [$(#[$attr])*]);
    };
}

/// One test for a capability case, as the implementation's declaration says: `yes`
/// runs the case and fails on a skip; `no` runs `$absent` instead, which fails if the
/// capability is there after all. A declared-absent case is not generated at all, so no
/// run (not even with `--include-ignored`) counts it as passed.
#[doc(hidden)]
#[macro_export]
macro_rules! __capability_case {
    (yes, $suite:ident, $factory:ident, $case:ident, $accessor:ident, $absent:ident,
        $what:literal [$(#[$attr:meta])*]) => {
        #[tokio::test]
        $(#[$attr])*
        async fn $case() {
            let fixture = super::$factory().await;
            if let $crate::testing::Outcome::Skipped(why) =
                $crate::testing::$suite::$case(fixture.it.clone()).await
            {
                panic!(
                    "{} is declared with {}, yet the case was skipped: {why}",
                    stringify!($factory),
                    $what
                );
            }
        }
    };
    (no, $suite:ident, $factory:ident, $case:ident, $accessor:ident, $absent:ident,
        $what:literal [$(#[$attr:meta])*]) => {
        #[tokio::test]
        $(#[$attr])*
        async fn $absent() {
            let fixture = super::$factory().await;
            assert!(
                fixture.it.$accessor().is_none(),
                "{} is declared without {}, yet the store offers it",
                stringify!($factory),
                $what
            );
        }
    };
}

/// One test per [`store`] case, in a module named after the factory. `concat` and
/// `direct` declare (`yes` or `no`) whether the store has native concatenation
/// ([`crate::Concat`]) and browser-direct parts ([`crate::DirectParts`]).
#[macro_export]
macro_rules! data_store_suite {
    ($factory:ident, concat: $concat:ident, direct: $direct:ident $(, #[$attr:meta])*) => {
        mod $factory {
            $crate::__conformance_cases!(
                store,
                $factory,
                [
                    create_write_read,
                    resume_after_short_body,
                    empty_chunks_write_nothing,
                    finish_survives_a_retry,
                    failed_body_keeps_nothing,
                    drops_bytes_past_recorded_offset,
                    ignores_a_lost_write_across_a_part,
                    read_range,
                    delete_is_idempotent,
                ]
                [$(#[$attr])*]
            );
            $crate::__capability_case!(
                $concat,
                store,
                $factory,
                native_concat_joins_parts,
                concat,
                native_concat_is_really_absent,
                "native concatenation"
                [$(#[$attr])*]
            );
            $crate::__capability_case!(
                $direct,
                store,
                $factory,
                direct_parts_are_signed_per_part,
                direct,
                direct_parts_are_really_absent,
                "direct parts"
                [$(#[$attr])*]
            );
        }
    };
}

/// One test per [`state`] case.
#[macro_export]
macro_rules! state_store_suite {
    ($factory:ident $(, #[$attr:meta])*) => {
        mod $factory {
            $crate::__conformance_cases!(
                state,
                $factory,
                [
                    insert_then_get_round_trips,
                    insert_twice_is_already_exists,
                    get_unknown_is_not_found,
                    update_is_compare_and_swap,
                    remove_is_idempotent_and_conditional,
                    expired_lists_only_expired_open_uploads,
                    finished_of_lists_an_owners_finished_uploads_newest_first,
                ]
                [$(#[$attr])*]
            );
            $crate::__conformance_cases!(
                outbox,
                $factory,
                [
                    outbox_event_commits_with_its_change,
                    outbox_hands_out_each_uploads_events_in_order,
                    outbox_coalesces_progress_not_yet_handed_out,
                    outbox_retries_parks_and_outlives_its_holder,
                ]
                [$(#[$attr])*]
            );
        }
    };
}

/// One test per [`lock`] case.
#[macro_export]
macro_rules! locker_suite {
    ($factory:ident $(, #[$attr:meta])*) => {
        mod $factory {
            $crate::__conformance_cases!(
                lock,
                $factory,
                [
                    second_request_signals_holder_and_gets_lease,
                    lock_times_out_while_held,
                    dropping_lease_releases,
                    locks_are_per_upload,
                    try_lock_never_signals_the_holder,
                ]
                [$(#[$attr])*]
            );
        }
    };
}

/// One test per [`engine`] scenario, for a (data store, state store) pair.
#[macro_export]
macro_rules! engine_suite {
    ($factory:ident $(, #[$attr:meta])*) => {
        mod $factory {
            $crate::__conformance_cases!(
                engine,
                $factory,
                [
                    single_request_upload,
                    chunked_upload,
                    interrupted_body_keeps_received_bytes,
                    offset_mismatch_is_rejected,
                    length_exceeded_keeps_nothing,
                    checksum_mismatch_discards_chunk,
                    trailer_checksum_is_verified,
                    deferred_length,
                    zero_length_finishes_at_creation,
                    a_whole_upload_left_unfinished_is_finished_when_seen,
                    a_concatenation_cut_off_is_completed_when_seen,
                    a_joined_final_the_store_finished_is_finished_when_seen,
                    a_repeated_last_request_after_the_crash_finishes,
                    an_id_the_store_kept_without_a_record_is_created_again,
                    concatenation_of_finished_parts,
                    concatenation_is_bounded_in_parts,
                    concatenation_waits_for_unfinished_parts,
                    newest_request_wins,
                    terminate_removes_upload,
                    expired_uploads_are_purged,
                    finished_partials_expire,
                    a_waiting_final_and_its_parts_outlive_their_expiry,
                    checkpoints_commit_long_bodies,
                    chosen_ids_are_unique,
                    whole_bodies_are_all_or_nothing,
                    another_owner_never_reaches_an_upload,
                    gc_leaves_a_running_upload_alone,
                    completing_bodies_settle_the_length,
                ]
                [$(#[$attr])*]
            );
        }
    };
}

/// One test per [`direct`] scenario, for an engine over a store with direct parts.
#[macro_export]
macro_rules! direct_parts_suite {
    ($factory:ident $(, #[$attr:meta])*) => {
        mod $factory {
            $crate::__conformance_cases!(
                direct,
                $factory,
                [
                    direct_upload_round_trips,
                    a_part_put_again_replaces_the_first,
                    wrong_etag_is_refused_and_the_parts_stay,
                    gaps_and_missing_parts_are_refused,
                    small_parts_before_the_last_are_refused,
                    completing_again_is_harmless,
                    another_owner_is_told_not_found,
                    plain_uploads_have_no_direct_parts,
                    max_size_is_enforced,
                    declared_size_must_match_the_parts,
                    appending_through_the_engine_is_not_supported,
                    part_numbers_run_from_1_to_10000,
                    terminated_uploads_take_no_more_parts,
                ]
                [$(#[$attr])*]
            );
        }
    };
}
