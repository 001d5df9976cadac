//! Wire tests: files stored and described, progress observed mid-body, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use chunkd_core::Uploads;
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::testing::collect;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::{Config, router};

fn app() -> (Router, Uploads) {
    let uploads =
        Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build();
    (router(uploads.clone(), Config::default()), uploads)
}

const HEAD: &str = "--B\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nholiday\r\n--B\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"C:\\\\pics\\\\sea.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n";
const TAIL: &str = "\r\n--B--\r\n";

async fn json(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn post(uri: &str, body: Body, length: usize) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "multipart/form-data; boundary=B")
        .header("content-length", length)
        .body(body)
        .unwrap()
}

fn poll(id: &str) -> Request<Body> {
    Request::builder()
        .uri(format!("/progress?X-Progress-ID={id}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn stores_files_and_reports_progress_while_the_body_arrives() {
    let (app, uploads) = app();
    let file = vec![7u8; 100_000];
    let total = HEAD.len() + file.len() + TAIL.len();
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
    let body = Body::from_stream(rx);
    let upload = tokio::spawn({
        let app = app.clone();
        async move { json(&app, post("/upload?X-Progress-ID=job-1", body, total)).await }
    });
    assert_eq!(json(&app, poll("job-1")).await.1["state"], "starting");
    tx.unbounded_send(Ok(Bytes::from(HEAD))).unwrap();
    tx.unbounded_send(Ok(Bytes::from(file[..40_000].to_vec())))
        .unwrap();
    // Poll until the server has counted what was sent (bounded; no sleeping).
    let mut seen = Value::Null;
    for _ in 0..10_000 {
        seen = json(&app, poll("job-1")).await.1;
        if seen["received"].as_u64() == Some((HEAD.len() + 40_000) as u64) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(seen["state"], "uploading", "{seen}");
    assert_eq!(seen["size"].as_u64(), Some(total as u64));
    tx.unbounded_send(Ok(Bytes::from(file[40_000..].to_vec())))
        .unwrap();
    tx.unbounded_send(Ok(Bytes::from(TAIL))).unwrap();
    drop(tx);
    let (status, reply) = upload.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{reply}");
    let stored = &reply["files"][0];
    assert_eq!(stored["filename"], "sea.jpg");
    assert_eq!(stored["content_type"], "image/jpeg");
    assert_eq!(stored["size"].as_u64(), Some(100_000));
    assert_eq!(reply["fields"]["title"], "holiday");
    let id = stored["id"].as_str().unwrap().parse().unwrap();
    let (_, data) = uploads
        .for_owner(chunkd_core::Owner::anonymous())
        .read(&id, None)
        .await
        .unwrap();
    assert_eq!(collect(data).await, file);
    let done = json(&app, poll("job-1")).await.1;
    assert_eq!(
        (done["state"].as_str(), done["received"].as_u64()),
        (Some("done"), Some(total as u64))
    );
    let clear = Request::builder()
        .method("DELETE")
        .uri("/progress?X-Progress-ID=job-1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.clone().oneshot(clear).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(json(&app, poll("job-1")).await.1["state"], "starting");
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    let (app, _) = app();
    let whole = format!("{HEAD}abc{TAIL}");
    let cases = [
        (
            "foreign progress id",
            "/upload?X-Progress-ID=..%2Fetc",
            whole.clone(),
            400,
        ),
        (
            "no file",
            "/upload",
            "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--B--\r\n".to_owned(),
            400,
        ),
        (
            "path-only file name",
            "/upload",
            whole.replace("C:\\\\pics\\\\sea.jpg", "../"),
            400,
        ),
        ("truncated form", "/upload", HEAD.to_owned() + "abc", 400),
    ];
    for (name, uri, body, status) in cases {
        let len = body.len();
        let (got, reply) = json(&app, post(uri, Body::from(body), len)).await;
        assert_eq!(got.as_u16(), status, "{name}: {reply}");
    }
    let (got, _) = json(&app, poll("a%20b")).await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn signed_progress_ids_refuse_forged_ones() {
    use crate::signed_ids::Signer;
    let uploads =
        Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build();
    let signer = Signer::new(b"key".to_vec());
    let config = Config {
        signer: Some(signer.clone()),
        ..Config::default()
    };
    let app: Router = router(uploads, config);
    let good = signer.issue(None);
    let body = format!("{HEAD}abc{TAIL}");
    let len = body.len();
    let (status, _) = json(
        &app,
        post(
            &format!("/upload?X-Progress-ID={good}"),
            Body::from(body.clone()),
            len,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let forged = format!("{}-{}", "0".repeat(32), "0".repeat(24));
    let (status, _) = json(
        &app,
        post(
            &format!("/upload?X-Progress-ID={forged}"),
            Body::from(body),
            len,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json(&app, poll(&forged)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(json(&app, poll(&good)).await.1["state"], "done");
}

/// A form is stored whole or not at all: past `max_files` file parts, or when a later
/// part is refused, the files already stored are removed (the client got no id for
/// them, so nobody could ever remove them otherwise).
#[tokio::test]
async fn a_refused_form_keeps_none_of_its_files() {
    let uploads =
        Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build();
    let config = Config {
        max_files: 2,
        ..Config::default()
    };
    let app = router(uploads.clone(), config);
    let part = |name: &str| {
        format!(
            "--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{name}\"\r\n\r\ndata\r\n"
        )
    };
    let cases = [
        (
            "three files, two allowed",
            [part("a"), part("b"), part("c")].concat(),
        ),
        (
            "a bad name after a good file",
            [part("a"), part("..")].concat(),
        ),
    ];
    for (what, parts) in cases {
        let mut events = uploads.events();
        let body = format!("{parts}--B--\r\n");
        let len = body.len();
        let (status, reply) = json(&app, post("/upload", Body::from(body), len)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {reply}");
        let (mut finished, mut removed) = (Vec::new(), Vec::new());
        // Bounded: the request is over, every event it caused is queued.
        while let Ok(event) = events.try_recv() {
            match event {
                chunkd_core::Event::Finished(info) => finished.push(info.id),
                chunkd_core::Event::Terminated(info) => removed.push(info.id),
                _ => {}
            }
        }
        assert!(!finished.is_empty(), "{what}: a file was stored first");
        assert_eq!(finished, removed, "{what}: every stored file is removed");
    }
    let ok = [part("a"), part("b")].concat() + "--B--\r\n";
    let len = ok.len();
    let (status, reply) = json(&app, post("/upload", Body::from(ok), len)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["files"].as_array().map(Vec::len), Some(2));
}

/// A body that never names its boundary is refused once past the preamble bound, not
/// buffered while the parser looks for one: an endless one gets its 400.
#[tokio::test]
async fn an_endless_preamble_is_refused_not_buffered() {
    let (app, _) = app();
    let endless =
        futures::stream::repeat_with(|| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 65536])));
    let req = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("content-type", "multipart/form-data; boundary=B")
        .body(Body::from_stream(endless))
        .unwrap();
    let answered = tokio::time::timeout(std::time::Duration::from_secs(10), json(&app, req)).await;
    let (status, _) = answered.expect("still reading an endless preamble");
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
