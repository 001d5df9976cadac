//! Wire tests of the tus extensions: deferred length, concatenation, checksum trailer,
//! and uploads owned by identities.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::{OCTETS, TUS, app, call, create, patch};

#[tokio::test]
async fn deferred_length_is_declared_on_a_later_patch() {
    let app = app();
    let r = call(
        &app,
        "POST",
        "/files/",
        &[TUS, ("upload-defer-length", "1")],
        Body::empty(),
    )
    .await;
    let path = r.location_path();
    patch(&app, &path, 0, b"abc").await;
    let head = call(&app, "HEAD", &path, &[TUS], Body::empty()).await;
    assert_eq!(head.header("upload-defer-length"), Some("1"));
    assert!(head.header("upload-length").is_none());
    let r = call(
        &app,
        "PATCH",
        &path,
        &[TUS, OCTETS, ("upload-offset", "3"), ("upload-length", "5")],
        "de",
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let get = call(&app, "GET", &path, &[], Body::empty()).await;
    assert_eq!(&get.body[..], b"abcde");
}

#[tokio::test]
async fn concatenation_with_relative_and_absolute_urls() {
    let app = app();
    let mut parts = Vec::new();
    for data in [&b"hello "[..], b"world"] {
        let len = data.len().to_string();
        let r = call(
            &app,
            "POST",
            "/files/",
            &[TUS, ("upload-length", &len), ("upload-concat", "partial")],
            Body::empty(),
        )
        .await;
        let url = r.header("location").unwrap().to_owned();
        let path = url.strip_prefix("http://example.com").unwrap().to_owned();
        patch(&app, &path, 0, data).await;
        let head = call(&app, "HEAD", &path, &[TUS], Body::empty()).await;
        assert_eq!(head.header("upload-concat"), Some("partial"));
        parts.push((url, path));
    }
    let concat = format!("final;{} {}", parts[0].0, parts[1].1);
    let r = call(
        &app,
        "POST",
        "/files/",
        &[TUS, ("upload-concat", &concat)],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let path = r.location_path();
    let head = call(&app, "HEAD", &path, &[TUS], Body::empty()).await;
    assert_eq!(head.header("upload-offset"), Some("11"));
    assert!(
        head.header("upload-concat")
            .unwrap()
            .starts_with("final;http://example.com/files/")
    );
    assert_eq!(
        &call(&app, "GET", &path, &[], Body::empty()).await.body[..],
        b"hello world"
    );
    assert_eq!(
        patch(&app, &path, 11, b"!").await.status,
        StatusCode::FORBIDDEN
    );
}

fn chunked_with_trailer(data: &'static [u8], checksum: &str) -> Body {
    use http_body::Frame;
    let mut trailers = HeaderMap::new();
    trailers.insert("upload-checksum", checksum.parse().unwrap());
    let frames = vec![
        Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(&data[..2]))),
        Ok(Frame::data(Bytes::from_static(&data[2..]))),
        Ok(Frame::trailers(trailers)),
    ];
    Body::new(http_body_util::StreamBody::new(futures::stream::iter(
        frames,
    )))
}

#[tokio::test]
async fn checksum_trailer_is_verified() {
    let app = app();
    let path = create(&app, 11).await;
    let headers = [
        TUS,
        OCTETS,
        ("upload-offset", "0"),
        ("trailer", "Upload-Checksum"),
    ];
    let wrong = call(
        &app,
        "PATCH",
        &path,
        &headers,
        chunked_with_trailer(b"hello world", "sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    )
    .await;
    assert_eq!(wrong.status.as_u16(), 460);
    let right = call(
        &app,
        "PATCH",
        &path,
        &headers,
        chunked_with_trailer(b"hello world", "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="),
    )
    .await;
    assert_eq!(right.status, StatusCode::NO_CONTENT, "{:?}", right.body);
    assert_eq!(right.header("upload-offset"), Some("11"));
}

#[tokio::test]
async fn uploads_belong_to_the_identity_that_created_them() {
    use crate::identity::{self, Source};
    let config = identity::Config {
        source: Source::TrustedHeader(http::HeaderName::from_static("x-user")),
        required: true,
        ..Default::default()
    };
    let app = identity::identify(app(), config);
    let alice = ("x-user", "alice");
    let bob = ("x-user", "bob");
    let r = call(
        &app,
        "POST",
        "/files/",
        &[
            TUS,
            alice,
            ("upload-length", "4"),
            ("upload-concat", "partial"),
        ],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let path = r.location_path();
    for (method, headers) in [
        ("HEAD", vec![TUS, bob]),
        ("PATCH", vec![TUS, bob, OCTETS, ("upload-offset", "0")]),
        ("DELETE", vec![TUS, bob]),
        ("GET", vec![bob]),
    ] {
        let r = call(&app, method, &path, &headers, Body::from("abcd")).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} by another identity"
        );
    }
    let r = call(
        &app,
        "PATCH",
        &path,
        &[TUS, alice, OCTETS, ("upload-offset", "0")],
        "abcd",
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let concat = format!("final;{path}");
    let r = call(
        &app,
        "POST",
        "/files/",
        &[TUS, bob, ("upload-concat", &concat)],
        Body::empty(),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "bob cannot concatenate alice's partial"
    );
    let r = call(
        &app,
        "POST",
        "/files/",
        &[TUS, ("upload-length", "4")],
        Body::empty(),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "anonymous requests are refused"
    );
    let r = call(&app, "OPTIONS", "/files/", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK, "discovery needs no identity");
}
