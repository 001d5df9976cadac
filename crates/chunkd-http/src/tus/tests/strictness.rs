//! What the tus 1.0.0 text requires to the letter, as independent compliance tools
//! check it.

use axum::body::Body;
use base64::Engine as _;
use http::StatusCode;

use super::{Headers, OCTETS, TUS, app, call, create, patch};

/// "The Tus-Resumable header MUST be included in every request and response except for
/// OPTIONS requests": a HEAD without it is 412 and names the version spoken.
#[tokio::test]
async fn a_request_without_tus_resumable_is_412_with_tus_version() {
    let app = app();
    let path = create(&app, 4).await;
    let offset = [("upload-offset", "0")];
    let cases: [(&str, &str, Headers); 4] = [
        ("HEAD", path.as_str(), &[]),
        ("PATCH", path.as_str(), &[OCTETS, offset[0]]),
        ("DELETE", path.as_str(), &[]),
        ("POST", "/files/", &[("upload-length", "4")]),
    ];
    for (method, uri, headers) in cases {
        let r = call(&app, method, uri, headers, Body::empty()).await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{method}");
        assert_eq!(r.header("tus-version"), Some("1.0.0"), "{method}");
    }
    let head = call(&app, "HEAD", &path, &[TUS], Body::empty()).await;
    assert_eq!(
        head.header("upload-offset"),
        Some("0"),
        "nothing was written"
    );
}

/// A digest of the wrong length for its algorithm cannot match: 460, as for any other
/// checksum mismatch, and nothing is stored.
#[tokio::test]
async fn a_checksum_of_the_wrong_length_is_a_mismatch() {
    let app = app();
    let path = create(&app, 4).await;
    let short = base64::engine::general_purpose::STANDARD.encode([0u8; 7]);
    let r = call(
        &app,
        "PATCH",
        &path,
        &[
            TUS,
            OCTETS,
            ("upload-offset", "0"),
            ("upload-checksum", &format!("sha1 {short}")),
        ],
        "data",
    )
    .await;
    assert_eq!(r.status.as_u16(), 460);
    assert_eq!(
        patch(&app, &path, 0, b"data").await.status,
        StatusCode::NO_CONTENT
    );
}

/// Creation with upload carries its bytes as `application/offset+octet-stream`; a body
/// of another type is 415 and creates nothing.
#[tokio::test]
async fn creation_with_a_body_of_another_type_is_415() {
    let app = app();
    let r = call(
        &app,
        "POST",
        "/files/",
        &[
            TUS,
            ("upload-length", "4"),
            ("content-type", "text/plain"),
            ("content-length", "4"),
        ],
        "data",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.header("location"), None);
}

/// OPTIONS is answered with 200, as tusd does and conformance tools expect (the text
/// allows 200 or 204).
#[tokio::test]
async fn options_is_200() {
    let r = call(&app(), "OPTIONS", "/files/", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    assert!(r.header("tus-extension").is_some());
}
