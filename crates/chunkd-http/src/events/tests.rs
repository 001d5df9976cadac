#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use chunkd_core::hooks::{HookEvent, Hooks, Rejection, Verdict};
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::{Limits, Uploads};
use http::{HeaderName, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::Config;
use crate::identity::{self, Source};
use crate::test_support::call;

/// Refuses to finish files named `refused.bin`.
struct RefuseSome;

#[async_trait]
impl Hooks for RefuseSome {
    async fn pre_finish(&self, event: &HookEvent) -> Verdict {
        match event.upload.metadata.text("filename") {
            Some("refused.bin") => Verdict::Reject(Rejection::forbidden("not that one")),
            _ => Verdict::Continue,
        }
    }
}

fn app(config: Config) -> (Router, Uploads) {
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .limits(Limits {
            checkpoint_bytes: 1000,
            ..Limits::default()
        })
        .hooks(Arc::new(RefuseSome))
        .build();
    let router = Router::new()
        .merge(crate::tus::router(uploads.clone(), Default::default()))
        .merge(super::router(uploads.clone(), config));
    let identities = identity::Config {
        source: Source::TrustedHeader(HeaderName::from_static("x-user")),
        ..Default::default()
    };
    (identity::identify(router, identities), uploads)
}

/// An open stream: its frames as they come, `(event, data)`.
struct Opened {
    status: StatusCode,
    body: Body,
    buffered: String,
}

async fn open(app: &Router, user: Option<&str>) -> Opened {
    let mut req = Request::get("/events")
        .header("host", "example.com")
        .header("accept", "text/event-stream");
    if let Some(user) = user {
        req = req.header("x-user", user);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    Opened {
        status: response.status(),
        body: response.into_body(),
        buffered: String::new(),
    }
}

impl Opened {
    /// The next event (keep-alive comments skipped); `None` when the stream ended.
    async fn next(&mut self) -> Option<(String, Value)> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(end) = self.buffered.find("\n\n") {
                    let frame: String = self.buffered.drain(..end + 2).collect();
                    let field = |name: &str| {
                        frame
                            .lines()
                            .find_map(|l| l.strip_prefix(name))
                            .map(str::to_owned)
                    };
                    if let (Some(event), Some(data)) = (field("event: "), field("data: ")) {
                        return Some((event, serde_json::from_str(&data).unwrap()));
                    }
                    continue;
                }
                match self.body.frame().await {
                    Some(frame) => {
                        if let Ok(data) = frame.unwrap().into_data() {
                            self.buffered.push_str(std::str::from_utf8(&data).unwrap());
                        }
                    }
                    None => return None,
                }
            }
        })
        .await
        .expect("an event within 10 s")
    }
}

