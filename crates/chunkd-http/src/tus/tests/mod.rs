//! Wire tests: request in, status and headers out, on the router without a socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::{Limits, Uploads};
use http::StatusCode;

use super::{Config, router};
use crate::public_url::PublicUrl;

mod extensions;
mod strictness;

const MAX: u64 = 1_000_000;

pub(super) fn app_with(config: Config) -> Router {
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .limits(Limits {
            max_size: Some(MAX),
            ..Limits::default()
        })
        .build();
    router(uploads, config)
}

pub(super) fn app() -> Router {
    app_with(Config::default())
}

pub(super) use crate::test_support::{Reply, call};

/// Request headers of a table row.
pub(super) type Headers<'a> = &'a [(&'a str, &'a str)];

pub(super) const TUS: (&str, &str) = ("tus-resumable", "1.0.0");
pub(super) const OCTETS: (&str, &str) = ("content-type", "application/offset+octet-stream");

/// Creates an upload of `length` bytes and returns its path (`/files/<id>`).
pub(super) async fn create(app: &Router, length: u64) -> String {
    let len = length.to_string();
    let r = call(
        app,
        "POST",
        "/files/",
        &[TUS, ("upload-length", &len)],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let location = r.header("location").unwrap();
    location
        .strip_prefix("http://example.com")
        .unwrap()
        .to_owned()
}

pub(super) async fn patch(app: &Router, path: &str, offset: u64, data: &[u8]) -> Reply {
    let off = offset.to_string();
    call(
        app,
        "PATCH",
        path,
        &[TUS, OCTETS, ("upload-offset", &off)],
        data.to_vec(),
    )
    .await
}

#[tokio::test]
async fn options_advertises_version_extensions_and_limits() {
    let r = call(&app(), "OPTIONS", "/files/", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    assert_eq!(r.header("tus-max-size"), Some("1000000"));
    assert_eq!(
        r.header("tus-checksum-algorithm"),
        Some("md5,sha1,sha256,sha512,crc32")
    );
    let ext = r.header("tus-extension").unwrap();
    for e in [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "concatenation",
        "concatenation-unfinished",
        "checksum",
        "checksum-trailer",
        "expiration",
    ] {
        assert!(ext.split(',').any(|x| x == e), "{e} missing from {ext}");
    }
}

#[tokio::test]
async fn expiration_is_not_advertised_without_expiry() {
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .limits(Limits {
            expire_after: None,
            ..Limits::default()
        })
        .build();
    let app: Router = router(uploads, Config::default());
    let r = call(&app, "OPTIONS", "/files", &[], Body::empty()).await;
    assert!(!r.header("tus-extension").unwrap().contains("expiration"));
}

/// Bad creation requests: (name, headers, status).
#[tokio::test]
async fn bad_creation_requests_get_the_tus_status() {
    let cases: &[(&str, Headers, u16)] = &[
        ("no version", &[("upload-length", "10")], 412),
        (
            "wrong version",
            &[("tus-resumable", "0.2.2"), ("upload-length", "10")],
            412,
        ),
        ("no length", &[TUS], 400),
        ("negative length", &[TUS, ("upload-length", "-1")], 400),
        ("text length", &[TUS, ("upload-length", "ten")], 400),
        (
            "overflowing length",
            &[TUS, ("upload-length", "99999999999999999999999")],
            400,
        ),
        (
            "both lengths",
            &[TUS, ("upload-length", "5"), ("upload-defer-length", "1")],
            400,
        ),
        ("defer not 1", &[TUS, ("upload-defer-length", "2")], 400),
        ("over max", &[TUS, ("upload-length", "1000001")], 413),
        (
            "broken base64",
            &[
                TUS,
                ("upload-length", "5"),
                ("upload-metadata", "filename !!!"),
            ],
            400,
        ),
        (
            "duplicate key",
            &[
                TUS,
                ("upload-length", "5"),
                ("upload-metadata", "a YQ==,a Yg=="),
            ],
            400,
        ),
        ("bad concat", &[TUS, ("upload-concat", "final;")], 400),
        (
            "final with foreign url",
            &[TUS, ("upload-concat", "final;http://x/elsewhere/abc")],
            400,
        ),
        (
            "final with path url",
            &[TUS, ("upload-concat", "final;/files/../../etc")],
            400,
        ),
        (
            "final with length",
            &[
                TUS,
                ("upload-length", "5"),
                ("upload-concat", "final;/files/abc"),
            ],
            400,
        ),
        (
            "body beyond length",
            &[TUS, OCTETS, ("upload-length", "2"), ("content-length", "3")],
            413,
        ),
    ];
    let app = app();
    for (name, headers, status) in cases {
        let body = if name == &"body beyond length" {
            Body::from("abc")
        } else {
            Body::empty()
        };
        let r = call(&app, "POST", "/files/", headers, body).await;
        assert_eq!(r.status.as_u16(), *status, "{name}: {:?}", r.body);
        assert_eq!(r.header("tus-resumable"), Some("1.0.0"), "{name}");
        if *status == 412 {
            assert_eq!(r.header("tus-version"), Some("1.0.0"));
        }
    }
}

#[tokio::test]
async fn creation_returns_absolute_location_and_expiry() {
    let r = call(
        &app(),
        "POST",
        "/files",
        &[TUS, ("upload-length", "10")],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let location = r.header("location").unwrap();
    assert!(
        location.starts_with("http://example.com/files/"),
        "{location}"
    );
    assert!(r.header("upload-expires").unwrap().ends_with(" GMT"));
}

#[tokio::test]
async fn location_honours_public_url_and_trusted_proxies() {
    let config = Config {
        public_url: PublicUrl {
            base: None,
            trust_forwarded: true,
        },
        ..Config::default()
    };
    let app = app_with(config);
    let r = call(
        &app,
        "POST",
        "/files/",
        &[
            TUS,
            ("upload-length", "1"),
            ("x-forwarded-host", "up.example"),
            ("x-forwarded-proto", "https"),
        ],
        Body::empty(),
    )
    .await;
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("https://up.example/files/")
    );
    let untrusted = call(
        &self::app(),
        "POST",
        "/files/",
        &[TUS, ("upload-length", "1"), ("x-forwarded-host", "evil")],
        Body::empty(),
    )
    .await;
    assert!(
        untrusted
            .header("location")
            .unwrap()
            .starts_with("http://example.com/files/")
    );
}

#[tokio::test]
async fn bad_patch_requests_get_the_tus_status() {
    let app = app();
    let path = create(&app, 10).await;
    assert_eq!(
        patch(&app, &path, 0, b"abc").await.status,
        StatusCode::NO_CONTENT
    );
    let cases: &[(&str, &str, Headers, &[u8], u16)] = &[
        (
            "unknown id",
            "/files/0123456789abcdef",
            &[TUS, OCTETS, ("upload-offset", "0")],
            b"",
            404,
        ),
        (
            "path characters",
            "/files/..%2F..%2Fetc",
            &[TUS, OCTETS, ("upload-offset", "0")],
            b"",
            404,
        ),
        (
            "dots",
            "/files/..",
            &[TUS, OCTETS, ("upload-offset", "0")],
            b"",
            404,
        ),
        (
            "no version",
            &path,
            &[OCTETS, ("upload-offset", "3")],
            b"x",
            412,
        ),
        (
            "wrong content type",
            &path,
            &[TUS, ("content-type", "text/plain"), ("upload-offset", "3")],
            b"x",
            415,
        ),
        ("no offset", &path, &[TUS, OCTETS], b"x", 400),
        (
            "negative offset",
            &path,
            &[TUS, OCTETS, ("upload-offset", "-3")],
            b"x",
            400,
        ),
        (
            "overflowing offset",
            &path,
            &[TUS, OCTETS, ("upload-offset", "184467440737095516160")],
            b"x",
            400,
        ),
        (
            "mismatched offset",
            &path,
            &[TUS, OCTETS, ("upload-offset", "2")],
            b"x",
            409,
        ),
        (
            "too long",
            &path,
            &[TUS, OCTETS, ("upload-offset", "3")],
            &[0; 8],
            413,
        ),
        (
            "unknown checksum",
            &path,
            &[
                TUS,
                OCTETS,
                ("upload-offset", "3"),
                ("upload-checksum", "blake9 AAAA"),
            ],
            b"x",
            400,
        ),
        (
            "garbled checksum",
            &path,
            &[
                TUS,
                OCTETS,
                ("upload-offset", "3"),
                ("upload-checksum", "sha1 !!"),
            ],
            b"x",
            400,
        ),
        (
            "wrong checksum",
            &path,
            &[
                TUS,
                OCTETS,
                ("upload-offset", "3"),
                ("upload-checksum", "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="),
            ],
            b"x",
            460,
        ),
        (
            "length on known length",
            &path,
            &[TUS, OCTETS, ("upload-offset", "3"), ("upload-length", "11")],
            b"x",
            400,
        ),
    ];
    for (name, uri, headers, body, status) in cases {
        let r = call(&app, "PATCH", uri, headers, body.to_vec()).await;
        assert_eq!(r.status.as_u16(), *status, "{name}: {:?}", r.body);
    }
    // Nothing of the refused requests was stored.
    let head = call(&app, "HEAD", &path, &[TUS], Body::empty()).await;
    assert_eq!(head.header("upload-offset"), Some("3"));
    let mismatch = patch(&app, &path, 1, b"x").await;
    assert_eq!(
        mismatch.header("upload-offset"),
        Some("3"),
        "409 tells the current offset"
    );
}

#[tokio::test]
async fn head_reports_offset_length_metadata_without_caching() {
    let app = app();
    let r = call(
        &app,
        "POST",
        "/files/",
        &[
            TUS,
            ("upload-length", "10"),
            ("upload-metadata", "filename aGVsbG8udHh0,flag"),
        ],
        Body::empty(),
    )
    .await;
    let path = r.location_path();
    patch(&app, &path, 0, b"12345").await;
    let head = call(&app, "HEAD", &path, &[TUS], Body::empty()).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("upload-offset"), Some("5"));
    assert_eq!(head.header("upload-length"), Some("10"));
    assert_eq!(head.header("cache-control"), Some("no-store"));
    assert_eq!(
        head.header("upload-metadata"),
        Some("filename aGVsbG8udHh0,flag")
    );
    let unknown = call(&app, "HEAD", "/files/nope", &[TUS], Body::empty()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.header("upload-offset").is_none());
}

#[tokio::test]
async fn upload_then_download_with_ranges() {
    let app = app();
    let path = create(&app, 10).await;
    let r = patch(&app, &path, 0, b"01234").await;
    assert_eq!(r.header("upload-offset"), Some("5"));
    assert!(r.header("upload-expires").is_some());
    let early = call(&app, "GET", &path, &[], Body::empty()).await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST);
    let r = patch(&app, &path, 5, b"56789").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("upload-offset"), Some("10"));
    assert!(
        r.header("upload-expires").is_none(),
        "finished uploads do not expire"
    );
    // Repeating the last request is harmless.
    assert_eq!(
        patch(&app, &path, 10, b"").await.status,
        StatusCode::NO_CONTENT
    );
    let full = call(&app, "GET", &path, &[], Body::empty()).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(&full.body[..], b"0123456789");
    assert_eq!(full.header("content-disposition"), Some("attachment"));
    let part = call(&app, "GET", &path, &[("range", "bytes=2-4")], Body::empty()).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&part.body[..], b"234");
    assert_eq!(part.header("content-range"), Some("bytes 2-4/10"));
    let bad = call(&app, "GET", &path, &[("range", "bytes=10-")], Body::empty()).await;
    assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(bad.header("content-range"), Some("bytes */10"));
}

