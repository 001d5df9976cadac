//! The transports against a real HTTP receiver on loopback and a real command: signed
//! deliveries, answers followed, failures held to the policy, post-events in order.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use chunkd_core::memory::{MemoryState, MemoryStore};
use chunkd_core::testing::{body_of, sample_info};
use chunkd_core::{HookEvent, HookKind, Hooks, NewUpload, Owner, Uploads, Verdict, WriteRequest};
use chunkd_hooks::{HookSettings, OnFailure, TransportHooks};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

const KEY: &str = "a-key-of-sixteen-bytes-or-more";

/// One call the receiver saw: the hook's name, its idempotency key, whether its
/// signature verified.
type Call = (String, String, bool);

#[derive(Clone)]
struct Receiver {
    seen: mpsc::UnboundedSender<Call>,
    answer: Arc<Mutex<(u16, String)>>,
}

fn signature_valid(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(value) = headers
        .get("chunkd-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut t = None;
    let mut signatures = Vec::new();
    for part in value.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_owned()),
            Some(("v1", v)) => signatures.push(v.to_owned()),
            _ => return false,
        }
    }
    let Some(t) = t else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    signatures.contains(&expected)
}

async fn hook(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, String) {
    let name = headers["hook-name"].to_str().unwrap().to_owned();
    let key = headers["idempotency-key"].to_str().unwrap().to_owned();
    let _ = r.seen.send((name, key, signature_valid(&headers, &body)));
    let (status, answer) = r.answer.lock().unwrap().clone();
    (axum::http::StatusCode::from_u16(status).unwrap(), answer)
}

struct Running {
    url: String,
    seen: mpsc::UnboundedReceiver<Call>,
    answer: Arc<Mutex<(u16, String)>>,
}

async fn receiver(status: u16, answer: &str) -> Running {
    let (seen, rx) = mpsc::unbounded_channel();
    let answer = Arc::new(Mutex::new((status, answer.to_owned())));
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(Receiver {
            seen,
            answer: answer.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Running {
        url,
        seen: rx,
        answer,
    }
}

fn settings(url: &str) -> HookSettings {
    HookSettings {
        url: url.to_owned(),
        secrets: vec![KEY.to_owned(), "the-previous-sixteen-byte-key".to_owned()],
        timeout: Duration::from_secs(2),
        retries: 2,
        ..HookSettings::default()
    }
}

fn event(kind: HookKind) -> HookEvent {
    HookEvent {
        kind,
        upload: sample_info(Some(10)),
        access: None,
        location: None,
        request: None,
    }
}

#[tokio::test]
async fn a_signed_pre_hook_answer_is_followed() {
    let mut running = receiver(
        200,
        r#"{"RejectUpload": true, "HTTPResponse": {"StatusCode": 403, "Body": "no"}}"#,
    )
    .await;
    let hooks = TransportHooks::new(settings(&running.url))
        .unwrap()
        .unwrap();
    let Verdict::Reject(r) = hooks.pre_create(&event(HookKind::PreCreate)).await else {
        panic!("not refused");
    };
    assert_eq!((r.status(), r.message()), (403, "no"));
    let (name, _, signed) = running.seen.recv().await.unwrap();
    assert_eq!(name, "pre-create");
    assert!(signed, "the signature verifies with the receiver's key");
}

#[tokio::test]
async fn a_failing_hook_refuses_or_allows_as_configured() {
    let running = receiver(200, "").await;
    // Not JSON, and a 500.
    for (status, body) in [(200, "<html>oops</html>"), (500, "{}")] {
        *running.answer.lock().unwrap() = (status, body.to_owned());
        let refusing = TransportHooks::new(settings(&running.url))
            .unwrap()
            .unwrap();
        let Verdict::Reject(r) = refusing.pre_create(&event(HookKind::PreCreate)).await else {
            panic!("a failure went ahead");
        };
        assert_eq!(r.status(), 503);
        let allowing = TransportHooks::new(HookSettings {
            on_failure: OnFailure::Allow,
            ..settings(&running.url)
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            allowing.pre_create(&event(HookKind::PreCreate)).await,
            Verdict::Continue
        );
    }
    // A listener that never answers: the timeout ends the wait.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let hooks = TransportHooks::new(HookSettings {
        timeout: Duration::from_millis(300),
        ..settings(&url)
    })
    .unwrap()
    .unwrap();
    let Verdict::Reject(r) = hooks.pre_access(&event(HookKind::PreAccess)).await else {
        panic!("a silent hook went ahead");
    };
    assert_eq!(r.status(), 503);
    drop(silent);
}

#[tokio::test]
async fn an_answer_past_the_limit_is_a_failure() {
    let big = format!("{{\"x\": \"{}\"}}", "y".repeat(100_000));
    let running = receiver(200, &big).await;
    let hooks = TransportHooks::new(settings(&running.url))
        .unwrap()
        .unwrap();
    assert!(matches!(
        hooks.pre_create(&event(HookKind::PreCreate)).await,
        Verdict::Reject(r) if r.status() == 503
    ));
}

#[tokio::test]
async fn post_events_arrive_in_order_and_a_retry_keeps_its_key() {
    let mut running = receiver(503, "").await;
    let hooks = TransportHooks::new(HookSettings {
        retry_backoff: Duration::from_millis(20),
        events: ["post-create", "post-receive", "post-finish"]
            .map(String::from)
            .to_vec(),
        ..settings(&running.url)
    })
    .unwrap()
    .unwrap();
    let delivery = hooks.settings().delivery();
    let uploads = Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new()))
        .hooks(Arc::new(hooks))
        .delivery(delivery)
        .build();
    let deliverer = tokio::spawn({
        let uploads = uploads.clone();
        async move { uploads.deliver_events().await }
    });
    let caller = uploads.for_owner(Owner::anonymous());
    let info = caller
        .create(NewUpload {
            length: Some(10),
            ..Default::default()
        })
        .await
        .unwrap();
    let _ = caller
        .write(&info.id, WriteRequest::default(), body_of(b"0123456789", 4))
        .await
        .unwrap();
    // The first delivery fails; its retry carries the same key. Then the receiver works.
    let (first, key, signed) = running.seen.recv().await.unwrap();
    assert_eq!(first, "post-create");
    assert!(signed);
    *running.answer.lock().unwrap() = (200, "{}".to_owned());
    let (again, retry_key, _) = running.seen.recv().await.unwrap();
    assert_eq!(
        (again.as_str(), retry_key.as_str()),
        ("post-create", key.as_str())
    );
    let (second, second_key, _) = running.seen.recv().await.unwrap();
    let (third, _, _) = running.seen.recv().await.unwrap();
    assert_eq!(
        (second.as_str(), third.as_str()),
        ("post-receive", "post-finish")
    );
    assert_ne!(second_key, key, "each event has its own key");
    assert_eq!(uploads.parked_events().await.unwrap(), 0);
    uploads.shutdown();
    deliverer.await.unwrap();
}

