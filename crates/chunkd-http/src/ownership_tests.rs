//! The shared layer, tested once per protocol: another identity gets that protocol's
//! refusal and never interrupts the owner's running request; a failed identification
//! is refused in each protocol's own terms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::{Event, Limits, Owner, UploadId, Uploads};
use futures::StreamExt;
use futures::channel::mpsc;
use http::{HeaderName, Request, StatusCode};
use tower::ServiceExt;

use crate::identity::{self, Source};
use crate::test_support::{Reply, call};

pub(crate) const SIZE: usize = 20_000;
/// What the owner's request sends before it stalls: past the first checkpoint.
pub(crate) const FIRST: usize = 6_000;

pub(crate) fn data() -> Vec<u8> {
    (0..SIZE).map(|i| (i * 7 % 251) as u8).collect()
}

/// Every front end but browser-direct (which needs a direct store) on one engine, with
/// identities from `x-user`.
fn app() -> (Router, Uploads) {
    app_with(identity::DEFAULT_MAX_UPLOADS_PER_CLIENT)
}

/// [`app`] with `max_uploads_per_client` running upload requests per client.
pub(crate) fn app_with(max_uploads_per_client: usize) -> (Router, Uploads) {
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .limits(Limits {
            checkpoint_bytes: 4096,
            ..Limits::default()
        })
        .build();
    let router = crate::test_support::every_front_end(&uploads);
    let config = identity::Config {
        source: Source::TrustedHeader(HeaderName::from_static("x-user")),
        required: false,
        max_uploads_per_client,
    };
    (identity::identify(router, config), uploads)
}

pub(crate) const ALICE: (&str, &str) = ("x-user", "alice");
pub(crate) const BOB: (&str, &str) = ("x-user", "bob");

/// A request of Alice's whose body sends [`FIRST`] bytes, then waits until the test
/// releases the rest. Returns the sender of the rest and the running request.
pub(crate) fn stalled(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> (
    mpsc::UnboundedSender<std::io::Result<Bytes>>,
    tokio::task::JoinHandle<StatusCode>,
) {
    let (tx, rx) = mpsc::unbounded::<std::io::Result<Bytes>>();
    tx.unbounded_send(Ok(Bytes::from(data()[..FIRST].to_vec())))
        .unwrap();
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "example.com")
        .header(ALICE.0, ALICE.1);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Body::from_stream(rx)).unwrap();
    let app = app.clone();
    let running = tokio::spawn(async move { app.oneshot(req).await.unwrap().status() });
    (tx, running)
}

/// Waits until the engine has committed bytes of `id`: the owner's request is running.
pub(crate) async fn committed(events: &mut tokio::sync::broadcast::Receiver<Event>, id: &UploadId) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Progress(seen)) = events.recv().await
                && &seen.id == id
            {
                return;
            }
        }
    })
    .await
    .expect("the owner's request never committed a byte");
}

