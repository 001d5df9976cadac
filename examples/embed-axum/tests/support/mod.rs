//! The example binary, started on a free loopback port with a fresh data directory, and
//! an HTTP client to talk to it.
#![allow(clippy::expect_used, dead_code)]

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const ALICE: (&str, &str) = ("alice", "wonderland");
pub const BOB: (&str, &str) = ("bob", "builder");

/// A running app; the process is killed and its data removed when this is dropped.
pub struct App {
    pub origin: String,
    client: Client<HttpConnector, Full<Bytes>>,
    _process: Child,
    _data: tempfile::TempDir,
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("text header"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

impl App {
    /// Starts the binary and waits for the line that says where it listens.
    pub async fn start() -> App {
        let data = tempfile::tempdir().expect("temp dir");
        let mut process = Command::new(env!("CARGO_BIN_EXE_embed-axum"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .args(["--user", &format!("{}:{}", ALICE.0, ALICE.1)])
            .args(["--user", &format!("{}:{}", BOB.0, BOB.1)])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start embed-axum");
        let stdout = process.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(60),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("embed-axum never said where it listens")
        .expect("read stdout");
        let origin = line
            .trim()
            .strip_prefix("embed-axum listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        App {
            origin,
            client,
            _process: process,
            _data: data,
        }
    }

    /// Sends a request to `path` (or to an absolute URL the app handed out).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let uri = match path.starts_with("http") {
            true => path.to_owned(),
            false => format!("{}{path}", self.origin),
        };
        let mut req = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(body.into())).expect("request");
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .expect("no answer in time")
            .expect("request failed");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Signs `(name, password)` in; the `Authorization` header value for its session.
    pub async fn sign_in(&self, (name, password): (&str, &str)) -> String {
        let form = serde_json::json!({ "user": name, "password": password }).to_string();
        let reply = self
            .call(
                Method::POST,
                "/api/sessions",
                &[("content-type", "application/json")],
                form,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "sign-in of {name}");
        let token = reply.json()["token"].as_str().expect("a token").to_owned();
        format!("Bearer {token}")
    }
}