/// Creates a tus upload of `size` bytes named `name` as `user`; returns its path.
async fn create(app: &Router, user: &str, name: &str, size: usize) -> String {
    use base64::Engine as _;
    let filename = base64::engine::general_purpose::STANDARD.encode(name);
    let r = call(
        app,
        "POST",
        "/files/",
        &[
            ("tus-resumable", "1.0.0"),
            ("upload-length", &size.to_string()),
            ("upload-metadata", &format!("filename {filename}")),
            ("x-user", user),
        ],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    r.location_path()
}

async fn append(app: &Router, user: &str, path: &str, offset: usize, data: Vec<u8>) {
    let r = call(
        app,
        "PATCH",
        path,
        &[
            ("tus-resumable", "1.0.0"),
            ("upload-offset", &offset.to_string()),
            ("content-type", "application/offset+octet-stream"),
            ("x-user", user),
        ],
        data,
    )
    .await;
    assert!(r.status.is_success(), "{:?}", r.status);
}

#[tokio::test]
async fn a_stream_shows_the_callers_uploads_and_their_batch_total() {
    let (app, _uploads) = app(Config::default());
    let mut alice = open(&app, Some("alice")).await;
    assert_eq!(alice.status, StatusCode::OK);
    assert_eq!(alice.next().await.unwrap().0, "ready");

    let bobs = create(&app, "bob", "bob.bin", 10).await;
    let first = create(&app, "alice", "a.bin", 3000).await;
    let second = create(&app, "alice", "b.bin", 500).await;
    append(&app, "bob", &bobs, 0, vec![1; 10]).await;
    append(&app, "alice", &first, 0, vec![7; 3000]).await;
    append(&app, "alice", &second, 0, vec![8; 500]).await;

    let mut seen = Vec::new();
    loop {
        let (event, data) = alice.next().await.unwrap();
        assert_ne!(
            data["filename"], "bob.bin",
            "another user's upload was shown"
        );
        let batch = &data["batch"];
        seen.push(format!(
            "{event} {} {} | {}/{} of {}, {} ended",
            data["filename"].as_str().unwrap(),
            data["offset"],
            batch["offset"],
            batch["length"],
            batch["uploads"],
            batch["ended"]
        ));
        if event == "finished" && data["filename"] == "b.bin" {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "created a.bin 0 | 0/3000 of 1, 0 ended",
            "created b.bin 0 | 0/3500 of 2, 0 ended",
            "progress a.bin 1000 | 1000/3500 of 2, 0 ended",
            "progress a.bin 2000 | 2000/3500 of 2, 0 ended",
            "progress a.bin 3000 | 3000/3500 of 2, 0 ended",
            "finished a.bin 3000 | 3000/3500 of 2, 1 ended",
            "progress b.bin 500 | 3500/3500 of 2, 1 ended",
            "finished b.bin 500 | 3500/3500 of 2, 2 ended",
        ]
    );

    // With the batch over, the next upload starts a new one.
    let third = create(&app, "alice", "c.bin", 5).await;
    let (event, data) = alice.next().await.unwrap();
    assert_eq!(
        (event.as_str(), &data["batch"]["uploads"]),
        ("created", &1.into())
    );
    append(&app, "alice", &third, 0, vec![1; 5]).await;
    assert_eq!(alice.next().await.unwrap().0, "progress");
    assert_eq!(alice.next().await.unwrap().0, "finished");
}

#[tokio::test]
async fn refused_and_terminated_uploads_are_failures_with_a_reason() {
    let (app, _uploads) = app(Config::default());
    let mut alice = open(&app, Some("alice")).await;
    assert_eq!(alice.next().await.unwrap().0, "ready");
    let refused = create(&app, "alice", "refused.bin", 4).await;
    let r = call(
        &app,
        "PATCH",
        &refused,
        &[
            ("tus-resumable", "1.0.0"),
            ("upload-offset", "0"),
            ("content-type", "application/offset+octet-stream"),
            ("x-user", "alice"),
        ],
        vec![0; 4],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ended = create(&app, "alice", "gone.bin", 4).await;
    let r = call(
        &app,
        "DELETE",
        &ended,
        &[("tus-resumable", "1.0.0"), ("x-user", "alice")],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    let mut failures = Vec::new();
    while failures.len() < 2 {
        let (event, data) = alice.next().await.unwrap();
        if event == "failed" {
            failures.push(format!("{} {}", data["filename"], data["reason"]));
        }
    }
    assert_eq!(
        failures,
        [
            r#""refused.bin" "refused: not that one""#,
            r#""gone.bin" "terminated""#
        ]
    );
}

#[tokio::test]
async fn anonymous_callers_need_the_setting() {
    let (named_only, _) = app(Config::default());
    let r = call(&named_only, "GET", "/events", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let (app, _) = app(Config {
        anonymous: true,
        ..Config::default()
    });
    let mut stream = open(&app, None).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.next().await.unwrap().0, "ready");
    create(&app, "", "anon.bin", 4).await;
    let (event, data) = stream.next().await.unwrap();
    assert_eq!(
        (event.as_str(), &data["filename"]),
        ("created", &"anon.bin".into())
    );
}

#[tokio::test]
async fn a_client_has_a_bounded_number_of_streams() {
    let (app, _) = app(Config {
        max_streams_per_client: 2,
        ..Config::default()
    });
    let first = open(&app, Some("alice")).await;
    let _second = open(&app, Some("alice")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        open(&app, Some("alice")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(open(&app, Some("bob")).await.status, StatusCode::OK);
    drop(first);
    assert_eq!(open(&app, Some("alice")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn streams_end_when_the_server_shuts_down() {
    let (app, uploads) = app(Config::default());
    let mut stream = open(&app, Some("alice")).await;
    assert_eq!(stream.next().await.unwrap().0, "ready");
    uploads.shutdown();
    assert!(stream.next().await.is_none(), "the stream ended");
}

/// A browser's `EventSource` sends its token in the query; only the stream takes it.
#[tokio::test]
async fn only_the_stream_takes_a_token_from_the_query() {
    use crate::identity::token::tests::{HS256, KEY, rules, token};
    let uploads =
        Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build();
    let router = Router::new()
        .merge(crate::tus::router(uploads.clone(), Default::default()))
        .merge(super::router(uploads.clone(), Config::default()));
    let identities = identity::Config {
        source: Source::Token(rules()),
        ..Default::default()
    };
    let app = identity::identify(router, identities);
    let alice = token(KEY, HS256, r#"{"sub":"alice","exp":9999999999}"#);
    let bearer = format!("Bearer {alice}");
    let created = call(
        &app,
        "POST",
        "/files/",
        &[
            ("tus-resumable", "1.0.0"),
            ("upload-length", "4"),
            ("authorization", &bearer),
        ],
        Body::empty(),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let upload = created.location_path();
    let stream_headers = [("accept", "text/event-stream"), ("tus-resumable", "1.0.0")];

    let opened = app
        .clone()
        .oneshot(
            Request::get(format!("/events?access_token={alice}"))
                .header("accept", "text/event-stream")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    for method in ["HEAD", "GET"] {
        let other = call(
            &app,
            method,
            &format!("{upload}?access_token={alice}"),
            &stream_headers,
            Body::empty(),
        )
        .await;
        assert_eq!(other.status, StatusCode::NOT_FOUND, "{method} as anonymous");
    }
    let forged = call(
        &app,
        "GET",
        &format!("/events?access_token={alice}x"),
        &stream_headers,
        Body::empty(),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let not_a_stream = call(
        &app,
        "GET",
        &format!("/events?access_token={alice}"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(not_a_stream.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_stream_ends_after_its_lifetime() {
    let (app, _) = app(Config {
        max_lifetime: Duration::from_millis(50),
        ..Config::default()
    });
    let mut stream = open(&app, Some("alice")).await;
    assert_eq!(stream.next().await.unwrap().0, "ready");
    assert!(stream.next().await.is_none(), "the stream ended");
}