/// An empty upload has no byte to serve a range of: 416, never a part ending at
/// `u64::MAX` (or an overflow panic).
#[tokio::test]
async fn a_range_of_an_empty_upload_is_unsatisfiable() {
    let app = app();
    let r = call(
        &app,
        "POST",
        "/files/",
        &[TUS, ("upload-length", "0")],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let path = r.location_path();
    for range in ["bytes=-5", "bytes=0-"] {
        let got = call(&app, "GET", &path, &[("range", range)], Body::empty()).await;
        assert_eq!(got.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(got.header("content-range"), Some("bytes */0"), "{range}");
    }
    let whole = call(&app, "GET", &path, &[], Body::empty()).await;
    assert_eq!((whole.status, whole.body.len()), (StatusCode::OK, 0));
}

#[tokio::test]
async fn download_names_file_safely() {
    let app = app();
    let name = base64::engine::general_purpose::STANDARD.encode("../../evil\"name.html");
    let kind = base64::engine::general_purpose::STANDARD.encode("text/html");
    let meta = format!("filename {name},filetype {kind}");
    let r = call(
        &app,
        "POST",
        "/files/",
        &[
            TUS,
            OCTETS,
            ("upload-length", "2"),
            ("upload-metadata", &meta),
        ],
        "hi",
    )
    .await;
    assert_eq!(r.header("upload-offset"), Some("2"));
    let path = r.location_path();
    let get = call(&app, "GET", &path, &[], Body::empty()).await;
    let disposition = get.header("content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"evil_name.html\""),
        "{disposition}"
    );
    assert_eq!(get.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn method_override_and_termination() {
    let app = app();
    let path = create(&app, 4).await;
    let r = call(
        &app,
        "POST",
        &path,
        &[
            TUS,
            OCTETS,
            ("upload-offset", "0"),
            ("x-http-method-override", "PATCH"),
        ],
        "ab",
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("upload-offset"), Some("2"));
    let r = call(
        &app,
        "POST",
        &path,
        &[TUS, ("x-http-method-override", "DELETE")],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&app, "HEAD", &path, &[TUS], Body::empty()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&app, "PUT", &path, &[TUS], Body::empty()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.header("allow").unwrap().contains("PATCH"));
}
