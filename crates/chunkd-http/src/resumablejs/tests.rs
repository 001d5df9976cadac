//! Wire tests on the router: test GET answers, chunk rules, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use chunkd_core::Uploads;
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::testing::collect;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{Config, router};

fn app() -> (Router, Uploads) {
    let uploads =
        Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build();
    (router(uploads.clone(), Config::default()), uploads)
}

/// Query for chunk `n` of a 25-byte file cut into 10-byte chunks (the last holds 15).
fn query(n: u64, current: u64, extra: &str) -> String {
    format!(
        "resumableChunkNumber={n}&resumableChunkSize=10&resumableCurrentChunkSize={current}\
         &resumableTotalSize=25&resumableTotalChunks=2&resumableIdentifier=25-file\
         &resumableFilename=file.bin&resumableType=&resumableRelativePath=file.bin{extra}"
    )
}

async fn send(app: &Router, method: &str, uri: &str, body: &[u8]) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/octet-stream")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

const DATA: &[u8; 25] = b"0123456789abcdefghijklmno";

#[tokio::test]
async fn chunks_in_any_order_with_duplicates_assemble_once() {
    let (app, uploads) = app();
    let test = |n, cur| format!("/resumable?{}", query(n, cur, ""));
    assert_eq!(
        send(&app, "GET", &test(2, 15), b"").await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = send(&app, "POST", &test(2, 15), &DATA[10..]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"complete\":false"), "{body}");
    assert_eq!(
        send(&app, "GET", &test(2, 15), b"").await.0,
        StatusCode::OK,
        "have it"
    );
    // A duplicate of chunk 2 is harmless.
    assert_eq!(
        send(&app, "POST", &test(2, 15), &DATA[10..]).await.0,
        StatusCode::OK
    );
    let (status, body) = send(&app, "POST", &test(1, 10), &DATA[..10]).await;
    assert_eq!(status, StatusCode::OK);
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["complete"], true);
    let id = reply["id"].as_str().unwrap().parse().unwrap();
    let (_, stream) = uploads
        .for_owner(chunkd_core::Owner::anonymous())
        .read(&id, None)
        .await
        .unwrap();
    assert_eq!(collect(stream).await, DATA);
    // After assembly every chunk reads as present, and a late duplicate changes nothing.
    assert_eq!(send(&app, "GET", &test(1, 10), b"").await.0, StatusCode::OK);
    let (status, body) = send(&app, "POST", &test(1, 10), &DATA[..10]).await;
    assert_eq!(
        (status, body.contains("\"complete\":true")),
        (StatusCode::OK, true)
    );
}