/// Releases the rest of the body and checks the owner's request ran to its end: had a
/// foreign request interrupted it, it would have stopped at the stall.
pub(crate) async fn finishes_untouched(
    uploads: &Uploads,
    id: &UploadId,
    tx: mpsc::UnboundedSender<std::io::Result<Bytes>>,
    running: tokio::task::JoinHandle<StatusCode>,
) -> StatusCode {
    tx.unbounded_send(Ok(Bytes::from(data()[FIRST..].to_vec())))
        .unwrap();
    drop(tx);
    let status = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the owner's request never ended")
        .unwrap();
    let alice = uploads.for_owner(Owner::named("alice"));
    let (info, mut stream) = alice.read(id, None).await.expect("finished");
    let mut stored = Vec::new();
    while let Some(chunk) = stream.next().await {
        stored.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(info.offset, SIZE as u64);
    assert!(stored == data(), "stored bytes differ from the sent ones");
    status
}

pub(crate) fn id_in(path: &str) -> UploadId {
    path.rsplit('/').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn tus_foreign_requests_are_not_found_and_interrupt_nothing() {
    let (app, uploads) = app();
    let mut events = uploads.events();
    let size = SIZE.to_string();
    let created = call(
        &app,
        "POST",
        "/files/",
        &[ALICE, ("tus-resumable", "1.0.0"), ("upload-length", &size)],
        "",
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let path = created.location_path();
    let id = id_in(&path);
    let tus = [
        ("tus-resumable", "1.0.0"),
        ("content-type", "application/offset+octet-stream"),
        ("upload-offset", "0"),
    ];
    let (tx, running) = stalled(&app, "PATCH", &path, &tus);
    committed(&mut events, &id).await;
    for (method, body) in [("HEAD", ""), ("PATCH", "x"), ("GET", ""), ("DELETE", "")] {
        let r = call(&app, method, &path, &[BOB, tus[0], tus[1], tus[2]], body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(r.header("tus-resumable"), Some("1.0.0"), "{method}");
    }
    let status = finishes_untouched(&uploads, &id, tx, running).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn ietf_foreign_requests_are_not_found_and_interrupt_nothing() {
    let (app, uploads) = app();
    let mut events = uploads.events();
    let created = call(
        &app,
        "POST",
        "/uploads",
        &[ALICE, ("upload-complete", "?0"), ("content-length", "0")],
        "",
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let path = created.location_path();
    let id = id_in(&path);
    let append = [
        ("upload-offset", "0"),
        ("upload-complete", "?1"),
        ("content-type", "application/partial-upload"),
    ];
    let (tx, running) = stalled(&app, "PATCH", &path, &append);
    committed(&mut events, &id).await;
    for (method, body) in [("HEAD", ""), ("PATCH", "x"), ("DELETE", "")] {
        let r = call(
            &app,
            method,
            &path,
            &[BOB, append[0], append[1], append[2]],
            body,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
    let status = finishes_untouched(&uploads, &id, tx, running).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn content_range_foreign_requests_are_not_found_and_interrupt_nothing() {
    let (app, uploads) = app();
    let first = format!("bytes 0-9/{SIZE}");
    let created = call(
        &app,
        "PUT",
        "/chunked",
        &[ALICE, ("content-range", &first)],
        data()[..10].to_vec(),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK);
    let reply: serde_json::Value = serde_json::from_slice(&created.body).unwrap();
    let id: UploadId = reply["id"].as_str().unwrap().parse().unwrap();
    let path = format!("/chunked/{id}");
    // Listening from here on: the first chunk's commit is not the running request's.
    let mut events = uploads.events();
    // The rest, as one more chunk; its body starts again at byte 10.
    let rest = format!("bytes 10-{}/{SIZE}", SIZE - 1);
    let (tx, rx) = mpsc::unbounded::<std::io::Result<Bytes>>();
    tx.unbounded_send(Ok(Bytes::from(data()[10..FIRST].to_vec())))
        .unwrap();
    let req = Request::put(&path)
        .header("host", "example.com")
        .header(ALICE.0, ALICE.1)
        .header("content-range", &rest)
        .body(Body::from_stream(rx))
        .unwrap();
    let running = {
        let app = app.clone();
        tokio::spawn(async move { app.oneshot(req).await.unwrap().status() })
    };
    committed(&mut events, &id).await;
    for (method, uri) in [
        ("GET", path.clone()),
        ("PUT", path.clone()),
        ("DELETE", path.clone()),
        ("GET", format!("{path}/content")),
    ] {
        let r = call(&app, method, &uri, &[BOB, ("content-range", &rest)], "x").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(body_json(&r)["detail"], "Not found.");
    }
    let status = finishes_untouched(&uploads, &id, tx, running).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn resumable_chunk_sets_are_per_identity() {
    let (app, uploads) = app();
    let mut events = uploads.events();
    let query = |n: u64| {
        format!(
            "/resumable?resumableChunkNumber={n}&resumableChunkSize={SIZE}\
             &resumableCurrentChunkSize={SIZE}&resumableTotalSize={SIZE}\
             &resumableTotalChunks=1&resumableIdentifier={SIZE}-photo.jpg\
             &resumableFilename=photo.jpg"
        )
    };
    let (tx, running) = stalled(
        &app,
        "POST",
        &query(1),
        &[("content-type", "application/octet-stream")],
    );
    let Ok(Event::Created(chunk)) = events.recv().await else {
        panic!("no chunk created");
    };
    committed(&mut events, &chunk.id).await;
    // Bob, guessing the same identifier, sees nothing of Alice's file.
    let test = call(&app, "GET", &query(1), &[BOB], "").await;
    assert_eq!(test.status, StatusCode::NO_CONTENT, "bob must send his own");
    let status_uri = query(1).replace("/resumable?", "/resumable/status?");
    let status = call(&app, "GET", &status_uri, &[BOB], "").await;
    assert_eq!(body_json(&status)["chunks"], serde_json::json!([]));
    let cleanup = call(&app, "DELETE", &query(1), &[BOB], "").await;
    assert_eq!(body_json(&cleanup)["removed"], 0);
    tx.unbounded_send(Ok(Bytes::from(data()[FIRST..].to_vec())))
        .unwrap();
    drop(tx);
    let status = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK, "alice's chunk ran to its end");
    // Bob's test for the finished file still says "send it".
    let test = call(&app, "GET", &query(1), &[BOB], "").await;
    assert_eq!(test.status, StatusCode::NO_CONTENT);
    let alice = call(&app, "GET", &query(1), &[ALICE], "").await;
    assert_eq!(alice.status, StatusCode::OK);
}

fn body_json(reply: &Reply) -> serde_json::Value {
    serde_json::from_slice(&reply.body).unwrap()
}

/// A `x-user` value the identity layer refuses (longer than any identity).
fn invalid() -> String {
    "x".repeat(300)
}

#[tokio::test]
async fn a_failed_identification_is_refused_in_each_protocols_terms() {
    let (app, _) = app();
    let bad = invalid();
    let who = [("x-user", bad.as_str())];
    let tus = call(
        &app,
        "POST",
        "/files/",
        &[who[0], ("tus-resumable", "1.0.0"), ("upload-length", "3")],
        "",
    )
    .await;
    assert_eq!(tus.status, StatusCode::FORBIDDEN);
    assert_eq!(tus.header("tus-resumable"), Some("1.0.0"));
    assert!(String::from_utf8_lossy(&tus.body).starts_with("ERR_UNAUTHORIZED: "));

    let ietf = call(
        &app,
        "POST",
        "/uploads",
        &[who[0], ("upload-complete", "?1")],
        "abc",
    )
    .await;
    assert_eq!(ietf.status, StatusCode::FORBIDDEN);
    assert_eq!(
        ietf.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(body_json(&ietf)["status"], 403);

    let chunked = call(
        &app,
        "PUT",
        "/chunked",
        &[who[0], ("content-range", "bytes 0-2/3")],
        "abc",
    )
    .await;
    assert_eq!(chunked.status, StatusCode::FORBIDDEN);
    assert!(body_json(&chunked)["detail"].is_string());

    let resumable = call(&app, "GET", "/resumable?resumableChunkNumber=1", &who, "").await;
    assert_eq!(resumable.status, StatusCode::FORBIDDEN);
    assert!(body_json(&resumable)["error"].is_string());

    let form = call(
        &app,
        "POST",
        "/upload",
        &[who[0], ("content-type", "multipart/form-data; boundary=x")],
        "--x--\r\n",
    )
    .await;
    assert_eq!(form.status, StatusCode::FORBIDDEN);
    assert!(body_json(&form)["error"].is_string());

    for reply in [&ietf, &chunked, &resumable, &form] {
        assert_eq!(reply.header("tus-resumable"), None, "only tus speaks tus");
    }
}

#[tokio::test]
async fn anonymous_chunk_sets_are_per_uploader() {
    let (app, _) = app();
    // A 25-byte file in chunks of 10 (the last holds 15), as Resumable.js names it.
    let chunk = |n: u64, current: u64| {
        format!(
            "/resumable?resumableChunkNumber={n}&resumableChunkSize=10\
             &resumableCurrentChunkSize={current}&resumableTotalSize=25\
             &resumableTotalChunks=2&resumableIdentifier=25-file.bin\
             &resumableFilename=file.bin"
        )
    };
    // A first request without the cookie is given one.
    let first = call(&app, "GET", &chunk(1, 10), &[], "").await;
    let set = first.header("set-cookie").expect("an uploader cookie");
    let token = set
        .strip_prefix("chunkd-uploader=")
        .and_then(|rest| rest.split(';').next())
        .unwrap();
    assert_eq!(token.len(), 32);
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"));

    let alice = ("cookie", "chunkd-uploader=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    let mallory = ("cookie", "chunkd-uploader=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    let octets = ("content-type", "application/octet-stream");
    let stored = call(&app, "POST", &chunk(1, 10), &[alice, octets], "0123456789").await;
    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(
        stored.header("set-cookie"),
        None,
        "a known uploader keeps its cookie"
    );
    // Mallory guesses the identifier: Alice's chunk is not hers to see or seed.
    let test = call(&app, "GET", &chunk(1, 10), &[mallory], "").await;
    assert_eq!(test.status, StatusCode::NO_CONTENT);
    let seeded = call(
        &app,
        "POST",
        &chunk(2, 15),
        &[mallory, octets],
        "XXXXXXXXXXXXXXX",
    )
    .await;
    assert_eq!(body_json(&seeded)["complete"], false);
    // Alice's file is assembled from her chunks only; Mallory never learns its id.
    let done = call(
        &app,
        "POST",
        &chunk(2, 15),
        &[alice, octets],
        "abcdefghijklmno",
    )
    .await;
    let file = body_json(&done);
    assert_eq!(file["complete"], true);
    let downloaded = call(
        &app,
        "GET",
        &format!("/files/{}", file["id"].as_str().unwrap()),
        &[],
        "",
    )
    .await;
    assert_eq!(&downloaded.body[..], b"0123456789abcdefghijklmno");
    let status = call(
        &app,
        "GET",
        &chunk(1, 10).replace("/resumable?", "/resumable/status?"),
        &[mallory],
        "",
    )
    .await;
    assert_eq!(body_json(&status)["complete"], false);
    assert_eq!(body_json(&status)["chunks"], serde_json::json!([2]));
}
