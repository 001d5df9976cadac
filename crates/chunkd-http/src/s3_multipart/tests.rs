//! Wire tests: the companion endpoints on the router without a socket, over a memory
//! store that takes parts directly, with the test PUTting parts as the browser does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use chunkd_core::memory::{MemoryState, MemoryStore, PutRefused};
use chunkd_core::testing::{collect, pattern};
use chunkd_core::{Limits, Owner, UploadId, Uploads};
use http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Config, router};
use crate::identity::{self, Source};
use crate::test_support::{Reply, call};

const MIN_PART: usize = 1024;
const MAX: u64 = 64 << 10;
const ALICE: (&str, &str) = ("x-user", "alice");
const BOB: (&str, &str) = ("x-user", "bob");
const JSON: (&str, &str) = ("content-type", "application/json");

struct Site {
    app: Router,
    store: Arc<MemoryStore>,
    uploads: Uploads,
}

fn site() -> Site {
    let store = Arc::new(MemoryStore::with_direct_parts(MIN_PART as u64));
    let uploads = Uploads::builder(store.clone(), Arc::new(MemoryState::new()))
        .limits(Limits {
            max_size: Some(MAX),
            ..Limits::default()
        })
        .build();
    let config = Config {
        download_path: Some("/files".into()),
        ..Config::default()
    };
    let identities = identity::Config {
        source: Source::TrustedHeader(http::HeaderName::from_static("x-user")),
        required: false,
        ..Default::default()
    };
    let app = identity::identify(router(uploads.clone(), config), identities);
    Site {
        app,
        store,
        uploads,
    }
}

fn json_of(r: &Reply) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&r.body)))
}

/// A refusal in the companion's shape: `{"error": "..."}`, and nothing of tus.
fn assert_refused(r: &Reply, status: StatusCode, what: &str) {
    assert_eq!(r.status, status, "{what}: {:?}", r.body);
    let body = json_of(r);
    assert!(body["error"].is_string(), "{what}: {body}");
    assert_eq!(r.header("tus-resumable"), None, "{what}");
}

/// An upload as Uppy starts one: its S3 `uploadId` and chunkd's `key`.
struct Started {
    upload_id: String,
    key: String,
}

impl Started {
    fn uri(&self, tail: &str) -> String {
        let (tail, query) = tail.split_once('?').unwrap_or((tail, ""));
        let sep = if query.is_empty() { "" } else { "&" };
        format!(
            "/s3/multipart/{}{tail}?key={}{sep}{query}",
            self.upload_id, self.key
        )
    }
}

