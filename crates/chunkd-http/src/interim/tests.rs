//! Socket-level tests: a real listener, [`serve`], and a client writing and reading raw
//! bytes, so what reaches the wire is what is checked.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use tokio::sync::oneshot;

use super::{Interim, InterimError};

fn location(value: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("location", HeaderValue::from_static(value));
    headers
}

/// Sends a 104 before touching the body, then one 104 per body chunk with the count so
/// far, then answers with the total.
async fn announce_then_count(req: Request) -> Response {
    let Some(interim) = Interim::of(&req) else {
        return (StatusCode::OK, "no interim").into_response();
    };
    if interim
        .send(StatusCode::from_u16(104).unwrap(), &location("/u/1"))
        .await
        .is_err()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let progress = req.headers().contains_key("x-progress");
    let mut body = req.into_body().into_data_stream();
    let mut total = 0usize;
    while let Some(Ok(chunk)) = body.next().await {
        total += chunk.len();
        if progress {
            let mut headers = HeaderMap::new();
            headers.insert("upload-offset", HeaderValue::from(total));
            let _ = interim
                .send(StatusCode::from_u16(104).unwrap(), &headers)
                .await;
        }
    }
    (StatusCode::CREATED, format!("got {total}")).into_response()
}

async fn refuses_final_status(req: Request) -> String {
    let interim = Interim::of(&req).expect("HTTP/1.1 requests carry a handle");
    match interim.send(StatusCode::OK, &HeaderMap::new()).await {
        Err(InterimError::NotInterim(s)) => format!("refused {s}"),
        other => format!("unexpected {other:?}"),
    }
}

/// Larger than what loopback socket buffers hold, so hyper is still writing it.
const BIG: usize = 16 << 20;

async fn big(_: Request) -> Body {
    Body::from(vec![b'x'; BIG])
}

