//! Fault injection: tiny servers on 127.0.0.1 that answer the way broken or hostile
//! servers do. Every case must end in a clear error after a bounded number of
//! requests, never a panic or an endless loop; one that drops a request half-way must
//! be resumed from the offset it reports.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use chunkd_client::{Backoff, Class, Client, Error, Settings, StateFile, Timeouts, Unobserved};
use http::{HeaderMap, Method, StatusCode};

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

type Handler = Arc<dyn Fn(&Seen) -> Response + Send + Sync>;

struct Server {
    endpoint: url::Url,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn count(&self, method: &Method) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|s| s.method == method)
            .count()
    }
}

async fn serve(handler: Handler) -> Server {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (handler, log) = (handler.clone(), log.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let seen = Seen {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                headers: parts.headers,
                body,
            };
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(seen.clone());
            handler(&seen)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        endpoint: format!("http://{addr}/files/")
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
        seen,
    }
}

fn reply(status: u16, headers: &[(&str, &str)]) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("tus-resumable", "1.0.0");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// OPTIONS and creation as a sound tus server answers them; the rest is `rest`'s.
fn tus(rest: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Handler {
    Arc::new(move |seen| match seen.method {
        Method::OPTIONS => reply(
            200,
            &[
                ("tus-version", "1.0.0"),
                ("tus-extension", "creation,termination"),
            ],
        ),
        Method::POST => reply(201, &[("location", "/files/1")]),
        _ => rest(seen),
    })
}

struct Fixture {
    _dir: tempfile::TempDir,
    file: std::path::PathBuf,
    data: Vec<u8>,
    client: Client,
}

fn fixture(server: &Server, size: usize) -> Fixture {
    fixture_with(server, size, |_| {})
}

fn fixture_with(server: &Server, size: usize, tweak: impl FnOnce(&mut Settings)) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("data.bin");
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap_or_else(|e| panic!("{e}"));
    let mut settings = Settings::new(
        server.endpoint.clone(),
        StateFile::new(dir.path().join("state.json")),
    );
    settings.chunk_size = 1000;
    settings.retries = 3;
    settings.backoff = Backoff {
        base: Duration::from_millis(1),
        max: Duration::from_millis(5),
    };
    tweak(&mut settings);
    let client = Client::new(settings).unwrap_or_else(|e| panic!("{e}"));
    Fixture {
        _dir: dir,
        file,
        data,
        client,
    }
}

async fn upload(f: &Fixture) -> Result<chunkd_client::Uploaded, Error> {
    let plan = f.client.discover().await?;
    // Whatever the server does, the client gives up in bounded time.
    tokio::time::timeout(
        Duration::from_secs(20),
        f.client.upload(&f.file, &plan, Arc::new(Unobserved)),
    )
    .await
    .unwrap_or_else(|_| panic!("the upload did not end"))
}

