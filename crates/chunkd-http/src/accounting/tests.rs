//! Counts and access-log lines of real requests through every front end, recorded by
//! the Prometheus recorder the binary installs (here a local one, on this thread).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chunkd_core::Uploads;
use chunkd_core::memory::{MemoryState, MemoryStore};
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

use crate::test_support::{call, creating_requests, every_front_end, send};

fn engine() -> Uploads {
    Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build()
}

/// Runs `work` on this thread with a fresh recorder; what it rendered afterwards.
fn recorded(work: impl AsyncFnOnce()) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(work()));
    handle.render()
}

/// The value of the sample `name` with (at least) `labels`, or 0 when there is none.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse().unwrap())
        })
        .collect();
    assert!(
        found.len() <= 1,
        "{name} {labels:?} is ambiguous in\n{text}"
    );
    found.first().copied().unwrap_or(0.0)
}

#[test]
fn requests_bytes_uploads_and_errors_are_counted_by_protocol() {
    let mut tus_upload = String::new();
    // Every body tus sent: the download's four bytes and the refusals' messages.
    let mut tus_sent = 0;
    let text = recorded(async || {
        let app = every_front_end(&engine());
        for creation in creating_requests() {
            let protocol = creation.0;
            let reply = send(&app, "POST", creation).await;
            assert!(reply.status.is_success(), "{protocol}: {}", reply.status);
            if protocol == "tus" {
                tus_upload = reply.location_path();
                tus_sent += reply.body.len();
            }
        }
        let download = call(&app, "GET", &tus_upload, &[], "").await;
        assert_eq!(&download.body[..], b"data");
        let stale = call(
            &app,
            "PATCH",
            &tus_upload,
            &[
                ("tus-resumable", "1.0.0"),
                ("upload-offset", "1"),
                ("content-type", "application/offset+octet-stream"),
            ],
            "x",
        )
        .await;
        assert_eq!(stale.status, 409);
        let invented = call(&app, "FROBNICATE", &tus_upload, &[], "").await;
        assert!(invented.status.is_client_error(), "{}", invented.status);
        tus_sent += download.body.len() + stale.body.len() + invented.body.len();
    });

    let created = [("protocol", "tus"), ("method", "POST"), ("status", "2xx")];
    assert_eq!(sample(&text, "chunkd_requests_total", &created), 1.0);
    for protocol in ["ietf", "resumablejs", "content-range", "form"] {
        let answered = [("protocol", protocol), ("status", "2xx")];
        assert_eq!(
            sample(&text, "chunkd_requests_total", &answered),
            1.0,
            "{protocol}"
        );
        // Multipart framing counts as received; the four bytes at least.
        let received = sample(
            &text,
            "chunkd_bytes_received_total",
            &[("protocol", protocol)],
        );
        assert!(received >= 4.0, "{protocol}: {received}");
    }
    let tus = [("protocol", "tus")];
    // "data" at creation; the stale PATCH is refused before its byte is read.
    assert_eq!(sample(&text, "chunkd_bytes_received_total", &tus), 4.0);
    assert_eq!(
        sample(&text, "chunkd_bytes_served_total", &tus),
        tus_sent as f64
    );
    let refused = [("protocol", "tus"), ("method", "PATCH"), ("status", "4xx")];
    assert_eq!(sample(&text, "chunkd_requests_total", &refused), 1.0);
    let code = [("code", "ERR_MISMATCHED_OFFSET")];
    assert_eq!(sample(&text, "chunkd_errors_total", &code), 1.0);
    // A made-up method is one label, whatever its name.
    let other = [("protocol", "tus"), ("method", "other")];
    assert_eq!(sample(&text, "chunkd_requests_total", &other), 1.0);
    assert!(!text.contains("FROBNICATE"), "{text}");

    // Resumable.js keeps its chunk as a partial upload, joined into the file and removed.
    assert_eq!(sample(&text, "chunkd_uploads_created_total", &[]), 6.0);
    assert_eq!(sample(&text, "chunkd_uploads_finished_total", &[]), 6.0);
    assert_eq!(sample(&text, "chunkd_uploads_terminated_total", &[]), 1.0);
    assert_eq!(sample(&text, "chunkd_bytes_stored_total", &[]), 20.0);
    assert_eq!(sample(&text, "chunkd_uploads_in_flight", &[]), 0.0);
    let writes = [
        ("store", "data"),
        ("backend", "memory"),
        ("operation", "write"),
        ("outcome", "ok"),
    ];
    // One per upload, and the join of the Resumable.js chunk (the memory store has no
    // native concatenation, so the engine streams it).
    assert_eq!(
        sample(
            &text,
            "chunkd_store_operation_duration_seconds_count",
            &writes
        ),
        6.0
    );
    let durations = [("protocol", "tus"), ("method", "GET")];
    assert_eq!(
        sample(&text, "chunkd_request_duration_seconds_count", &durations),
        1.0
    );
}

