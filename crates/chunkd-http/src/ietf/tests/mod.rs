//! Wire tests of the draft front end on the router (no socket, so no 104s: those are
//! tested over real connections in `interim` and end to end).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod representation;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use base64::Engine as _;
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::{Limits, Uploads};
use http::StatusCode;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{Config, router};
use crate::test_support::{Reply, call};

pub(super) const MAX: u64 = 1_000_000;
pub(super) type Headers<'a> = &'a [(&'a str, &'a str)];

pub(super) fn app_with(limits: Limits) -> Router {
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .limits(limits)
        .build();
    app_on(uploads)
}

pub(super) fn app_on(uploads: Uploads) -> Router {
    let config = Config {
        download_path: Some("/files".into()),
        ..Config::default()
    };
    router(uploads, config)
}

pub(super) fn app() -> Router {
    app_with(Limits {
        max_size: Some(MAX),
        ..Limits::default()
    })
}

pub(super) fn v(version: &'static str) -> (&'static str, &'static str) {
    ("upload-draft-interop-version", version)
}

pub(super) const PARTIAL: (&str, &str) = ("content-type", "application/partial-upload");

pub(super) fn problem(r: &Reply) -> Value {
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    serde_json::from_slice(&r.body).unwrap()
}

pub(super) fn sha256_field(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Creates an incomplete upload ("careful creation": empty body, `?0`).
pub(super) async fn create(app: &Router, headers: Headers<'_>) -> String {
    let mut all = vec![("upload-complete", "?0"), ("content-length", "0")];
    all.extend_from_slice(headers);
    let r = call(app, "POST", "/uploads", &all, "").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.location_path()
}

pub(super) async fn append(
    app: &Router,
    path: &str,
    offset: u64,
    complete: bool,
    extra: Headers<'_>,
    body: &'static [u8],
) -> Reply {
    let offset = offset.to_string();
    let len = body.len().to_string();
    let mut headers = vec![
        v("8"),
        PARTIAL,
        ("upload-offset", offset.as_str()),
        ("upload-complete", if complete { "?1" } else { "?0" }),
        ("content-length", len.as_str()),
    ];
    headers.extend_from_slice(extra);
    call(app, "PATCH", path, &headers, body).await
}

#[tokio::test]
async fn options_announce_limits_and_the_patch_type() {
    let app = app();
    for (version, age) in [("6", "expires=86400"), ("7", "max-age=86400")] {
        let r = call(&app, "OPTIONS", "/uploads", &[v(version)], "").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            r.header("upload-limit"),
            Some(format!("max-size={MAX}, {age}").as_str())
        );
        assert_eq!(r.header("accept-patch"), Some("application/partial-upload"));
        assert_eq!(r.header("upload-draft-interop-version"), Some(version));
    }
    let plain = app_with(Limits {
        expire_after: None,
        ..Limits::default()
    });
    let r = call(&plain, "OPTIONS", "/uploads", &[], "").await;
    assert_eq!(r.header("upload-limit"), Some("min-size=0"));
    assert_eq!(r.header("upload-draft-interop-version"), None);
}

#[tokio::test]
async fn creation_and_appends_in_parts() {
    let app = app();
    let path = create(&app, &[v("8"), ("upload-length", "10")]).await;
    let r = append(&app, &path, 0, false, &[], b"hello").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("upload-complete"), Some("?0"));
    assert_eq!(r.header("upload-offset"), Some("5"));
    let r = call(&app, "HEAD", &path, &[v("8")], "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("upload-offset"), Some("5"));
    assert_eq!(r.header("upload-length"), Some("10"));
    assert_eq!(r.header("upload-complete"), Some("?0"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("upload-limit").unwrap().contains("max-age="));
    let r = append(&app, &path, 5, true, &[], b"world").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("upload-complete"), Some("?1"));
    assert_eq!(r.header("upload-offset"), Some("10"));
    let file: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(file["size"], 10);
    assert!(
        file["url"]
            .as_str()
            .unwrap()
            .ends_with(&path[path.rfind('/').unwrap()..])
    );
}