fn protocol_error(result: Result<chunkd_client::Uploaded, Error>, says: &str) {
    match result {
        Err(Error::Protocol(message)) => {
            assert!(message.contains(says), "{message:?} lacks {says:?}")
        }
        other => panic!("expected a protocol error saying {says:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn an_offset_beyond_the_file_is_refused() {
    let server = serve(tus(|_| {
        reply(204, &[("upload-offset", "1000000000000000000")])
    }))
    .await;
    let f = fixture(&server, 2500);
    protocol_error(upload(&f).await, "answered offset 1000000000000000000");
    assert_eq!(server.count(&Method::PATCH), 1);
}

#[tokio::test]
async fn an_offset_past_u64_is_a_protocol_error() {
    let server = serve(tus(|_| {
        reply(204, &[("upload-offset", "99999999999999999999999")])
    }))
    .await;
    let f = fixture(&server, 2500);
    protocol_error(upload(&f).await, "not a non-negative integer");
}

#[tokio::test]
async fn a_head_offset_beyond_the_file_is_refused() {
    let server = serve(tus(|seen| match seen.method {
        Method::HEAD => reply(
            200,
            &[
                ("upload-offset", "1000000000000000000"),
                ("upload-length", "2500"),
            ],
        ),
        _ => reply(500, &[]),
    }))
    .await;
    let f = fixture(&server, 2500);
    protocol_error(upload(&f).await, "beyond the upload's 2500 bytes");
}

#[tokio::test]
async fn an_offset_going_backwards_is_refused() {
    let server = serve(tus(|seen| match seen.method {
        Method::PATCH if seen.headers.get("upload-offset").is_some_and(|v| v == "0") => {
            reply(204, &[("upload-offset", "1000")])
        }
        Method::PATCH => reply(503, &[]),
        _ => reply(200, &[("upload-offset", "0"), ("upload-length", "2500")]),
    }))
    .await;
    let f = fixture(&server, 2500);
    protocol_error(upload(&f).await, "went back from offset 1000 to 0");
}

#[tokio::test]
async fn a_creation_without_location_is_refused() {
    let server = serve(Arc::new(|seen: &Seen| match seen.method {
        Method::OPTIONS => reply(200, &[("tus-version", "1.0.0")]),
        _ => reply(201, &[]),
    }))
    .await;
    let f = fixture(&server, 10);
    protocol_error(upload(&f).await, "without a Location");
    assert_eq!(server.count(&Method::POST), 1);
}

#[tokio::test]
async fn a_redirect_loop_ends() {
    let server = serve(Arc::new(|seen: &Seen| {
        let path = seen.path.clone();
        reply(307, &[("location", &path)])
    }))
    .await;
    let f = fixture(&server, 10);
    protocol_error(upload(&f).await, "redirects");
    assert!(server.count(&Method::OPTIONS) <= 6);
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let server = serve(tus(|seen| match seen.method {
        Method::HEAD => reply(200, &[("upload-offset", "0"), ("upload-length", "2500")]),
        _ => reply(503, &[]),
    }))
    .await;
    let f = fixture(&server, 2500);
    let error = upload(&f).await.err().unwrap_or_else(|| panic!("uploaded"));
    assert_eq!(error.class(), Class::Network, "{error}");
    // The first attempt and three retries, each retry after asking the offset.
    assert_eq!(server.count(&Method::PATCH), 4);
    assert_eq!(server.count(&Method::HEAD), 3);
}

#[tokio::test]
async fn a_server_that_takes_nothing_is_given_up_on() {
    let server = serve(tus(|_| {
        reply(204, &[("upload-offset", "0"), ("upload-length", "2500")])
    }))
    .await;
    let f = fixture(&server, 2500);
    protocol_error(upload(&f).await, "took none of 1000 bytes");
    assert_eq!(server.count(&Method::PATCH), 4);
}

#[tokio::test]
async fn a_refusal_is_not_retried() {
    let server = serve(Arc::new(|seen: &Seen| match seen.method {
        Method::OPTIONS => reply(200, &[("tus-version", "1.0.0")]),
        _ => reply(403, &[]),
    }))
    .await;
    let f = fixture(&server, 10);
    let error = upload(&f).await.err().unwrap_or_else(|| panic!("uploaded"));
    assert_eq!((error.class(), error.status()), (Class::Refused, Some(403)));
    assert_eq!(server.count(&Method::POST), 1);
}

#[tokio::test]
async fn not_a_tus_server_is_unsupported() {
    let server = serve(Arc::new(|_: &Seen| reply(200, &[]))).await;
    let f = fixture(&server, 10);
    let error = upload(&f).await.err().unwrap_or_else(|| panic!("uploaded"));
    assert_eq!(error.class(), Class::Usage, "{error}");
}

/// A tus server that keeps what it is sent, but drops every third PATCH half-way
/// (keeping the first half, answering 500), as a connection lost mid-body does.
#[tokio::test]
async fn resumes_from_the_offset_after_a_request_cut_short() {
    let stored = Arc::new(Mutex::new(Vec::<u8>::new()));
    let patches = Arc::new(Mutex::new(0u32));
    let (s, p) = (stored.clone(), patches.clone());
    let server = serve(tus(move |seen| {
        let mut stored = s.lock().unwrap_or_else(PoisonError::into_inner);
        match seen.method {
            Method::HEAD => reply(
                200,
                &[
                    ("upload-offset", &stored.len().to_string()),
                    ("upload-length", "2500"),
                ],
            ),
            Method::PATCH => {
                let offset = seen
                    .headers
                    .get("upload-offset")
                    .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
                if offset != Some(stored.len()) {
                    return reply(409, &[]);
                }
                let mut n = p.lock().unwrap_or_else(PoisonError::into_inner);
                *n += 1;
                if *n % 3 == 0 {
                    stored.extend_from_slice(&seen.body[..seen.body.len() / 2]);
                    return reply(500, &[]);
                }
                stored.extend_from_slice(&seen.body);
                reply(204, &[("upload-offset", &stored.len().to_string())])
            }
            _ => reply(405, &[]),
        }
    }))
    .await;
    let f = fixture(&server, 2500);
    let uploaded = upload(&f).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(uploaded.url.path(), "/files/1");
    assert_eq!(
        *stored.lock().unwrap_or_else(PoisonError::into_inner),
        f.data
    );
    // Nothing was sent twice but the cut-off halves.
    let sent: usize = server
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|s| s.body.len())
        .sum();
    assert!(sent < 2500 + 1000, "{sent} bytes sent");
    // Finished uploads are forgotten.
    let state = f
        .client
        .settings()
        .state
        .entries()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(state.is_empty());
}

/// The state file names an upload the server has forgotten (expired): a new one is made.
#[tokio::test]
async fn a_forgotten_upload_starts_afresh() {
    let server = serve(tus(|seen| match seen.method {
        Method::HEAD if seen.path == "/files/old" => reply(404, &[]),
        Method::HEAD => reply(200, &[("upload-offset", "0"), ("upload-length", "10")]),
        _ => {
            let end = seen.body.len().to_string();
            reply(204, &[("upload-offset", &end)])
        }
    }))
    .await;
    let f = fixture(&server, 10);
    remember(&f, &server, "old");
    let uploaded = upload(&f).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(uploaded.url.path(), "/files/1");
    assert_eq!(uploaded.resumed_at, None);
    assert_eq!(server.count(&Method::POST), 1);
}

/// The state file names an upload the server holds half of: only the rest is sent.
#[tokio::test]
async fn a_remembered_upload_resumes_at_the_server_offset() {
    let server = serve(tus(|seen| match seen.method {
        Method::HEAD => reply(200, &[("upload-offset", "1500"), ("upload-length", "2500")]),
        _ => {
            let offset: u64 = seen
                .headers
                .get("upload-offset")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0);
            let end = (offset + seen.body.len() as u64).to_string();
            reply(204, &[("upload-offset", &end)])
        }
    }))
    .await;
    let f = fixture(&server, 2500);
    remember(&f, &server, "half");
    let uploaded = upload(&f).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(uploaded.url.path(), "/files/half");
    assert_eq!(uploaded.resumed_at, Some(1500));
    assert_eq!(server.count(&Method::POST), 0);
    let seen = server.seen.lock().unwrap_or_else(PoisonError::into_inner);
    let patches: Vec<_> = seen.iter().filter(|s| s.method == Method::PATCH).collect();
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0]
            .headers
            .get("upload-offset")
            .map(|v| v.as_bytes()),
        Some(&b"1500"[..])
    );
    assert_eq!(&patches[0].body[..], &f.data[1500..]);
}