type AccessLine = BTreeMap<String, String>;

thread_local! {
    /// The `chunkd::access` lines of this thread, while a test collects them.
    static ACCESS_LINES: std::cell::RefCell<Option<Vec<AccessLine>>> =
        const { std::cell::RefCell::new(None) };
}

/// Records `chunkd::access` events into the emitting thread's [`ACCESS_LINES`]. It is
/// the process's global subscriber: a scoped one (`with_default`) races with tests on
/// other threads over the callsite's cached interest and can miss every event.
struct AccessLog;

struct Fields<'a>(&'a mut AccessLine);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AccessLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "chunkd::access" {
            ACCESS_LINES.with_borrow_mut(|lines| {
                if let Some(lines) = lines {
                    let mut fields = BTreeMap::new();
                    event.record(&mut Fields(&mut fields));
                    lines.push(fields);
                }
            });
        }
    }
}

/// Runs `work` on this thread; the access-log lines it caused.
fn access_lines(work: impl FnOnce()) -> Vec<AccessLine> {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(AccessLog))
            .expect("no other test installs a global subscriber");
    });
    ACCESS_LINES.set(Some(Vec::new()));
    work();
    ACCESS_LINES.take().unwrap_or_default()
}

#[test]
fn the_access_log_tells_each_request_with_its_upload_and_never_the_query() {
    let mut location = String::new();
    let lines = access_lines(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let app = every_front_end(&engine());
            let tus = ("tus-resumable", "1.0.0");
            let created = call(&app, "POST", "/files/", &[tus, ("upload-length", "4")], "").await;
            location = created.location_path();
            let patch = call(
                &app,
                "PATCH",
                &format!("{location}?access_token=secret"),
                &[
                    tus,
                    ("upload-offset", "0"),
                    ("content-type", "application/offset+octet-stream"),
                ],
                "data",
            )
            .await;
            assert_eq!(patch.status, 204);
            let download = call(&app, "GET", &location, &[], "").await;
            assert_eq!(&download.body[..], b"data");
        });
    });
    let id = location.rsplit('/').next().unwrap();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let field = |line: usize, name: &str| lines[line].get(name).cloned().unwrap_or_default();
    for (line, method, status) in [(0, "POST", "201"), (1, "PATCH", "204"), (2, "GET", "200")] {
        assert_eq!(field(line, "method"), method);
        assert_eq!(field(line, "status"), status);
        assert_eq!(field(line, "protocol"), "tus");
        assert_eq!(field(line, "upload.id"), id, "{line}");
        assert_eq!(field(line, "identity"), "anonymous");
        assert_eq!(field(line, "complete"), "true");
    }
    assert_eq!(field(1, "path"), location);
    assert_eq!(field(1, "bytes_in"), "4");
    assert_eq!(field(2, "bytes_out"), "4");
    assert!(!format!("{lines:?}").contains("secret"), "{lines:#?}");
}