/// A refusal made from the headers alone, as a tus 409 or a drf 400 is.
async fn refuses_unread(_: http::HeaderMap) -> StatusCode {
    StatusCode::CONFLICT
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(super::ConnectionLimits::default()).await
    }

    async fn start_with(limits: super::ConnectionLimits) -> Server {
        let app = Router::new()
            .route("/interim", post(announce_then_count))
            .route("/refuse", get(refuses_final_status))
            .route("/big", get(big))
            .route("/unread", post(refuses_unread))
            .route("/ok", get(|| async { "ok" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(super::serve_with(listener, app, limits, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn connect(&self) -> Client {
        // A small receive window makes a large response back up into the server.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        let stream = socket.connect(self.addr).await.unwrap();
        Client {
            stream: BufReader::new(stream),
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

struct Client {
    stream: BufReader<TcpStream>,
}

/// One response head as it came off the wire.
#[derive(Debug)]
struct Head {
    raw: String,
    status: u16,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.raw.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl Client {
    async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    async fn head(&mut self) -> Head {
        let mut raw = String::new();
        loop {
            let mut line = String::new();
            let n = self.stream.read_line(&mut line).await.unwrap();
            assert!(n > 0, "connection closed inside a head: {raw:?}");
            raw.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let status = raw[9..12].parse().unwrap();
        Head { raw, status }
    }

    async fn body(&mut self, head: &Head) -> Vec<u8> {
        let len: usize = head.header("content-length").unwrap().parse().unwrap();
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await.unwrap();
        body
    }
}

#[tokio::test]
async fn interim_response_arrives_before_the_body_is_sent() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    client
        .send(b"POST /interim HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\n")
        .await;
    // The body has not been sent: this 104 can only come from the running handler.
    let interim = client.head().await;
    assert_eq!(
        interim.raw,
        "HTTP/1.1 104 Upload Resumption Supported\r\nlocation: /u/1\r\n\r\n"
    );
    client.send(b"hello").await;
    let last = client.head().await;
    assert_eq!(last.status, 201);
    assert_eq!(client.body(&last).await, b"got 5");
    server.stop().await;
}

#[tokio::test]
async fn progress_interim_responses_interleave_with_the_request_body() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    client
        .send(
            b"POST /interim HTTP/1.1\r\nhost: t\r\nx-progress: 1\r\n\
              transfer-encoding: chunked\r\n\r\n",
        )
        .await;
    assert_eq!(client.head().await.status, 104);
    for (i, piece) in ["abc", "defgh", "ij"].iter().enumerate() {
        client
            .send(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes())
            .await;
        // Each piece is acknowledged before the next one leaves the client.
        let progress = client.head().await;
        assert_eq!(progress.status, 104, "piece {i}");
        let expected = [3, 8, 10][i].to_string();
        assert_eq!(progress.header("upload-offset"), Some(expected.as_str()));
        assert_eq!(progress.header("location"), None);
    }
    client.send(b"0\r\n\r\n").await;
    let last = client.head().await;
    assert_eq!(last.status, 201);
    assert_eq!(client.body(&last).await, b"got 10");
    server.stop().await;
}

#[tokio::test]
async fn expect_continue_gets_both_interim_responses_whole() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    client
        .send(
            b"POST /interim HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\n\
              content-length: 3\r\n\r\n",
        )
        .await;
    let first = client.head().await;
    let second = client.head().await;
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [100, 104], "{first:?} {second:?}");
    client.send(b"abc").await;
    let last = client.head().await;
    assert_eq!(last.status, 201);
    assert_eq!(client.body(&last).await, b"got 3");
    server.stop().await;
}

#[tokio::test]
async fn interim_waits_for_the_previous_response_to_leave_whole() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    // Pipelined: a 16 MiB response the client does not read yet, then an upload whose
    // handler sends a 104 while that response may still be stuck in the socket.
    client
        .send(
            b"GET /big HTTP/1.1\r\nhost: t\r\n\r\n\
              POST /interim HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\nok",
        )
        .await;
    let big = client.head().await;
    assert_eq!(big.status, 200);
    let body = client.body(&big).await;
    assert!(body.len() == BIG && body.iter().all(|&b| b == b'x'));
    let interim = client.head().await;
    assert_eq!(interim.status, 104);
    assert_eq!(interim.header("location"), Some("/u/1"));
    let last = client.head().await;
    assert_eq!(last.status, 201);
    assert_eq!(client.body(&last).await, b"got 2");
    server.stop().await;
}

#[tokio::test]
async fn http_1_0_requests_get_no_handle() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    client
        .send(b"POST /interim HTTP/1.0\r\nhost: t\r\ncontent-length: 0\r\n\r\n")
        .await;
    let head = client.head().await;
    assert!(head.raw.starts_with("HTTP/1.0 200"), "{head:?}");
    assert_eq!(client.body(&head).await, b"no interim");
    server.stop().await;
}

#[tokio::test]
async fn final_statuses_are_not_sent_as_interim() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    client
        .send(b"GET /refuse HTTP/1.1\r\nhost: t\r\n\r\n")
        .await;
    let head = client.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(client.body(&head).await, b"refused 200 OK");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_the_running_request_finish() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    client
        .send(b"POST /interim HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\n\r\n")
        .await;
    assert_eq!(client.head().await.status, 104);
    let Server { stop, task, .. } = server;
    let _ = stop.unwrap().send(());
    client.send(b"done").await;
    let last = client.head().await;
    assert_eq!(last.status, 201);
    assert_eq!(client.body(&last).await, b"got 4");
    task.await.unwrap().unwrap();
}

/// hyper itself flushes a response before it reads the next request, so the boundary
/// rule is checked on the socket wrapper directly: bytes written but not flushed are an
/// unfinished message, and an interim response waits for them.
#[tokio::test]
async fn interim_never_lands_inside_unflushed_output() {
    use super::io::InterimIo;

    let (server_side, mut client_side) = tokio::io::duplex(1 << 16);
    let (mut io, sink) = InterimIo::new(server_side);
    let interim = Interim { sink };
    io.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel")
        .await
        .unwrap();
    let headers = location("/u/2");
    let mut send = Box::pin(interim.send(StatusCode::from_u16(104).unwrap(), &headers));
    assert!(futures::poll!(&mut send).is_pending());
    io.write_all(b"lo").await.unwrap();
    io.flush().await.unwrap();
    send.await.unwrap();
    drop(headers);
    drop(io);
    drop(interim);
    let mut wire = String::new();
    client_side.read_to_string(&mut wire).await.unwrap();
    assert_eq!(
        wire,
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello\
         HTTP/1.1 104 Upload Resumption Supported\r\nlocation: /u/2\r\n\r\n"
    );
}

/// A refusal answered before a small body was read leaves the connection usable: a
/// pooled client's next request on it is answered.
#[tokio::test]
async fn a_refused_small_body_is_drained_and_the_connection_kept() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    let body = vec![b'b'; 100_000];
    let mut request = format!(
        "POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    client.send(&request).await;
    let refused = client.head().await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.header("connection"), None, "{refused:?}");
    client.body(&refused).await;
    client.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let next = client.head().await;
    assert_eq!(next.status, 200);
    assert_eq!(client.body(&next).await, b"ok");
    server.stop().await;
}

/// A body too large to drain is not read: the answer says `Connection: close`, so no
/// client sends another request on a connection about to close.
#[tokio::test]
async fn a_refused_large_body_answers_connection_close() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    let sent = super::leftover::DRAIN_LIMIT as usize + 50_000;
    let mut request =
        b"POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n".to_vec();
    request.extend_from_slice(&vec![b'b'; sent]);
    client.send(&request).await;
    let refused = client.head().await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.header("connection"), Some("close"), "{refused:?}");
    server.stop().await;
}

