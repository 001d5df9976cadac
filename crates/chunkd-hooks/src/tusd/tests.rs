use std::sync::Arc;

use chunkd_core::testing::sample_info;
use chunkd_core::{ConcatKind, HookEvent, HookKind, Location, RequestInfo, Verdict};
use serde_json::{Value, json};

use super::{AnswerError, delivered, request_body, verdict};

fn event(kind: HookKind) -> HookEvent {
    let mut upload = sample_info(None);
    upload.id = "abc".parse().unwrap();
    upload.offset = 7;
    upload.owner = Some("alice".into());
    upload.metadata.insert("filename", "a.txt");
    upload.concat = ConcatKind::Final(vec!["p1".parse().unwrap(), "p2".parse().unwrap()]);
    HookEvent {
        kind,
        upload,
        access: None,
        location: Some(Location::Object {
            bucket: "b".into(),
            key: "up/abc".into(),
        }),
        request: Some(Arc::new(RequestInfo {
            protocol: "tus".into(),
            method: "POST".into(),
            uri: "/files/".into(),
            remote_addr: Some("127.0.0.1:5000".into()),
            headers: vec![
                ("upload-length".into(), vec!["10".into()]),
                ("authorization".into(), vec!["Bearer t".into()]),
            ],
        })),
    }
}

#[test]
fn the_request_is_tusds_hook_json_with_chunkds_additions() {
    let body = request_body(&event(HookKind::PreCreate), &|_| true);
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json,
        json!({
            "Type": "pre-create",
            "Event": {
                "Upload": {
                    "ID": "abc", "Size": 0, "SizeIsDeferred": true, "Offset": 7,
                    "MetaData": {"filename": "a.txt"},
                    "IsPartial": false, "IsFinal": true, "PartialUploads": ["p1", "p2"],
                    "Storage": {"Type": "s3store", "Bucket": "b", "Key": "up/abc"}
                },
                "HTTPRequest": {
                    "Method": "POST", "URI": "/files/", "RemoteAddr": "127.0.0.1:5000",
                    "Header": {"Upload-Length": ["10"], "Authorization": ["Bearer t"]}
                },
                "Protocol": "tus",
                "Identity": "alice"
            }
        })
    );
}

#[test]
fn only_the_chosen_headers_are_passed_on() {
    let body = request_body(&event(HookKind::PreCreate), &|name| name == "upload-length");
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json["Event"]["HTTPRequest"]["Header"],
        json!({"Upload-Length": ["10"]})
    );
}

