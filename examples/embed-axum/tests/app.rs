//! The example app over real HTTP: chunkd's routers obey the app's sessions, and the
//! app's own route knows what chunkd finished.
#![allow(clippy::expect_used)]

mod support;

use http::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

use support::{ALICE, App, BOB};

const TUS: (&str, &str) = ("tus-resumable", "1.0.0");
const CHUNK: (&str, &str) = ("content-type", "application/offset+octet-stream");
const IETF: (&str, &str) = ("upload-draft-interop-version", "8");

fn sample() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// Creates a tus upload of `data` and sends it in two PATCHes, checking the offset with
/// HEAD after each; the upload's path.
async fn upload_in_two_chunks(app: &App, auth: &str, data: &[u8]) -> String {
    let length = data.len().to_string();
    let created = app
        .call(
            Method::POST,
            "/files",
            &[
                ("authorization", auth),
                TUS,
                ("upload-length", &length),
                // "report.bin", base64
                ("upload-metadata", "filename cmVwb3J0LmJpbg=="),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let location = created.header("location").expect("a location");
    let path = location
        .strip_prefix(&app.origin)
        .unwrap_or(location)
        .to_owned();

    let half = data.len() / 2;
    for (offset, part) in [(0, &data[..half]), (half, &data[half..])] {
        let offset = offset.to_string();
        let patched = app
            .call(
                Method::PATCH,
                &path,
                &[
                    ("authorization", auth),
                    TUS,
                    CHUNK,
                    ("upload-offset", &offset),
                ],
                part.to_vec(),
            )
            .await;
        assert_eq!(patched.status, StatusCode::NO_CONTENT, "PATCH at {offset}");
        let now = (offset.parse::<usize>().expect("offset") + part.len()).to_string();
        assert_eq!(patched.header("upload-offset"), Some(now.as_str()));
        let head = app
            .call(
                Method::HEAD,
                &path,
                &[("authorization", auth), TUS],
                Vec::new(),
            )
            .await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.header("upload-offset"), Some(now.as_str()));
        assert_eq!(head.header("upload-length"), Some(length.as_str()));
    }
    path
}

#[tokio::test]
async fn without_a_session_chunkd_refuses_in_each_protocols_terms() {
    let app = App::start().await;
    for auth in [None, Some("Bearer not-a-session")] {
        let mut headers = vec![TUS, ("upload-length", "10")];
        headers.extend(auth.map(|a| ("authorization", a)));
        let tus = app.call(Method::POST, "/files", &headers, Vec::new()).await;
        assert_eq!(tus.status, StatusCode::FORBIDDEN, "tus, {auth:?}");
        assert_eq!(tus.header("tus-resumable"), Some("1.0.0"), "a tus answer");
        let body = String::from_utf8_lossy(&tus.body);
        assert!(body.starts_with("ERR_UNAUTHORIZED"), "{body}");
        assert!(tus.header("location").is_none(), "nothing was created");

        let mut headers = vec![IETF, ("upload-complete", "?1")];
        headers.extend(auth.map(|a| ("authorization", a)));
        let ietf = app.call(Method::POST, "/uploads", &headers, "hello").await;
        assert_eq!(ietf.status, StatusCode::FORBIDDEN, "IETF, {auth:?}");
        let problem = ietf.header("content-type");
        assert_eq!(problem, Some("application/problem+json"), "an IETF answer");
    }
    let wrong = serde_json::json!({ "user": ALICE.0, "password": BOB.1 }).to_string();
    let refused = app
        .call(
            Method::POST,
            "/api/sessions",
            &[("content-type", "application/json")],
            wrong,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "a wrong password");
    let listing = app.call(Method::GET, "/api/uploads", &[], Vec::new()).await;
    assert_eq!(
        listing.status,
        StatusCode::UNAUTHORIZED,
        "the app's own route"
    );
}

#[tokio::test]
async fn a_signed_in_user_uploads_in_two_chunks_and_gets_the_same_bytes_back() {
    let app = App::start().await;
    let alice = app.sign_in(ALICE).await;
    let data = sample();
    let path = upload_in_two_chunks(&app, &alice, &data).await;
    let got = app
        .call(Method::GET, &path, &[("authorization", &alice)], Vec::new())
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body.len(), data.len());
    assert_eq!(Sha256::digest(&got.body), Sha256::digest(&data));
}

#[tokio::test]
async fn the_ietf_router_takes_the_same_sessions() {
    let app = App::start().await;
    let alice = app.sign_in(ALICE).await;
    let headers = [
        ("authorization", alice.as_str()),
        IETF,
        ("upload-complete", "?1"),
    ];
    let created = app.call(Method::POST, "/uploads", &headers, "hello").await;
    assert!(created.status.is_success(), "{:?}", created.status);
    let location = created.header("location").expect("a location");
    let id = location.rsplit('/').next().expect("an id");
    // Downloads are the tus router's, whichever front end received the file.
    let path = format!("/files/{id}");
    let got = app
        .call(Method::GET, &path, &[("authorization", &alice)], Vec::new())
        .await;
    assert_eq!((got.status, &got.body[..]), (StatusCode::OK, &b"hello"[..]));
    let bob = app.sign_in(BOB).await;
    let theirs = app
        .call(Method::GET, &path, &[("authorization", &bob)], Vec::new())
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "GET by bob");
}

#[tokio::test]
async fn another_user_is_told_the_upload_is_not_found() {
    let app = App::start().await;
    let alice = app.sign_in(ALICE).await;
    let path = upload_in_two_chunks(&app, &alice, &sample()).await;
    let bob = app.sign_in(BOB).await;
    for method in [Method::HEAD, Method::GET, Method::DELETE] {
        let reply = app
            .call(
                method.clone(),
                &path,
                &[("authorization", &bob), TUS],
                Vec::new(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} by bob");
    }
    let patch = app
        .call(
            Method::PATCH,
            &path,
            &[("authorization", &bob), TUS, CHUNK, ("upload-offset", "0")],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND, "PATCH by bob");
    let still = app
        .call(
            Method::HEAD,
            &path,
            &[("authorization", &alice), TUS],
            Vec::new(),
        )
        .await;
    assert_eq!(still.status, StatusCode::OK, "alice's upload is untouched");
}

#[tokio::test]
async fn the_app_lists_the_finished_uploads_it_heard_of() {
    let app = App::start().await;
    let alice = app.sign_in(ALICE).await;
    let data = sample();
    let path = upload_in_two_chunks(&app, &alice, &data).await;
    let id = path.rsplit('/').next().expect("an id").to_owned();

    // The event reaches the app's task on its own schedule: ask a bounded number of
    // times, each a full round trip, for it to catch up.
    let mut listed = serde_json::Value::Null;
    for _ in 0..200 {
        let reply = app
            .call(
                Method::GET,
                "/api/uploads",
                &[("authorization", &alice)],
                Vec::new(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        listed = reply.json();
        if listed.as_array().is_some_and(|files| !files.is_empty()) {
            break;
        }
        tokio::task::yield_now().await;
    }
    let files = listed.as_array().expect("a list");
    assert_eq!(files.len(), 1, "{listed}");
    assert_eq!(files[0]["id"], id.as_str());
    assert_eq!(files[0]["filename"], "report.bin");
    assert_eq!(files[0]["size"], data.len());
    assert_eq!(files[0]["url"], path.as_str());

    let bob = app.sign_in(BOB).await;
    let theirs = app
        .call(
            Method::GET,
            "/api/uploads",
            &[("authorization", &bob)],
            Vec::new(),
        )
        .await;
    assert_eq!(theirs.json(), serde_json::json!([]), "bob finished nothing");
}