#[tokio::test]
async fn interop_3_speaks_upload_incomplete() {
    let app = app();
    let r = call(
        &app,
        "POST",
        "/uploads",
        &[v("3"), ("upload-incomplete", "?1"), ("content-length", "3")],
        "abc",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("upload-incomplete"), Some("?1"));
    assert_eq!(r.header("upload-complete"), None);
    let path = r.location_path();
    // Interop 3 needs no partial-upload type, and an absent field means complete.
    let r = call(
        &app,
        "PATCH",
        &path,
        &[v("3"), ("upload-offset", "3"), ("content-length", "2")],
        "de",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("upload-incomplete"), Some("?0"));
    // Before interop 6 refusals are plain text.
    let r = call(
        &app,
        "HEAD",
        "/uploads/ffffffffffffffffffffffffffffffff",
        &[v("3")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
}

#[tokio::test]
async fn the_partial_upload_type_is_required_from_interop_6() {
    let app = app();
    for (version, expected) in [
        ("5", StatusCode::NO_CONTENT),
        ("6", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("8", StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        let path = create(&app, &[v(version)]).await;
        let r = call(
            &app,
            "PATCH",
            &path,
            &[
                v(version),
                ("content-type", "application/offset+octet-stream"),
                ("upload-offset", "0"),
                ("upload-complete", "?0"),
                ("content-length", "1"),
            ],
            "x",
        )
        .await;
        assert_eq!(r.status, expected, "interop {version}");
    }
}

#[tokio::test]
async fn malformed_structured_fields_are_refused_in_the_drafts_terms() {
    let app = app();
    let path = create(&app, &[v("8")]).await;
    let cases: &[(Headers<'_>, StatusCode)] = &[
        // Upload-Complete must be a Boolean; anything else is as if absent, and required.
        (
            &[
                v("8"),
                PARTIAL,
                ("upload-offset", "0"),
                ("upload-complete", "1"),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            &[
                v("8"),
                PARTIAL,
                ("upload-offset", "0"),
                ("upload-complete", "?2"),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            &[v("8"), PARTIAL, ("upload-offset", "0")],
            StatusCode::BAD_REQUEST,
        ),
        // Upload-Offset must be a non-negative Integer.
        (
            &[
                v("8"),
                PARTIAL,
                ("upload-offset", "-1"),
                ("upload-complete", "?0"),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            &[
                v("8"),
                PARTIAL,
                ("upload-offset", "1.0"),
                ("upload-complete", "?0"),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            &[
                v("8"),
                PARTIAL,
                ("upload-offset", "9999999999999999"),
                ("upload-complete", "?0"),
            ],
            StatusCode::BAD_REQUEST,
        ),
        // Digests: malformed fields and wrong lengths are refused.
        (
            &[
                v("8"),
                PARTIAL,
                ("upload-offset", "0"),
                ("upload-complete", "?0"),
                ("content-digest", "sha-256=abc"),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            &[
                v("8"),
                PARTIAL,
                ("upload-offset", "0"),
                ("upload-complete", "?0"),
                ("content-digest", "sha-256=:AAAA:"),
            ],
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (headers, expected) in cases {
        let r = call(&app, "PATCH", &path, headers, "x").await;
        assert_eq!(r.status, *expected, "{headers:?}");
        assert!(problem(&r)["detail"].as_str().is_some());
    }
    let r = call(&app, "HEAD", &path, &[v("8")], "").await;
    assert_eq!(r.header("upload-offset"), Some("0"), "nothing was stored");
    let r = call(
        &app,
        "POST",
        "/uploads",
        &[v("8"), ("content-length", "0")],
        "",
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "creation needs Upload-Complete"
    );
}

#[tokio::test]
async fn unknown_interop_versions_get_a_clear_400() {
    let app = app();
    for version in ["2", "9", "x", "-6"] {
        let r = call(
            &app,
            "POST",
            "/uploads",
            &[
                v(version),
                ("upload-complete", "?1"),
                ("content-length", "0"),
            ],
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{version}");
        assert!(
            problem(&r)["detail"]
                .as_str()
                .unwrap()
                .contains("not spoken")
        );
    }
}

#[tokio::test]
async fn offset_mismatch_is_a_409_problem_with_the_right_offset() {
    let app = app();
    let path = create(&app, &[v("8")]).await;
    append(&app, &path, 0, false, &[], b"abc").await;
    let r = append(&app, &path, 1, false, &[], b"x").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.header("upload-offset"), Some("3"));
    assert_eq!(r.header("upload-complete"), Some("?0"));
    let p = problem(&r);
    assert_eq!(
        p["type"],
        "https://iana.org/assignments/http-problem-types#mismatching-upload-offset"
    );
    assert_eq!(p["expected-offset"], 3);
    assert_eq!(p["provided-offset"], 1);
}

#[tokio::test]
async fn lengths_must_agree_and_are_never_exceeded() {
    let app = app();
    const INCONSISTENT: &str =
        "https://iana.org/assignments/http-problem-types#inconsistent-upload-length";
    // Upload-Length against Content-Length of a completing creation.
    let r = call(
        &app,
        "POST",
        "/uploads",
        &[
            v("8"),
            ("upload-complete", "?1"),
            ("upload-length", "5"),
            ("content-length", "3"),
        ],
        "abc",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem(&r)["type"], INCONSISTENT);

    let path = create(&app, &[v("8"), ("upload-length", "4")]).await;
    // A later request naming another length.
    let r = append(&app, &path, 0, false, &[("upload-length", "5")], b"ab").await;
    assert_eq!(problem(&r)["type"], INCONSISTENT);
    // A completing append whose end is not the length.
    let r = append(&app, &path, 0, true, &[], b"abc").await;
    assert_eq!(problem(&r)["type"], INCONSISTENT);
    // An append beyond the length.
    let r = append(&app, &path, 0, false, &[], b"abcdef").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem(&r)["type"], INCONSISTENT);
    let r = call(&app, "HEAD", &path, &[v("8")], "").await;
    assert_eq!(
        r.header("upload-offset"),
        Some("0"),
        "nothing past the length, nothing at all"
    );
    let r = append(&app, &path, 0, true, &[], b"abcd").await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn over_the_maximum_is_a_413_with_the_limits() {
    let app = app();
    let big = (MAX + 1).to_string();
    let r = call(
        &app,
        "POST",
        "/uploads",
        &[
            v("8"),
            ("upload-complete", "?0"),
            ("upload-length", &big),
            ("content-length", "0"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.header("upload-limit")
            .unwrap()
            .contains(&format!("max-size={MAX}"))
    );
}

#[tokio::test]
async fn appends_to_a_completed_upload() {
    let app = app();
    let path = create(&app, &[v("7")]).await;
    let r = call(
        &app,
        "PATCH",
        &path,
        &[
            v("7"),
            PARTIAL,
            ("upload-offset", "0"),
            ("upload-complete", "?1"),
            ("content-length", "2"),
        ],
        "ok",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let patch = |complete: &'static str, len: &'static str| {
        vec![
            v("7"),
            PARTIAL,
            ("upload-offset", "2"),
            ("upload-complete", complete),
            ("content-length", len),
        ]
    };
    // More content: an inconsistent length.
    let r = call(&app, "PATCH", &path, &patch("?0", "1"), "x").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.header("upload-complete"), Some("?1"));
    // An empty non-completing append: the completed-upload problem.
    let r = call(&app, "PATCH", &path, &patch("?0", "0"), "").await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(
        problem(&r)["type"],
        "https://iana.org/assignments/http-problem-types#completed-upload"
    );
    // An empty completing append at the end asks again for a lost final answer.
    let r = call(&app, "PATCH", &path, &patch("?1", "0"), "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("upload-complete"), Some("?1"));
}

#[tokio::test]
async fn an_unknown_length_is_settled_by_the_completing_request() {
    let app = app();
    let path = create(&app, &[v("8")]).await;
    // A completing append with no Content-Length (chunked): the length is where it ends.
    let r = call(
        &app,
        "PATCH",
        &path,
        &[
            v("8"),
            PARTIAL,
            ("upload-offset", "0"),
            ("upload-complete", "?1"),
        ],
        "streamed",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = call(&app, "HEAD", &path, &[v("8")], "").await;
    assert_eq!(r.header("upload-length"), Some("8"));
    assert_eq!(r.header("upload-complete"), Some("?1"));
}

#[tokio::test]
async fn cancellation_and_unknown_uploads() {
    let app = app();
    let path = create(&app, &[v("8")]).await;
    let r = call(&app, "DELETE", &path, &[v("8")], "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&app, "HEAD", &path, &[v("8")], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = append(&app, &path, 0, false, &[], b"x").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for bad in ["/uploads/..%2f..%2fetc", "/uploads/abc", "/uploads/%00"] {
        let r = call(&app, "HEAD", bad, &[v("8")], "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test]
async fn expired_uploads_are_gone() {
    let app = app_with(Limits {
        // Expired the moment it is created.
        expire_after: Some(Duration::ZERO),
        ..Limits::default()
    });
    let path = create(&app, &[v("8")]).await;
    let r = call(&app, "HEAD", &path, &[v("8")], "").await;
    assert_eq!(r.status, StatusCode::GONE);
}