/// Writes the entry an earlier, interrupted run would have left for the fixture's file.
fn remember(f: &Fixture, server: &Server, id: &str) {
    let facts = chunkd_client::FileFacts::of(&f.file).unwrap_or_else(|e| panic!("{e}"));
    let fingerprint = chunkd_client::Fingerprint::of(&facts, server.endpoint.as_str(), "tus")
        .unwrap_or_else(|e| panic!("{e}"));
    let entry = entry_for(f, server, id);
    f.client
        .settings()
        .state
        .remember(&fingerprint, &entry)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The entry of one upload at `id` of the fixture's whole file.
fn entry_for(f: &Fixture, server: &Server, id: &str) -> chunkd_client::Entry {
    let facts = chunkd_client::FileFacts::of(&f.file).unwrap_or_else(|e| panic!("{e}"));
    chunkd_client::Entry {
        path: facts.path.clone(),
        size: facts.size,
        endpoint: server.endpoint.to_string(),
        protocol: chunkd_client::Protocol::Tus,
        parts: vec![chunkd_client::Part {
            url: server
                .endpoint
                .join(id)
                .unwrap_or_else(|e| panic!("{e}"))
                .to_string(),
            start: 0,
            length: facts.size,
        }],
        concat: false,
        final_url: None,
    }
}

/// The offset a PATCH ends at, as a server that takes every byte answers it.
fn took_all(seen: &Seen) -> Response {
    let offset: u64 = seen
        .headers
        .get("upload-offset")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let end = (offset + seen.body.len() as u64).to_string();
    reply(204, &[("upload-offset", &end)])
}

/// A tus server with concatenation: partial uploads at /files/pN, the final one's
/// creation answered by `final_post`, the rest by `rest`.
fn concatenating(
    final_post: impl Fn() -> Response + Send + Sync + 'static,
    rest: impl Fn(&Seen) -> Response + Send + Sync + 'static,
) -> Handler {
    let partials = Arc::new(Mutex::new(0u32));
    Arc::new(move |seen| {
        let concat = seen
            .headers
            .get("upload-concat")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        match seen.method {
            Method::OPTIONS => reply(
                200,
                &[
                    ("tus-version", "1.0.0"),
                    ("tus-extension", "creation,termination,concatenation"),
                ],
            ),
            Method::POST if concat.starts_with("final;") => final_post(),
            Method::POST => {
                let mut n = partials.lock().unwrap_or_else(PoisonError::into_inner);
                *n += 1;
                reply(201, &[("location", &format!("/files/p{n}"))])
            }
            _ => rest(seen),
        }
    })
}

fn final_posts(server: &Server) -> usize {
    server
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|s| {
            s.method == Method::POST
                && s.headers
                    .get("upload-concat")
                    .is_some_and(|v| v.as_bytes().starts_with(b"final;"))
        })
        .count()
}