#[test]
fn rejections_take_the_answers_status_and_body_or_tusds_defaults() {
    let answer =
        br#"{"RejectUpload": true, "HTTPResponse": {"StatusCode": 403, "Body": "not you"}}"#;
    let Verdict::Reject(r) = verdict(HookKind::PreCreate, answer).unwrap() else {
        panic!("not rejected");
    };
    assert_eq!((r.status(), r.message()), (403, "not you"));
    let Verdict::Reject(r) =
        verdict(HookKind::PreTerminate, br#"{"RejectTermination": true}"#).unwrap()
    else {
        panic!("not rejected");
    };
    assert_eq!(
        (r.status(), r.message()),
        (400, "upload termination has been rejected by server")
    );
    // A "refusal" with a success status keeps the default refusal status.
    let answer = br#"{"RejectAccess": true, "HTTPResponse": {"StatusCode": 200}}"#;
    let Verdict::Reject(r) = verdict(HookKind::PreAccess, answer).unwrap() else {
        panic!("not rejected");
    };
    assert_eq!(r.status(), 403);
    // A flag for another hook rejects nothing.
    assert_eq!(
        verdict(HookKind::PreCreate, br#"{"RejectTermination": true}"#).unwrap(),
        Verdict::Continue
    );
}

#[test]
fn empty_and_unknown_answers_go_ahead_and_garbage_is_an_error() {
    assert_eq!(
        verdict(HookKind::PreCreate, b"").unwrap(),
        Verdict::Continue
    );
    assert_eq!(
        verdict(HookKind::PreCreate, b"{}").unwrap(),
        Verdict::Continue
    );
    assert_eq!(
        verdict(HookKind::PreFinish, br#"{"Something": [1, 2]}"#).unwrap(),
        Verdict::Continue
    );
    assert!(matches!(
        verdict(HookKind::PreCreate, b"<html>"),
        Err(AnswerError::NotJson(_))
    ));
    assert!(matches!(
        verdict(HookKind::PreCreate, br#"{"RejectUpload": "yes"}"#),
        Err(AnswerError::NotJson(_))
    ));
}

#[test]
fn pre_create_may_choose_the_id_and_the_metadata_but_not_an_unsafe_id() {
    let answer = br#"{"ChangeFileInfo": {"ID": "chosen-1", "MetaData": {"filename": "b.txt"}}}"#;
    let Verdict::Change(changes) = verdict(HookKind::PreCreate, answer).unwrap() else {
        panic!("no change");
    };
    assert_eq!(changes.id.unwrap().as_str(), "chosen-1");
    assert_eq!(changes.metadata.unwrap().text("filename"), Some("b.txt"));
    for id in ["../etc", "a/b", "x y"] {
        let answer = format!(r#"{{"ChangeFileInfo": {{"ID": "{id}"}}}}"#);
        assert!(
            matches!(
                verdict(HookKind::PreCreate, answer.as_bytes()),
                Err(AnswerError::BadId(_))
            ),
            "{id}"
        );
    }
    // A place, a size and an expiry are passed on for the store and the engine to check.
    let answer = br#"{"ChangeFileInfo": {"Storage": {"Key": "u/a.bin", "Bucket": "b"},
        "MaxSize": 100, "ExpireAfter": 60}}"#;
    let Verdict::Change(changes) = verdict(HookKind::PreCreate, answer).unwrap() else {
        panic!("no change");
    };
    let placement = changes.placement.unwrap();
    assert_eq!(
        (
            placement.path,
            placement.key.as_deref(),
            placement.bucket.as_deref()
        ),
        (None, Some("u/a.bin"), Some("b"))
    );
    assert_eq!(changes.max_size, Some(100));
    assert_eq!(
        changes.expire_after,
        Some(std::time::Duration::from_secs(60))
    );
    assert!(matches!(
        verdict(
            HookKind::PreCreate,
            br#"{"ChangeFileInfo": {"Storage": {"Path": 7}}}"#
        ),
        Err(AnswerError::NotJson(_))
    ));
    // Changes are pre-create's alone.
    assert_eq!(
        verdict(HookKind::PreFinish, &answer[..]).unwrap(),
        Verdict::Continue
    );
}

#[test]
fn a_refusal_carries_the_hooks_headers_but_not_framing_or_protocol_ones() {
    let answer = br#"{"RejectUpload": true, "HTTPResponse": {"StatusCode": 429,
        "Body": "slow down", "Header": {"Retry-After": "30", "Content-Length": "0",
        "Tus-Resumable": "0.1", "Bad Name": "x", "X-Quota": "line\nbreak"}}}"#;
    let Verdict::Reject(r) = verdict(HookKind::PreCreate, answer).unwrap() else {
        panic!("not refused");
    };
    assert_eq!((r.status(), r.message()), (429, "slow down"));
    assert_eq!(r.headers(), [("Retry-After".to_owned(), "30".to_owned())]);
}

#[test]
fn a_post_event_answer_means_something_only_when_it_stops_the_upload() {
    use chunkd_core::Delivered;
    assert_eq!(delivered(br#"{"StopUpload": true}"#), Delivered::StopUpload);
    for noted in [
        &b""[..],
        b"ok",
        br#"{"StopUpload": false}"#,
        br#"{"StopUpload": "yes"}"#,
        br#"{"RejectUpload": true}"#,
    ] {
        assert_eq!(delivered(noted), Delivered::Noted, "{noted:?}");
    }
}

#[test]
fn a_pre_finish_http_response_becomes_the_completing_requests_reply() {
    let answer = json!({"HTTPResponse": {
        "StatusCode": 418,
        "Body": "{\"thumbnail\":\"t.png\"}",
        "Header": {"Content-Type": "application/json", "X-Processed": "yes", "Upload-Offset": "0"}
    }});
    let Verdict::Reply(reply) =
        verdict(HookKind::PreFinish, answer.to_string().as_bytes()).unwrap()
    else {
        panic!("not a reply");
    };
    assert_eq!(
        reply.headers(),
        [("X-Processed".to_owned(), "yes".to_owned())]
    );
    assert_eq!(
        reply.body(),
        Some(("{\"thumbnail\":\"t.png\"}", Some("application/json")))
    );
    // Nothing to say, or a rejection: not a reply.
    assert_eq!(
        verdict(HookKind::PreFinish, br#"{"HTTPResponse": {}}"#).unwrap(),
        Verdict::Continue
    );
    let refused = br#"{"RejectUpload": true, "HTTPResponse": {"StatusCode": 422, "Body": "no"}}"#;
    assert!(matches!(
        verdict(HookKind::PreFinish, refused).unwrap(),
        Verdict::Reject(r) if r.status() == 422
    ));
}

/// An answer that says two things does the safe one: a refusal wins, and what a hook may
/// not change where it was asked is not changed.
#[test]
fn contradictory_answers_refuse_or_change_nothing() {
    let both =
        br#"{"RejectUpload": true, "ChangeFileInfo": {"ID": "mine", "Storage": {"Path": "x"}}}"#;
    assert!(matches!(
        verdict(HookKind::PreCreate, both).unwrap(),
        Verdict::Reject(r) if r.status() == 400
    ));
    let change = br#"{"ChangeFileInfo": {"ID": "mine", "MetaData": {"a": "b"}}}"#;
    for kind in [
        HookKind::PreAccess,
        HookKind::PreFinish,
        HookKind::PreTerminate,
    ] {
        assert_eq!(
            verdict(kind, change).unwrap(),
            Verdict::Continue,
            "{kind:?}"
        );
    }
    // Rejecting an access with RejectTermination, or the other way round, is no refusal.
    assert_eq!(
        verdict(HookKind::PreTerminate, br#"{"RejectUpload": true}"#).unwrap(),
        Verdict::Continue
    );
}