#[tokio::test]
async fn flow_test_get_never_answers_404() {
    let (app, _) = app();
    let q = "flowChunkNumber=1&flowChunkSize=10&flowCurrentChunkSize=10&flowTotalSize=20\
             &flowTotalChunks=2&flowIdentifier=20-x&flowFilename=x&flowRelativePath=x";
    assert_eq!(
        send(&app, "GET", &format!("/flow?{q}"), b"").await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn bad_chunks_get_a_clear_4xx_and_store_nothing() {
    let (app, uploads) = app();
    let cases: &[(&str, String, &[u8], u16)] = &[
        ("chunk beyond total", query(3, 10, ""), b"0123456789", 400),
        ("chunk zero", query(0, 10, ""), b"0123456789", 400),
        (
            "sizes that do not add up",
            query(1, 9, ""),
            b"012345678",
            400,
        ),
        (
            "body larger than declared",
            query(1, 10, ""),
            b"0123456789X",
            413,
        ),
        (
            "body shorter than declared",
            query(1, 10, ""),
            b"01234",
            400,
        ),
        (
            "identifier with NUL",
            query(1, 10, "&resumableIdentifier=a%00b"),
            b"0123456789",
            400,
        ),
        (
            "filename with path",
            query(1, 10, "&resumableFilename=..%2F..%2Fetc%2Fpasswd"),
            b"0123456789",
            400,
        ),
        (
            "relative path escaping",
            query(1, 10, "&resumableRelativePath=..%2Fx"),
            b"0123456789",
            400,
        ),
        (
            "huge identifier",
            query(
                1,
                10,
                &format!("&resumableIdentifier={}", "x".repeat(10_000)),
            ),
            b"0123456789",
            400,
        ),
        (
            "missing parameter",
            "resumableChunkNumber=1".to_owned(),
            b"0123456789",
            400,
        ),
    ];
    for (name, q, body, status) in cases {
        let (got, text) = send(&app, "POST", &format!("/resumable?{q}"), body).await;
        assert_eq!(got.as_u16(), *status, "{name}: {text}");
        assert!(text.contains("error"), "{name}: {text}");
    }
    // Refused requests stored nothing; the short body kept its 5 bytes as an interrupted
    // chunk, which the full retry resumes after. The file comes out exact.
    let (status, _) = send(
        &app,
        "POST",
        &format!("/resumable?{}", query(1, 10, "")),
        &DATA[..10],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = send(
        &app,
        "POST",
        &format!("/resumable?{}", query(2, 15, "")),
        &DATA[10..],
    )
    .await;
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = reply["id"].as_str().unwrap().parse().unwrap();
    let (_, stream) = uploads
        .for_owner(chunkd_core::Owner::anonymous())
        .read(&id, None)
        .await
        .unwrap();
    assert_eq!(collect(stream).await, DATA);
}

#[tokio::test]
async fn status_and_cleanup_as_python_resumable_offers_them() {
    let (app, _) = app();
    let file = "resumableChunkSize=10&resumableTotalSize=25&resumableTotalChunks=2\
                &resumableIdentifier=25-file&resumableFilename=file.bin";
    send(
        &app,
        "POST",
        &format!("/resumable?{}", query(2, 15, "")),
        &DATA[10..],
    )
    .await;
    let (status, body) = send(&app, "GET", &format!("/resumable/status?{file}"), b"").await;
    assert_eq!(status, StatusCode::OK);
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (reply["complete"].as_bool(), reply["chunks"].clone()),
        (Some(false), serde_json::json!([2]))
    );
    // resumable.py sends its test GET parameters form-encoded in the body.
    let req = Request::builder()
        .method("GET")
        .uri("/resumable")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(query(2, 15, "")))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
    let (status, body) = send(&app, "DELETE", &format!("/resumable?{file}"), b"").await;
    assert_eq!(
        (status, body.contains("\"removed\":1")),
        (StatusCode::OK, true)
    );
    let (_, body) = send(&app, "GET", &format!("/resumable/status?{file}"), b"").await;
    assert!(body.contains("\"chunks\":[]"), "{body}");
}

/// A file of more chunks than `max_chunks` is refused before any chunk is looked at, on
/// every request that names it: a client-chosen count must not set the server's work
/// (10^18 one-byte chunks used to loop one core for as long as it took).
#[tokio::test]
async fn a_file_of_too_many_chunks_is_refused_up_front() {
    let uploads =
        Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build();
    let config = Config {
        max_chunks: 100,
        ..Config::default()
    };
    let app = router(uploads, config);
    let huge = "resumableChunkSize=1&resumableTotalSize=1000000000000000000\
                &resumableTotalChunks=1000000000000000000\
                &resumableIdentifier=x&resumableFilename=x.bin";
    let chunk = format!("{huge}&resumableChunkNumber=1&resumableCurrentChunkSize=1");
    let over = "resumableChunkSize=1&resumableTotalSize=101&resumableTotalChunks=101\
                &resumableIdentifier=y&resumableFilename=y.bin";
    let cases = [
        ("GET", format!("/resumable/status?{huge}")),
        ("DELETE", format!("/resumable?{huge}")),
        ("GET", format!("/resumable?{chunk}")),
        ("POST", format!("/resumable?{chunk}")),
        ("GET", format!("/resumable/status?{over}")),
    ];
    for (method, uri) in cases {
        let (status, body) = send(&app, method, &uri, b"x").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {body}");
        assert!(
            body.contains("at most 100 chunks"),
            "{method} {uri}: {body}"
        );
    }
    let fits = "resumableChunkSize=1&resumableTotalSize=100&resumableTotalChunks=100\
                &resumableIdentifier=z&resumableFilename=z.bin";
    let (status, _) = send(&app, "GET", &format!("/resumable/status?{fits}"), b"").await;
    assert_eq!(status, StatusCode::OK);
}