#[tokio::test]
async fn a_command_hook_reads_the_event_and_answers_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hook.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         # The event on stdin, the hook's name as $1, the upload in TUS_*.\n\
         input=$(cat)\n\
         case \"$1:$TUS_SIZE:$input\" in\n\
           pre-create:10:*'\"Type\":\"pre-create\"'*) echo '{\"RejectUpload\": true, \"HTTPResponse\": {\"StatusCode\": 409, \"Body\": \"seen\"}}' ;;\n\
           pre-finish:*) exit 3 ;;\n\
           *) echo '{}' ;;\n\
         esac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hooks = TransportHooks::new(HookSettings {
        command: script,
        ..HookSettings::default()
    })
    .unwrap()
    .unwrap();
    let Verdict::Reject(r) = hooks.pre_create(&event(HookKind::PreCreate)).await else {
        panic!("not refused");
    };
    assert_eq!((r.status(), r.message()), (409, "seen"));
    assert!(matches!(
        hooks.pre_finish(&event(HookKind::PreFinish)).await,
        Verdict::Reject(r) if r.status() == 503
    ));
    assert_eq!(
        hooks.pre_terminate(&event(HookKind::PreTerminate)).await,
        Verdict::Continue
    );
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    for bad in [
        HookSettings {
            url: "http://127.0.0.1:1/".into(),
            ..HookSettings::default()
        },
        HookSettings {
            url: "http://127.0.0.1:1/".into(),
            secrets: vec!["short".into()],
            ..HookSettings::default()
        },
        HookSettings {
            url: "ftp://x/".into(),
            secrets: vec![KEY.into()],
            ..HookSettings::default()
        },
        HookSettings {
            command: "/bin/true".into(),
            events: vec!["pre-lunch".into()],
            ..HookSettings::default()
        },
    ] {
        assert!(TransportHooks::new(bad.clone()).is_err(), "{bad:?}");
    }
    assert!(
        TransportHooks::new(HookSettings::default())
            .unwrap()
            .is_none()
    );
}