/// A final POST that failed after it may have been processed (a 500) is not sent
/// again: that could make a second final upload of the same parts.
#[tokio::test]
async fn a_failed_final_concatenation_is_not_posted_twice() {
    let server = serve(concatenating(|| reply(500, &[]), took_all)).await;
    let f = fixture_with(&server, 2500, |s| s.parallel = 2);
    let error = upload(&f).await.err().unwrap_or_else(|| panic!("uploaded"));
    assert_eq!(final_posts(&server), 1, "{error}");
    assert!(
        error.to_string().contains("may have been created"),
        "{error}"
    );
}

/// A final POST the server plainly did not process (503) is sent again.
#[tokio::test]
async fn a_final_concatenation_the_server_did_not_take_is_retried() {
    let tries = Arc::new(Mutex::new(0u32));
    let t = tries.clone();
    let server = serve(concatenating(
        move || {
            let mut n = t.lock().unwrap_or_else(PoisonError::into_inner);
            *n += 1;
            if *n == 1 {
                reply(503, &[])
            } else {
                reply(201, &[("location", "/files/final")])
            }
        },
        took_all,
    ))
    .await;
    let f = fixture_with(&server, 2500, |s| s.parallel = 2);
    let uploaded = upload(&f).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(uploaded.url.path(), "/files/final");
    assert_eq!(final_posts(&server), 2);
}

