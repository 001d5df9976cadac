//! Fault injection between the S3 store and a real S3 service: a proxy answers
//! UploadPart with `503 SlowDown` as told. Retries must hide passing faults, and a part
//! S3 never stored must never advance an upload's offset.
#![cfg(feature = "s3")]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use chunkd_backends::s3::MIN_PART_SIZE;
use chunkd_backends::{S3Config, S3Store};
use chunkd_core::memory::MemoryState;
use chunkd_core::testing::{body_of, pattern};
use chunkd_core::{Caller, Limits, NewUpload, Owner, UploadId, Uploads, WriteRequest};
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test-all.sh"))
}

/// What the proxy does to UploadPart requests.
#[derive(Default)]
struct Faults {
    /// Refuse every UploadPart.
    refuse_all: AtomicBool,
    /// Refuse each part's first attempt.
    refuse_first: AtomicBool,
    seen_parts: std::sync::Mutex<std::collections::HashSet<String>>,
    refused: AtomicUsize,
}

impl Faults {
    fn refuse(&self, query: &str) -> bool {
        if !query.contains("partNumber=") {
            return false;
        }
        if self.refuse_all.load(Ordering::SeqCst) {
            return true;
        }
        self.refuse_first.load(Ordering::SeqCst)
            && self.seen_parts.lock().unwrap().insert(query.to_owned())
    }
}

/// Forwards everything to the S3 service unchanged (the signed Host header included),
/// except the UploadPart requests `faults` says to refuse.
async fn proxy(faults: Arc<Faults>) -> SocketAddr {
    let upstream: http::Uri = env("CHUNKD_TEST_S3_ENDPOINT").parse().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (faults, client, upstream) = (faults.clone(), client.clone(), upstream.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (faults, client, upstream) =
                        (faults.clone(), client.clone(), upstream.clone());
                    async move {
                        let query = req.uri().query().unwrap_or_default().to_owned();
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        if faults.refuse(&query) {
                            faults.refused.fetch_add(1, Ordering::SeqCst);
                            let slow_down =
                                "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code></Error>";
                            return Ok::<_, Infallible>(
                                Response::builder()
                                    .status(StatusCode::SERVICE_UNAVAILABLE)
                                    .body(Full::new(Bytes::from(slow_down)))
                                    .unwrap(),
                            );
                        }
                        let uri = format!(
                            "http://{}{}",
                            upstream.authority().unwrap(),
                            parts
                                .uri
                                .path_and_query()
                                .map(|p| p.as_str())
                                .unwrap_or("/")
                        );
                        let mut forward = Request::builder().method(parts.method).uri(uri);
                        for (name, value) in &parts.headers {
                            forward = forward.header(name, value);
                        }
                        let answer = client
                            .request(forward.body(Full::new(body)).unwrap())
                            .await
                            .unwrap();
                        let (head, body) = answer.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        Ok(Response::from_parts(head, Full::new(body)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn engine_through(addr: SocketAddr) -> Caller {
    let store = S3Store::new(S3Config {
        endpoint: format!("http://{addr}"),
        bucket: format!("f{}", UploadId::generate()),
        region: "us-east-1".into(),
        access_key: env("CHUNKD_TEST_S3_ACCESS_KEY"),
        secret_key: env("CHUNKD_TEST_S3_SECRET_KEY"),
        prefix: String::new(),
        part_size: MIN_PART_SIZE,
        virtual_host: false,
        create_bucket: false,
        ca_file: None,
        ..S3Config::default()
    })
    .unwrap();
    store.ensure_bucket().await.unwrap();
    Uploads::builder(Arc::new(store), Arc::new(MemoryState::new()))
        .limits(Limits {
            checkpoint_bytes: MIN_PART_SIZE,
            ..Limits::default()
        })
        .build()
        .for_owner(Owner::anonymous())
}

async fn read_all(uploads: &Caller, id: &UploadId) -> Vec<u8> {
    let (_, mut stream) = uploads.read(id, None).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn passing_throttling_is_retried_away() {
    let faults = Arc::new(Faults::default());
    faults.refuse_first.store(true, Ordering::SeqCst);
    let uploads = engine_through(proxy(faults.clone()).await).await;
    let data = pattern(2 * MIN_PART_SIZE as usize + 4321, 3);
    let info = uploads
        .create(NewUpload {
            length: Some(data.len() as u64),
            ..Default::default()
        })
        .await
        .unwrap();
    let done = uploads
        .write(
            &info.id,
            WriteRequest::default(),
            body_of(&data, 256 * 1024),
        )
        .await
        .expect("the write succeeds despite the 503s");
    assert!(done.info.is_finished());
    assert!(
        faults.refused.load(Ordering::SeqCst) >= 3,
        "every part was refused once"
    );
    assert_eq!(read_all(&uploads, &info.id).await, data);
}

#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn a_part_s3_never_stored_never_advances_the_offset() {
    let faults = Arc::new(Faults::default());
    let uploads = engine_through(proxy(faults.clone()).await).await;
    let data = pattern(3 * MIN_PART_SIZE as usize, 5);
    let info = uploads
        .create(NewUpload {
            length: Some(data.len() as u64),
            ..Default::default()
        })
        .await
        .unwrap();
    let part = MIN_PART_SIZE as usize;
    // The first part goes through; then S3 refuses every part, whatever the retries.
    let first = uploads
        .write(
            &info.id,
            WriteRequest::default(),
            body_of(&data[..part], 65_536),
        )
        .await
        .unwrap()
        .info;
    assert_eq!(first.offset, MIN_PART_SIZE);
    faults.refuse_all.store(true, Ordering::SeqCst);
    let refused = uploads
        .write(
            &info.id,
            WriteRequest {
                offset: first.offset,
                ..WriteRequest::default()
            },
            body_of(&data[part..], 65_536),
        )
        .await;
    assert!(refused.is_err(), "a refused part fails the write");
    let after = uploads.info(&info.id).await.unwrap();
    assert_eq!(after.offset, MIN_PART_SIZE, "nothing S3 refused is counted");
    // S3 recovers; the client resumes from the offset it is told.
    faults.refuse_all.store(false, Ordering::SeqCst);
    let done = uploads
        .write(
            &info.id,
            WriteRequest {
                offset: after.offset,
                ..WriteRequest::default()
            },
            body_of(&data[after.offset as usize..], 65_536),
        )
        .await
        .unwrap();
    assert!(done.info.is_finished());
    assert_eq!(read_all(&uploads, &info.id).await, data);
}