/// A connection that never finishes its headers, or never sends a byte, is closed after
/// the header read timeout instead of being held forever.
#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let limits = super::ConnectionLimits {
        header_read_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let server = Server::start_with(limits).await;
    for sent in [&b"POST /interim HTTP/1.1\r\nHost: x\r\nX-Slow"[..], b""] {
        let mut client = server.connect().await;
        client.send(sent).await;
        let started = std::time::Instant::now();
        // Meanwhile another client is served (its latency printed, not asserted).
        let mut other = server.connect().await;
        other
            .send(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let head = other.head().await;
        assert_eq!(
            (head.status, other.body(&head).await),
            (200, b"ok".to_vec())
        );
        eprintln!("another client served in {:?}", started.elapsed());
        let mut rest = Vec::new();
        // Bounded: a server that never closes fails the test instead of hanging it.
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            client.stream.read_to_end(&mut rest),
        )
        .await;
        assert!(closed.is_ok(), "still open after {sent:?}");
        eprintln!(
            "closed {:?} after sending {} bytes",
            started.elapsed(),
            sent.len()
        );
    }
    server.stop().await;
}

/// At the connection limit, a new connection waits until one closes, then is served.
#[tokio::test]
async fn connections_past_the_limit_wait_for_a_free_slot() {
    let limits = super::ConnectionLimits {
        max_connections: 1,
        ..Default::default()
    };
    let server = Server::start_with(limits).await;
    let mut first = server.connect().await;
    first.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let head = first.head().await;
    assert_eq!(first.body(&head).await, b"ok");
    let mut second = server.connect().await;
    second.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // The first connection is still open (keep-alive), so the second is not served yet
    // (a wait that can only fail when the limit is broken, never when it holds); the
    // first one's next request still is.
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), second.head()).await;
    assert!(early.is_err(), "served past the limit: {early:?}");
    first
        .send(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let head = first.head().await;
    assert_eq!(first.body(&head).await, b"ok");
    let head = second.head().await;
    assert_eq!(
        (head.status, second.body(&head).await),
        (200, b"ok".to_vec())
    );
    server.stop().await;
}