/// The final upload's URL is remembered as soon as it is known: a run that stopped
/// after the final POST asks it (HEAD) and never creates it again.
#[tokio::test]
async fn a_remembered_final_upload_is_asked_not_created_again() {
    let server = serve(concatenating(
        || reply(201, &[("location", "/files/final")]),
        |seen| match seen.method {
            Method::HEAD if seen.path == "/files/final" => {
                reply(200, &[("upload-offset", "2500"), ("upload-length", "2500")])
            }
            _ => reply(500, &[]),
        },
    ))
    .await;
    let f = fixture_with(&server, 2500, |s| s.parallel = 2);
    let facts = chunkd_client::FileFacts::of(&f.file).unwrap_or_else(|e| panic!("{e}"));
    let fingerprint = chunkd_client::Fingerprint::of(&facts, server.endpoint.as_str(), "tus")
        .unwrap_or_else(|e| panic!("{e}"));
    let url = |id: &str| {
        server
            .endpoint
            .join(id)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string()
    };
    let mut entry = entry_for(&f, &server, "p1");
    entry.parts = vec![
        chunkd_client::Part {
            url: url("p1"),
            start: 0,
            length: 1250,
        },
        chunkd_client::Part {
            url: url("p2"),
            start: 1250,
            length: 1250,
        },
    ];
    entry.concat = true;
    entry.final_url = Some(url("final"));
    f.client
        .settings()
        .state
        .remember(&fingerprint, &entry)
        .unwrap_or_else(|e| panic!("{e}"));
    let uploaded = upload(&f).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(uploaded.url.path(), "/files/final");
    assert_eq!(server.count(&Method::POST), 0);
    assert_eq!(server.count(&Method::PATCH), 0);
    assert!(
        f.client
            .settings()
            .state
            .entries()
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
}

/// What a raw server does with one request.
enum Raw {
    /// Writes this answer and reads the next request.
    Answer(String),
    /// Writes this (an answer cut short) and then holds the connection, silent.
    AnswerAndHold(String),
    /// Reads nothing more and never answers, holding the connection open.
    Hold,
}

/// An HTTP/1.1 server on raw sockets, for answers axum will not give (none at all, or
/// half of one): `answer` decides by method and path.
async fn raw(answer: impl Fn(&str, &str) -> Raw + Send + Sync + 'static) -> Server {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let head_end = loop {
                        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut piece = [0u8; 4096];
                        match socket.read(&mut piece).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&piece[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
                    buffer.drain(..head_end);
                    let mut words = head.split_whitespace();
                    let (method, path) = (
                        words.next().unwrap_or_default().to_owned(),
                        words.next().unwrap_or_default().to_owned(),
                    );
                    match answer(&method, &path) {
                        Raw::Hold => {
                            std::future::pending::<()>().await;
                        }
                        Raw::AnswerAndHold(text) => {
                            let _ = socket.write_all(text.as_bytes()).await;
                            std::future::pending::<()>().await;
                        }
                        Raw::Answer(text) => {
                            let length: usize = head
                                .lines()
                                .find_map(|l| {
                                    let (name, value) = l.split_once(':')?;
                                    name.eq_ignore_ascii_case("content-length")
                                        .then(|| value.trim().parse().ok())?
                                })
                                .unwrap_or(0);
                            while buffer.len() < length {
                                let mut piece = [0u8; 4096];
                                match socket.read(&mut piece).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => buffer.extend_from_slice(&piece[..n]),
                                }
                            }
                            buffer.drain(..length);
                            if socket.write_all(text.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Server {
        endpoint: format!("http://{addr}/files/")
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
        seen: Arc::default(),
    }
}

/// A raw tus answer with `headers` and no body.
fn raw_reply(status: &str, headers: &[&str]) -> Raw {
    let mut text = format!("HTTP/1.1 {status}\r\nTus-Resumable: 1.0.0\r\nContent-Length: 0\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    Raw::Answer(text)
}

fn raw_tus(method: &str) -> Option<Raw> {
    match method {
        "OPTIONS" => Some(raw_reply(
            "200 OK",
            &["Tus-Version: 1.0.0", "Tus-Extension: creation"],
        )),
        "POST" => Some(raw_reply("201 Created", &["Location: /files/1"])),
        "HEAD" => Some(raw_reply(
            "200 OK",
            &["Upload-Offset: 0", "Upload-Length: 2500"],
        )),
        _ => None,
    }
}

fn quick(settings: &mut Settings) {
    settings.timeouts = Timeouts {
        stall: Duration::from_millis(300),
        request: Duration::from_millis(300),
    };
}

/// A PATCH the server takes in and never answers is a stall: a network failure,
/// retried from the offset, then given up on, in bounded time.
#[tokio::test]
async fn a_stalled_chunk_is_retried_then_given_up_on() {
    let server = raw(|method, _| raw_tus(method).unwrap_or(Raw::Hold)).await;
    let f = fixture_with(&server, 2500, quick);
    let error = upload(&f).await.err().unwrap_or_else(|| panic!("uploaded"));
    assert_eq!(error.class(), Class::Network, "{error}");
    assert!(error.to_string().contains("PATCH http://"), "{error}");
    assert!(error.to_string().contains("stalled"), "{error}");
}

/// A HEAD that is never answered ends at the request deadline, and is retried.
#[tokio::test]
async fn an_unanswered_head_ends_at_the_deadline() {
    let server = raw(|method, _| match method {
        "HEAD" => Raw::Hold,
        other => raw_tus(other).unwrap_or(Raw::Hold),
    })
    .await;
    let f = fixture_with(&server, 2500, quick);
    remember(&f, &server, "1");
    let started = std::time::Instant::now();
    let error = upload(&f).await.err().unwrap_or_else(|| panic!("uploaded"));
    assert_eq!(error.class(), Class::Network, "{error}");
    // Four attempts of 300 ms, and short waits.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// An error answer whose body never ends is read a few KiB at most, for a few seconds.
#[tokio::test]
async fn an_endless_error_body_is_cut_short() {
    let server = raw(|method, _| match method {
        "PATCH" => Raw::AnswerAndHold(format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 100000000\r\n\r\n{}",
            "no ".repeat(4000)
        )),
        other => raw_tus(other).unwrap_or(Raw::Hold),
    })
    .await;
    let f = fixture_with(&server, 2500, |s| {
        s.timeouts.stall = Duration::from_secs(30);
    });
    let error = upload(&f).await.err().unwrap_or_else(|| panic!("uploaded"));
    assert_eq!(error.status(), Some(403), "{error}");
    assert!(error.to_string().len() < 5000, "{error}");
}

/// An IETF draft server: discovery and creation as a sound one answers them; the rest
/// is `rest`'s.
fn ietf(rest: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Handler {
    Arc::new(move |seen| match seen.method {
        Method::OPTIONS => reply(200, &[("upload-limit", "max-size=1000000")]),
        Method::POST => reply(201, &[("location", "/files/1")]),
        _ => rest(seen),
    })
}

fn ietf_fixture(server: &Server) -> Fixture {
    fixture_with(server, 2500, |s| s.protocol = chunkd_client::Protocol::Ietf)
}

/// An append answered `Upload-Complete: ?1` before the upload's last byte: the stored
/// file would lack the rest.
#[tokio::test]
async fn an_ietf_upload_complete_short_of_its_length_is_refused() {
    let server = serve(ietf(|seen| {
        let end = took_all(seen);
        let offset = end
            .headers()
            .get("upload-offset")
            .cloned()
            .unwrap_or_else(|| panic!("no offset"));
        let offset = offset.to_str().unwrap_or_default();
        reply(204, &[("upload-offset", offset), ("upload-complete", "?1")])
    }))
    .await;
    protocol_error(
        upload(&ietf_fixture(&server)).await,
        "complete at offset 1000, before its last byte",
    );
}

/// The offset asked after a failure says complete at 1000 of 2500 bytes.
#[tokio::test]
async fn an_ietf_head_complete_short_of_its_length_is_refused() {
    let server = serve(ietf(|seen| match seen.method {
        Method::HEAD => reply(200, &[("upload-offset", "1000"), ("upload-complete", "?1")]),
        _ => reply(500, &[]),
    }))
    .await;
    protocol_error(
        upload(&ietf_fixture(&server)).await,
        "complete at offset 1000 of 2500 bytes",
    );
}

/// A file whose name is not UTF-8 is remembered, uploaded and forgotten like any other.
#[cfg(unix)]
#[tokio::test]
async fn a_file_name_that_is_not_utf8_uploads() {
    use std::os::unix::ffi::OsStrExt as _;
    let server = serve(tus(took_all)).await;
    let mut f = fixture(&server, 2500);
    let odd = f
        .file
        .with_file_name(std::ffi::OsStr::from_bytes(b"caf\xe9.bin"));
    std::fs::rename(&f.file, &odd).unwrap_or_else(|e| panic!("{e}"));
    f.file = odd;
    let uploaded = upload(&f).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(uploaded.url.path(), "/files/1");
    assert_eq!(server.count(&Method::POST), 1);
}

/// A server that takes everything and, on the last byte, runs `then` (to break
/// something on the client's side before it ends).
fn takes_all_then(then: impl Fn() + Send + Sync + 'static) -> Handler {
    tus(move |seen| {
        let answer = took_all(seen);
        if answer
            .headers()
            .get("upload-offset")
            .is_some_and(|v| v == "2500")
        {
            then();
        }
        answer
    })
}

/// The file is removed once its last byte is on the server: the upload is still
/// reported finished, with a warning.
#[tokio::test]
async fn a_file_gone_after_its_last_byte_is_still_uploaded() {
    let file: Arc<Mutex<Option<std::path::PathBuf>>> = Arc::default();
    let f2 = file.clone();
    let server = serve(takes_all_then(move || {
        if let Some(path) = f2.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            let _ = std::fs::remove_file(path);
        }
    }))
    .await;
    let f = fixture(&server, 2500);
    *file.lock().unwrap_or_else(PoisonError::into_inner) = Some(f.file.clone());
    let uploaded = upload(&f).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(uploaded.url.path(), "/files/1");
    assert_eq!(uploaded.warnings.len(), 1, "{:?}", uploaded.warnings);
}

/// The state file cannot be rewritten once the last byte is on the server: the upload
/// is still reported finished, with a warning.
#[tokio::test]
async fn an_entry_that_cannot_be_forgotten_is_a_warning() {
    let state: Arc<Mutex<Option<std::path::PathBuf>>> = Arc::default();
    let s2 = state.clone();
    let server = serve(takes_all_then(move || {
        if let Some(path) = s2.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            // A directory where the file was: it can be neither read nor replaced.
            let _ = std::fs::remove_file(path);
            let _ = std::fs::create_dir(path);
        }
    }))
    .await;
    let f = fixture(&server, 2500);
    *state.lock().unwrap_or_else(PoisonError::into_inner) =
        Some(f.client.settings().state.path().to_owned());
    let uploaded = upload(&f).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(uploaded.url.path(), "/files/1");
    assert!(
        uploaded
            .warnings
            .iter()
            .any(|w| w.contains("not forgotten")),
        "{:?}",
        uploaded.warnings
    );
}

/// A server that keeps answering 423 (locked) is declining, not unreachable.
#[tokio::test]
async fn a_server_that_keeps_declining_is_its_own_class() {
    let server = serve(tus(|seen| match seen.method {
        Method::HEAD => reply(200, &[("upload-offset", "0"), ("upload-length", "2500")]),
        _ => reply(423, &[]),
    }))
    .await;
    let f = fixture(&server, 2500);
    let error = upload(&f).await.err().unwrap_or_else(|| panic!("uploaded"));
    assert_eq!(
        (error.class(), error.status()),
        (Class::Declined, Some(423))
    );
    assert_eq!(server.count(&Method::PATCH), 4);
}

/// A 429 with `Retry-After: 1` is waited for, though the backoff is a few ms.
#[tokio::test]
async fn retry_after_is_honoured() {
    let limited = Arc::new(Mutex::new(true));
    let server = serve(tus(move |seen| match seen.method {
        Method::HEAD => reply(200, &[("upload-offset", "0"), ("upload-length", "10")]),
        _ => {
            let mut first = limited.lock().unwrap_or_else(PoisonError::into_inner);
            if std::mem::take(&mut *first) {
                reply(429, &[("retry-after", "1")])
            } else {
                took_all(seen)
            }
        }
    }))
    .await;
    let f = fixture(&server, 10);
    let started = std::time::Instant::now();
    upload(&f).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// Records warnings.
#[derive(Default)]
struct Warnings(Mutex<Vec<String>>);

impl chunkd_client::Observer for Warnings {
    fn warning(&self, message: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.to_owned());
    }
}

/// A creation answered with a Location on another origin (here `localhost` for
/// `127.0.0.1`): the caller's headers stay with the endpoint, and a warning says so.
#[tokio::test]
async fn headers_are_not_sent_to_another_origin() {
    let port = Arc::new(Mutex::new(0u16));
    let p = port.clone();
    let server = serve(Arc::new(move |seen: &Seen| match seen.method {
        Method::OPTIONS => reply(200, &[("tus-version", "1.0.0")]),
        Method::POST => {
            let port = *p.lock().unwrap_or_else(PoisonError::into_inner);
            reply(
                201,
                &[("location", &format!("http://localhost:{port}/files/1"))],
            )
        }
        _ => took_all(seen),
    }))
    .await;
    *port.lock().unwrap_or_else(PoisonError::into_inner) =
        server.endpoint.port().unwrap_or_default();
    let f = fixture_with(&server, 2500, |s| {
        s.headers
            .insert("x-token", http::HeaderValue::from_static("secret"));
    });
    let plan = f.client.discover().await.unwrap_or_else(|e| panic!("{e}"));
    let warnings = Arc::new(Warnings::default());
    f.client
        .upload(&f.file, &plan, warnings.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seen = server.seen.lock().unwrap_or_else(PoisonError::into_inner);
    for s in seen.iter() {
        let token = s.headers.contains_key("x-token");
        assert_eq!(token, s.method != Method::PATCH, "{} {}", s.method, s.path);
    }
    let warnings = warnings.0.lock().unwrap_or_else(PoisonError::into_inner);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("-H headers are not sent"),
        "{warnings:?}"
    );
}

/// `--cancel` on a server without termination (DELETE is 405): the upload stays there,
/// but the entry is forgotten.
#[tokio::test]
async fn cancel_without_termination_forgets_the_entry() {
    let server = serve(tus(|_| reply(405, &[]))).await;
    let f = fixture(&server, 10);
    remember(&f, &server, "old");
    let cancelled = f
        .client
        .cancel(&f.file)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("nothing remembered"));
    assert!(!cancelled.terminated);
    assert_eq!(server.count(&Method::DELETE), 1);
    let state = f.client.settings().state.entries();
    assert!(state.unwrap_or_else(|e| panic!("{e}")).is_empty());
}

/// A server that takes one byte per PATCH is given up on after the retries, not after
/// a request per byte.
#[tokio::test]
async fn a_server_taking_a_byte_at_a_time_is_given_up_on() {
    let server = serve(tus(|seen| {
        let offset: u64 = seen
            .headers
            .get("upload-offset")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        reply(204, &[("upload-offset", &(offset + 1).to_string())])
    }))
    .await;
    let f = fixture(&server, 2500);
    protocol_error(upload(&f).await, "takes only 1 of 1000 bytes");
    assert_eq!(server.count(&Method::PATCH), 4);
}

/// With `-H` headers, a redirect from the endpoint to another host is not followed
/// (reqwest would carry headers other than `Authorization` there).
#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_with_headers() {
    let port = Arc::new(Mutex::new(0u16));
    let p = port.clone();
    let server = serve(Arc::new(move |seen: &Seen| match seen.method {
        Method::OPTIONS if seen.path == "/files/" => {
            let port = *p.lock().unwrap_or_else(PoisonError::into_inner);
            reply(
                307,
                &[("location", &format!("http://localhost:{port}/elsewhere/"))],
            )
        }
        _ => reply(200, &[("tus-version", "1.0.0")]),
    }))
    .await;
    *port.lock().unwrap_or_else(PoisonError::into_inner) =
        server.endpoint.port().unwrap_or_default();
    let f = fixture_with(&server, 10, |s| {
        s.headers
            .insert("x-token", http::HeaderValue::from_static("secret"));
    });
    let error = upload(&f).await.err().unwrap_or_else(|| panic!("uploaded"));
    assert_eq!(error.class(), Class::Usage, "{error}");
    assert!(error.to_string().contains("another host"), "{error}");
    assert_eq!(server.count(&Method::OPTIONS), 1);
}
