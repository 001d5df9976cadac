//! Wire tests: the drf and django flows, one-shot uploads, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::{Limits, Uploads};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::{Config, router};

const BOUNDARY: &str = "XyZ";

fn app() -> Router {
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .limits(Limits {
            max_size: Some(1000),
            ..Limits::default()
        })
        .build();
    router(uploads, Config::default())
}

/// A multipart body: text fields, then a file part named `file`.
fn form(fields: &[(&str, &str)], file: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in fields {
        out.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some(data) = file {
        out.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n")
                .as_bytes(),
        );
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    range: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value, Option<String>) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "example.com")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        );
    if let Some(r) = range {
        req = req.header("content-range", r);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let range = res
        .headers()
        .get("range")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json, range)
}

fn md5_hex(data: &[u8]) -> String {
    let mut h = chunkd_core::ChecksumAlgorithm::Md5.hasher();
    h.update(data);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

const DATA: &[u8] = b"hello chunked world!";

/// (name, method, uri, Content-Range, body, expected status)
type Case<'a> = (&'a str, &'a str, String, Option<&'a str>, Vec<u8>, u16);

#[tokio::test]
async fn drf_flow_put_put_then_complete_with_md5() {
    let app = app();
    let (status, first, range) = send(
        &app,
        "PUT",
        "/chunked/",
        Some("bytes 0-9/20"),
        form(&[("filename", "a.txt")], Some(&DATA[..10])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["offset"].as_u64(), range.as_deref()),
        (Some(10), Some("0-9"))
    );
    assert!(first["expires"].as_str().unwrap().ends_with('Z'));
    let url = first["url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://example.com")
        .unwrap()
        .to_owned();
    let (status, second, _) = send(
        &app,
        "PUT",
        &url,
        Some("bytes 10-19/20"),
        form(&[], Some(&DATA[10..])),
    )
    .await;
    assert_eq!(
        (status, second["offset"].as_u64()),
        (StatusCode::OK, Some(20))
    );
    let (status, wrong, _) = send(
        &app,
        "POST",
        &url,
        None,
        form(&[("md5", &md5_hex(b"nope"))], None),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}");
    let (status, done, _) = send(
        &app,
        "POST",
        &url,
        None,
        form(&[("md5", &md5_hex(DATA))], None),
    )
    .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (StatusCode::OK, Some("complete"))
    );
    let (status, got, _) = send(&app, "GET", &url, None, vec![]).await;
    assert_eq!((status, got["offset"].as_u64()), (StatusCode::OK, Some(20)));
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri(format!("{url}/content"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        &res.into_body().collect().await.unwrap().to_bytes()[..],
        DATA
    );
}

