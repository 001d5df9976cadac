//! Calling a router in tests: request in, status, headers and body out, no socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The answer tells the application of finished files (forward mode).
    pub(crate) told: bool,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The path of the absolute `Location` (`/files/<id>`).
    pub(crate) fn location_path(&self) -> String {
        let location = self.header("location").unwrap();
        location
            .strip_prefix("http://example.com")
            .unwrap()
            .to_owned()
    }
}

pub(crate) async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "example.com");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let told = response
        .extensions()
        .get::<crate::forward::Completed>()
        .is_some();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
        told,
    }
}

/// Every front end but browser-direct (which needs a direct store), with default
/// settings, on one engine.
#[cfg(all(
    feature = "tus",
    feature = "ietf",
    feature = "content-range",
    feature = "resumablejs"
))]
pub(crate) fn every_front_end(uploads: &chunkd_core::Uploads) -> Router {
    Router::new()
        .merge(crate::tus::router(uploads.clone(), Default::default()))
        .merge(crate::ietf::router(uploads.clone(), Default::default()))
        .merge(crate::content_range::router(
            uploads.clone(),
            Default::default(),
        ))
        .merge(crate::resumablejs::router(
            uploads.clone(),
            Default::default(),
        ))
        .merge(crate::form::router(uploads.clone(), Default::default()))
}

/// (protocol, URI, headers, body) of a request that creates an upload and stores its
/// four bytes, in each protocol of [`every_front_end`].
pub(crate) type Creation = (&'static str, String, Vec<(&'static str, String)>, Body);

pub(crate) fn creating_requests() -> Vec<Creation> {
    let owned = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    };
    let tus = owned(&[
        ("tus-resumable", "1.0.0"),
        ("upload-length", "4"),
        ("content-type", "application/offset+octet-stream"),
    ]);
    let ietf = owned(&[
        ("upload-complete", "?1"),
        ("upload-draft-interop-version", "6"),
    ]);
    let resumable = "/resumable?resumableChunkNumber=1&resumableChunkSize=4\
        &resumableCurrentChunkSize=4&resumableTotalSize=4&resumableTotalChunks=1\
        &resumableIdentifier=4-f&resumableFilename=f.bin";
    let boundary = "b0";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n\r\n\
         data\r\n--{boundary}--\r\n"
    );
    let multipart = vec![(
        "content-type",
        format!("multipart/form-data; boundary={boundary}"),
    )];
    vec![
        ("tus", "/files/".into(), tus, Body::from("data")),
        ("ietf", "/uploads".into(), ietf, Body::from("data")),
        ("resumable", resumable.into(), vec![], Body::from("data")),
        (
            "content-range",
            "/chunked/".into(),
            multipart.clone(),
            Body::from(form.clone()),
        ),
        ("form", "/upload".into(), multipart, Body::from(form)),
    ]
}

/// [`call`] with owned headers, as [`creating_requests`] gives them.
pub(crate) async fn send(app: &Router, method: &str, creation: Creation) -> Reply {
    let (_, uri, headers, body) = creation;
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    call(app, method, &uri, &headers, body).await
}