async fn start(site: &Site, user: (&str, &str)) -> Started {
    let body = json!({
        "filename": "photo.jpg",
        "type": "image/jpeg",
        "metadata": {"album": "summer", "filename": "ignored"},
    });
    let r = call(
        &site.app,
        "POST",
        "/s3/multipart",
        &[user, JSON],
        body.to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let body = json_of(&r);
    Started {
        upload_id: body["uploadId"].as_str().unwrap().to_owned(),
        key: body["key"].as_str().unwrap().to_owned(),
    }
}

async fn sign(site: &Site, user: (&str, &str), up: &Started, number: u16) -> String {
    let r = call(
        &site.app,
        "GET",
        &up.uri(&format!("/{number}")),
        &[user],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    json_of(&r)["url"].as_str().unwrap().to_owned()
}

/// Signs and PUTs `chunks` as parts 1, 2, ...; the parts as completion names them.
async fn put_all(site: &Site, user: (&str, &str), up: &Started, chunks: &[Vec<u8>]) -> Value {
    let mut parts = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let number = i as u16 + 1;
        let url = sign(site, user, up, number).await;
        let etag = site.store.put_part(&url, chunk.clone()).expect("put");
        parts.push(json!({"PartNumber": number, "ETag": etag}));
    }
    Value::Array(parts)
}

fn three_parts() -> Vec<Vec<u8>> {
    vec![
        pattern(MIN_PART, 1),
        pattern(MIN_PART + 7, 2),
        pattern(300, 3),
    ]
}

async fn complete(site: &Site, user: (&str, &str), up: &Started, parts: &Value) -> Reply {
    let body = json!({ "parts": parts }).to_string();
    call(&site.app, "POST", &up.uri("/complete"), &[user, JSON], body).await
}

fn sha256(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

#[tokio::test]
async fn create_answers_the_upload_id_and_key() {
    let site = site();
    let up = start(&site, ALICE).await;
    let id: UploadId = up.key.parse().expect("the key is chunkd's upload id");
    let info = site
        .uploads
        .for_owner(Owner::named("alice"))
        .info(&id)
        .await
        .expect("the upload is alice's");
    assert!(info.direct);
    assert_eq!(
        site.uploads.direct_session(&info).as_deref(),
        Some(up.upload_id.as_str())
    );
    assert_eq!(info.metadata.get("filename"), Some(&b"photo.jpg"[..]));
    assert_eq!(info.metadata.get("filetype"), Some(&b"image/jpeg"[..]));
    assert_eq!(info.metadata.get("album"), Some(&b"summer"[..]));
}

#[tokio::test]
async fn signs_one_part_and_a_batch() {
    let site = site();
    let up = start(&site, ALICE).await;
    let r = call(&site.app, "GET", &up.uri("/1"), &[ALICE], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
    let one = json_of(&r);
    let url = one["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("memory://{}/1?expires=", up.key)),
        "{url}"
    );
    assert_eq!(one["expires"], 900);

    let r = call(
        &site.app,
        "GET",
        &up.uri("/batch?partNumbers=1,2,3"),
        &[ALICE],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let urls = json_of(&r)["presignedUrls"].as_object().unwrap().clone();
    assert_eq!(urls.len(), 3);
    for (number, url) in &urls {
        let url = url.as_str().unwrap();
        assert!(url.starts_with(&format!("memory://{}/{number}?", up.key)));
        site.store
            .put_part(url, vec![1u8; 10])
            .expect("each URL takes its part");
    }
}

#[tokio::test]
async fn lists_the_parts_put_to_the_store() {
    let site = site();
    let up = start(&site, ALICE).await;
    let r = call(&site.app, "GET", &up.uri(""), &[ALICE], Body::empty()).await;
    assert_eq!((r.status, json_of(&r)), (StatusCode::OK, json!([])));
    let chunks = three_parts();
    let named = put_all(&site, ALICE, &up, &chunks[..2]).await;
    let r = call(&site.app, "GET", &up.uri(""), &[ALICE], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
    let expected = json!([
        {"PartNumber": 1, "Size": chunks[0].len(), "ETag": named[0]["ETag"]},
        {"PartNumber": 2, "Size": chunks[1].len(), "ETag": named[1]["ETag"]},
    ]);
    assert_eq!(json_of(&r), expected);
}

#[tokio::test]
async fn complete_answers_the_location_and_the_bytes_read_back() {
    let site = site();
    let up = start(&site, ALICE).await;
    let chunks = three_parts();
    let data = chunks.concat();
    let named = put_all(&site, ALICE, &up, &chunks).await;
    let r = complete(&site, ALICE, &up, &named).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let expected = json!({
        "location": format!("http://example.com/files/{}", up.key),
        "key": up.key,
        "id": up.key,
        "size": data.len(),
    });
    assert_eq!(json_of(&r), expected);
    let (_, stream) = site
        .uploads
        .for_owner(Owner::named("alice"))
        .read(&up.key.parse().unwrap(), None)
        .await
        .expect("read");
    assert_eq!(sha256(&collect(stream).await), sha256(&data));
    // Uppy may retry a completion whose answer it lost.
    let again = complete(&site, ALICE, &up, &named).await;
    assert_eq!((again.status, json_of(&again)), (StatusCode::OK, expected));
}

#[tokio::test]
async fn abort_removes_the_upload_and_its_parts() {
    let site = site();
    let up = start(&site, ALICE).await;
    let url = sign(&site, ALICE, &up, 1).await;
    let r = call(&site.app, "DELETE", &up.uri(""), &[ALICE], Body::empty()).await;
    assert_eq!((r.status, json_of(&r)), (StatusCode::OK, json!({})));
    let r = call(&site.app, "GET", &up.uri(""), &[ALICE], Body::empty()).await;
    assert_refused(&r, StatusCode::NOT_FOUND, "listing an aborted upload");
    assert_eq!(
        site.store.put_part(&url, vec![0u8; 10]),
        Err(PutRefused::NoSuchUpload)
    );
}

/// Bad requests on an existing upload: (what, method, path and query, body, status).
#[tokio::test]
async fn bad_input_is_refused_in_the_companion_shape() {
    let site = site();
    let up = start(&site, ALICE).await;
    let chunks = three_parts();
    let named = put_all(&site, ALICE, &up, &chunks).await;
    let mut wrong_etag = named.clone();
    wrong_etag[1]["ETag"] = json!("\"00000000000000000000000000000000\"");
    let gap = json!([named[0], named[2]]);
    let too_many: Vec<String> = (1..=1001).map(|n| n.to_string()).collect();
    let too_many = format!("/batch?partNumbers={}", too_many.join(","));
    let creations = [
        ("invalid JSON", "{".to_owned(), StatusCode::BAD_REQUEST),
        (
            "over the maximum",
            json!({ "size": MAX + 1 }).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (what, body, status) in creations {
        let r = call(&site.app, "POST", "/s3/multipart", &[ALICE, JSON], body).await;
        assert_refused(&r, status, &format!("create: {what}"));
    }
    // Part numbers run from 1 to 10000, at most 1000 of them in a batch.
    let signings = [
        "/0",
        "/10001",
        "/one",
        "/batch?partNumbers=1,0",
        "/batch?partNumbers=10001",
        "/batch?partNumbers=70000",
        "/batch?partNumbers=a,b",
        "/batch?partNumbers=",
        "/batch",
        &too_many,
    ];
    for tail in signings {
        let r = call(&site.app, "GET", &up.uri(tail), &[ALICE], Body::empty()).await;
        let what = &tail[..tail.len().min(40)];
        assert_refused(&r, StatusCode::BAD_REQUEST, &format!("sign {what}"));
    }
    let completions = [
        ("text that is no JSON", "{".to_owned()),
        ("parts that are no list", json!({ "parts": 3 }).to_string()),
        ("no parts", json!({ "parts": [] }).to_string()),
        ("a wrong ETag", json!({ "parts": wrong_etag }).to_string()),
        ("a gap", json!({ "parts": gap }).to_string()),
        (
            "a part number past 65535",
            json!({ "parts": [{"PartNumber": 70000, "ETag": "\"x\""}] }).to_string(),
        ),
    ];
    for (what, body) in completions {
        let r = call(
            &site.app,
            "POST",
            &up.uri("/complete"),
            &[ALICE, JSON],
            body,
        )
        .await;
        assert_refused(&r, StatusCode::BAD_REQUEST, &format!("complete: {what}"));
    }
    for (what, method, uri, body) in every_request(&up.upload_id, &up.key, &named) {
        let uri = uri.replace(&format!("key={}", up.key), "");
        let r = call(&site.app, method, &uri, &[ALICE, JSON], body).await;
        assert_refused(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("{what} without a key"),
        );
    }
    // None of that disturbed the upload.
    let r = complete(&site, ALICE, &up, &named).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// Every request Uppy makes on an upload, as (what, method, uri, body), for the S3
/// `upload_id` and chunkd `key` given.
fn every_request(
    upload_id: &str,
    key: &str,
    named: &Value,
) -> Vec<(&'static str, &'static str, String, String)> {
    let base = format!("/s3/multipart/{upload_id}");
    let complete = json!({ "parts": named }).to_string();
    vec![
        ("sign", "GET", format!("{base}/1?key={key}"), String::new()),
        (
            "batch",
            "GET",
            format!("{base}/batch?key={key}&partNumbers=1,2"),
            String::new(),
        ),
        ("list", "GET", format!("{base}?key={key}"), String::new()),
        (
            "complete",
            "POST",
            format!("{base}/complete?key={key}"),
            complete,
        ),
        (
            "abort",
            "DELETE",
            format!("{base}?key={key}"),
            String::new(),
        ),
    ]
}

/// Names that do not lead to an upload: every endpoint answers 404.
#[tokio::test]
async fn unknown_and_mismatched_uploads_are_404() {
    let site = site();
    let up = start(&site, ALICE).await;
    let other = start(&site, ALICE).await;
    let unknown = UploadId::generate().to_string();
    let named = json!([{"PartNumber": 1, "ETag": "\"x\""}]);
    let wrong = [
        ("unknown key", up.upload_id.as_str(), unknown.as_str()),
        ("key that is no upload id", &up.upload_id, "..%2Fetc"),
        ("another upload's uploadId", &other.upload_id, &up.key),
        ("made-up uploadId", "nope", &up.key),
    ];
    for (name, upload_id, key) in wrong {
        for (what, method, uri, body) in every_request(upload_id, key, &named) {
            let r = call(&site.app, method, &uri, &[ALICE, JSON], body).await;
            assert_refused(&r, StatusCode::NOT_FOUND, &format!("{name}: {what}"));
        }
    }
}

#[tokio::test]
async fn another_users_requests_are_404() {
    let site = site();
    let up = start(&site, ALICE).await;
    let chunks = three_parts();
    let named = put_all(&site, ALICE, &up, &chunks).await;
    // Any header but the identity's: an anonymous request.
    let nobody = ("accept", "application/json");
    for user in [BOB, nobody] {
        for (what, method, uri, body) in every_request(&up.upload_id, &up.key, &named) {
            let r = call(&site.app, method, &uri, &[user, JSON], body).await;
            assert_refused(&r, StatusCode::NOT_FOUND, &format!("{user:?} {what}"));
        }
    }
    // The same requests by Alice work: her upload is intact.
    for (what, method, uri, body) in every_request(&up.upload_id, &up.key, &named) {
        let r = call(&site.app, method, &uri, &[ALICE, JSON], body).await;
        assert_eq!(r.status, StatusCode::OK, "alice {what}: {:?}", r.body);
    }
}

#[tokio::test]
async fn an_invalid_identity_is_403_in_the_companion_shape() {
    let site = site();
    let up = start(&site, ALICE).await;
    let named = put_all(&site, ALICE, &up, &three_parts()).await;
    let long = "x".repeat(300);
    let invalid = ("x-user", long.as_str());
    let r = call(&site.app, "POST", "/s3/multipart", &[invalid, JSON], "{}").await;
    assert_refused(&r, StatusCode::FORBIDDEN, "create");
    for (what, method, uri, body) in every_request(&up.upload_id, &up.key, &named) {
        let r = call(&site.app, method, &uri, &[invalid, JSON], body).await;
        assert_refused(&r, StatusCode::FORBIDDEN, what);
    }
}

#[tokio::test]
async fn there_are_no_endpoints_without_direct_parts() {
    let uploads =
        Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build();
    let app: Router = router(uploads, Config::default());
    let r = call(&app, "POST", "/s3/multipart", &[JSON], "{}").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