#[tokio::test]
async fn django_flow_posts_with_upload_id_then_completes() {
    let app = app();
    let (_, first, _) = send(
        &app,
        "POST",
        "/chunked/",
        Some("bytes 0-4/20"),
        form(&[], Some(&DATA[..5])),
    )
    .await;
    let id = first["upload_id"].as_str().unwrap().to_owned();
    // An offset that is not where the upload stands: 400 telling the right one.
    let (status, mismatch, _) = send(
        &app,
        "POST",
        "/chunked/",
        Some("bytes 6-19/20"),
        form(&[("upload_id", &id)], Some(&DATA[6..])),
    )
    .await;
    assert_eq!(
        (status, mismatch["offset"].as_u64()),
        (StatusCode::BAD_REQUEST, Some(5))
    );
    let (status, _, _) = send(
        &app,
        "POST",
        "/chunked/",
        Some("bytes 5-19/20"),
        form(&[("upload_id", &id)], Some(&DATA[5..])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, done, _) = send(
        &app,
        "POST",
        "/chunked/complete",
        None,
        form(&[("upload_id", &id), ("md5", &md5_hex(DATA))], None),
    )
    .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (StatusCode::OK, Some("complete"))
    );
    let (status, again, _) = send(
        &app,
        "POST",
        "/chunked/",
        Some("bytes 0-4/20"),
        form(&[("upload_id", &id)], Some(&DATA[..5])),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{again}");
}

#[tokio::test]
async fn one_shot_upload_with_md5() {
    let app = app();
    let (status, ok, _) = send(
        &app,
        "POST",
        "/chunked/",
        None,
        form(&[("md5", &md5_hex(DATA))], Some(DATA)),
    )
    .await;
    assert_eq!(
        (status, ok["status"].as_str(), ok["offset"].as_u64()),
        (StatusCode::OK, Some("complete"), Some(20))
    );
    let (status, _, _) = send(
        &app,
        "POST",
        "/chunked/",
        None,
        form(&[("md5", &md5_hex(b"x"))], Some(DATA)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A whole file whose digest does not match is not kept: 400, and the upload is gone.
#[tokio::test]
async fn a_one_shot_upload_with_a_wrong_md5_is_not_kept() {
    let uploads =
        Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build();
    let app = router(uploads.clone(), Config::default());
    let mut events = uploads.events();
    let (status, body, _) = send(
        &app,
        "POST",
        "/chunked/",
        None,
        form(&[("md5", &md5_hex(b"other"))], Some(DATA)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let mut finished = None;
    // Bounded: the request is over, so every event it caused is already queued.
    while let Ok(event) = events.try_recv() {
        match event {
            chunkd_core::Event::Finished(info) => finished = Some(info.id),
            chunkd_core::Event::Terminated(info) => assert_eq!(Some(&info.id), finished.as_ref()),
            _ => {}
        }
    }
    let id = finished.expect("the file was stored, then checked");
    let caller = uploads.for_owner(chunkd_core::Owner::anonymous());
    assert!(matches!(
        caller.info(&id).await,
        Err(chunkd_core::Error::NotFound(_))
    ));
}

/// drf finishes a file with its md5 completion: the application hears of the file then,
/// once it is verified, not when the last chunk arrives.
#[tokio::test]
async fn drf_files_are_forwarded_when_completed_not_at_the_last_chunk() {
    use crate::forward::Completed;
    let app = app();
    let put = |uri: String, range: &'static str, data: &'static [u8]| {
        let req = Request::builder()
            .method("PUT")
            .uri(uri)
            .header("host", "example.com")
            .header("content-range", range)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(form(&[], Some(data))))
            .unwrap();
        app.clone().oneshot(req)
    };
    let first = put("/chunked/".into(), "bytes 0-9/20", &DATA[..10])
        .await
        .unwrap();
    assert!(first.extensions().get::<Completed>().is_none());
    let body = first.into_body().collect().await.unwrap().to_bytes();
    let url = serde_json::from_slice::<Value>(&body).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = url.strip_prefix("http://example.com").unwrap().to_owned();
    let last = put(path.clone(), "bytes 10-19/20", &DATA[10..])
        .await
        .unwrap();
    assert_eq!(last.status(), StatusCode::OK);
    assert!(
        last.extensions().get::<Completed>().is_none(),
        "not verified yet"
    );
    let complete = Request::builder()
        .method("POST")
        .uri(&path)
        .header("host", "example.com")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(form(&[("md5", &md5_hex(DATA))], None)))
        .unwrap();
    let done = app.clone().oneshot(complete).await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let told = done
        .extensions()
        .get::<Completed>()
        .expect("told once verified");
    assert_eq!(told.files.len(), 1);
    assert_eq!(told.files[0].size, 20);
}

/// A download answers as tus's does (one responder): ranges, a safe attachment name.
#[tokio::test]
async fn content_is_served_whole_or_by_range() {
    let app = app();
    let (status, ok, _) = send(&app, "POST", "/chunked/", None, form(&[], Some(DATA))).await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    let content = format!("/chunked/{}/content", ok["id"].as_str().unwrap());
    let get = |range: Option<&'static str>| {
        let mut req = Request::builder().uri(content.clone());
        if let Some(r) = range {
            req = req.header("range", r);
        }
        app.clone().oneshot(req.body(Body::empty()).unwrap())
    };
    let whole = get(None).await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(
        whole.headers()["content-disposition"],
        "attachment; filename=\"a.txt\"; filename*=UTF-8''a.txt"
    );
    assert_eq!(
        &whole.into_body().collect().await.unwrap().to_bytes()[..],
        DATA
    );
    let part = get(Some("bytes=6-12")).await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], "bytes 6-12/20");
    assert_eq!(
        &part.into_body().collect().await.unwrap().to_bytes()[..],
        &DATA[6..13]
    );
    let beyond = get(Some("bytes=20-")).await.unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.headers()["content-range"], "bytes */20");
    let body = beyond.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["detail"].is_string(), "{body}");
}

#[tokio::test]
async fn bad_requests_get_a_clear_4xx() {
    let app = app();
    let (_, first, _) = send(
        &app,
        "PUT",
        "/chunked/",
        Some("bytes 0-4/20"),
        form(&[], Some(&DATA[..5])),
    )
    .await;
    let url = first["url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://example.com")
        .unwrap()
        .to_owned();
    let cases: Vec<Case> = vec![
        (
            "no file part",
            "PUT",
            "/chunked/".into(),
            Some("bytes 0-4/20"),
            form(&[("x", "y")], None),
            400,
        ),
        (
            "malformed range",
            "PUT",
            "/chunked/".into(),
            Some("bytes 4-0/20"),
            form(&[], Some(b"abcde")),
            400,
        ),
        (
            "range past total",
            "PUT",
            "/chunked/".into(),
            Some("bytes 0-20/20"),
            form(&[], Some(b"abcde")),
            400,
        ),
        (
            "first chunk not at 0",
            "PUT",
            "/chunked/".into(),
            Some("bytes 5-9/20"),
            form(&[], Some(b"abcde")),
            400,
        ),
        (
            "over the maximum",
            "PUT",
            "/chunked/".into(),
            Some("bytes 0-4/5000"),
            form(&[], Some(b"abcde")),
            413,
        ),
        (
            "chunk shorter than its range",
            "PUT",
            url.clone(),
            Some("bytes 5-9/20"),
            form(&[], Some(b"ab")),
            400,
        ),
        (
            "chunk longer than its range",
            "PUT",
            url.clone(),
            Some("bytes 7-9/20"),
            form(&[], Some(b"abcdef")),
            400,
        ),
        (
            "overlap",
            "PUT",
            url.clone(),
            Some("bytes 0-9/20"),
            form(&[], Some(&DATA[..10])),
            400,
        ),
        (
            "hole",
            "PUT",
            url.clone(),
            Some("bytes 15-19/20"),
            form(&[], Some(&DATA[15..])),
            400,
        ),
        (
            "other total",
            "PUT",
            url.clone(),
            Some("bytes 9-9/21"),
            form(&[], Some(b"x")),
            400,
        ),
        (
            "continue without range",
            "PUT",
            url.clone(),
            None,
            form(&[], Some(b"x")),
            400,
        ),
        (
            "unknown id",
            "PUT",
            "/chunked/0123456789abcdef0123456789abcdef".into(),
            Some("bytes 0-0/1"),
            form(&[], Some(b"x")),
            404,
        ),
        (
            "path in id",
            "GET",
            "/chunked/..%2F..%2Fetc".into(),
            None,
            vec![],
            404,
        ),
        (
            "complete without md5",
            "POST",
            "/chunked/complete".into(),
            None,
            form(&[("upload_id", "abc")], None),
            400,
        ),
    ];
    for (name, method, uri, range, body, status) in cases {
        let (got, json, _) = send(&app, method, &uri, range, body).await;
        assert_eq!(got.as_u16(), status, "{name}: {json}");
    }
}
