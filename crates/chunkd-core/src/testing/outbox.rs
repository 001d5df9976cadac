//! [`StateStore`] outbox contract cases.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::sample_info;
use crate::error::Error;
use crate::hooks::{HookEvent, HookKind, Location, RequestInfo};
use crate::state::{OutboxEvent, StateStore};
use crate::upload::UploadInfo;

const HOLD: Duration = Duration::from_secs(30);

fn event(kind: HookKind, info: &UploadInfo) -> HookEvent {
    HookEvent {
        kind,
        upload: info.clone(),
        access: None,
        location: Some(Location::Object {
            bucket: "b".into(),
            key: format!("k/{}", info.id),
        }),
        request: Some(Arc::new(RequestInfo {
            protocol: "tus".into(),
            method: "PATCH".into(),
            uri: "/files/x".into(),
            remote_addr: Some("127.0.0.1:9".into()),
            headers: vec![("x-a".into(), vec!["1".into(), "2".into()])],
        })),
    }
}

fn described(claimed: &[OutboxEvent]) -> Vec<(String, &'static str, u64)> {
    claimed
        .iter()
        .map(|o| {
            (
                o.event.upload.id.to_string(),
                o.event.kind.name(),
                o.event.upload.offset,
            )
        })
        .collect()
}

async fn claim(state: &Arc<dyn StateStore>, at: SystemTime) -> Vec<OutboxEvent> {
    state.claim_events(at, HOLD, 100).await.expect("claim")
}

/// An event is saved with its change, whole (request and location included), and not
/// when the change fails.
pub async fn outbox_event_commits_with_its_change(state: Arc<dyn StateStore>) {
    let mut info = sample_info(Some(10));
    info.metadata.insert("filename", "a.txt");
    let created = event(HookKind::PostCreate, &info);
    state
        .insert_with_event(&info, Some(&created))
        .await
        .expect("insert");
    assert!(matches!(
        state.insert_with_event(&info, Some(&created)).await,
        Err(Error::AlreadyExists(_))
    ));
    let mut stale = info.clone();
    stale.revision = 7;
    assert!(matches!(
        state
            .update_with_event(&stale, Some(&event(HookKind::PostFinish, &stale)))
            .await,
        Err(Error::Conflict)
    ));
    let mut missing = sample_info(None);
    missing.revision = 3;
    assert!(matches!(
        state
            .remove_with_event(
                &missing.id,
                Some(3),
                Some(&event(HookKind::PostTerminate, &missing))
            )
            .await,
        Ok(()) | Err(Error::NotFound(_))
    ));
    let claimed = claim(&state, SystemTime::now()).await;
    let ours: Vec<_> = claimed
        .iter()
        .filter(|o| o.event.upload.id == info.id)
        .collect();
    assert_eq!(ours.len(), 1, "{:?}", described(&claimed));
    let got = &ours[0];
    assert_eq!(got.event.kind, HookKind::PostCreate);
    assert_eq!(got.attempts, 0);
    assert_eq!(got.event.upload.metadata.text("filename"), Some("a.txt"));
    assert_eq!(got.event.location, created.location);
    assert_eq!(got.event.request, created.request);
    assert!(!got.key.is_empty());
}

/// Each upload's events go out one at a time, oldest first; other uploads' are not held
/// back.
pub async fn outbox_hands_out_each_uploads_events_in_order(state: Arc<dyn StateStore>) {
    let a = sample_info(Some(1));
    let b = sample_info(Some(1));
    state
        .insert_with_event(&a, Some(&event(HookKind::PostCreate, &a)))
        .await
        .expect("insert a");
    state
        .insert_with_event(&b, Some(&event(HookKind::PostCreate, &b)))
        .await
        .expect("insert b");
    let mut done = a.clone();
    done.offset = 1;
    let done = state
        .update_with_event(&done, Some(&event(HookKind::PostFinish, &done)))
        .await
        .expect("finish a");
    state
        .remove_with_event(
            &a.id,
            Some(done.revision),
            Some(&event(HookKind::PostTerminate, &done)),
        )
        .await
        .expect("remove a");
    let now = SystemTime::now();
    let first = claim(&state, now).await;
    assert_eq!(
        described(&first),
        [
            (a.id.to_string(), "post-create", 0),
            (b.id.to_string(), "post-create", 0)
        ]
    );
    assert!(
        claim(&state, now).await.is_empty(),
        "held events went out twice"
    );
    state
        .event_delivered(first[0].seq)
        .await
        .expect("delivered");
    let next = claim(&state, now).await;
    assert_eq!(described(&next), [(a.id.to_string(), "post-finish", 1)]);
    state.event_delivered(next[0].seq).await.expect("delivered");
    let last = claim(&state, now).await;
    assert_eq!(described(&last), [(a.id.to_string(), "post-terminate", 1)]);
    assert_ne!(first[0].key, next[0].key);
}

/// Progress not yet handed out is folded into one event, the newest; once handed out,
/// newer progress is a new event after it.
pub async fn outbox_coalesces_progress_not_yet_handed_out(state: Arc<dyn StateStore>) {
    let mut info = sample_info(Some(100));
    state.insert(&info).await.expect("insert");
    for offset in [10, 20, 30] {
        info.offset = offset;
        info = state
            .update_with_event(&info, Some(&event(HookKind::PostReceive, &info)))
            .await
            .expect("update");
    }
    let now = SystemTime::now();
    let first = claim(&state, now).await;
    assert_eq!(
        described(&first),
        [(info.id.to_string(), "post-receive", 30)]
    );
    info.offset = 40;
    info = state
        .update_with_event(&info, Some(&event(HookKind::PostReceive, &info)))
        .await
        .expect("update");
    info.offset = 50;
    state
        .update_with_event(&info, Some(&event(HookKind::PostReceive, &info)))
        .await
        .expect("update");
    assert!(claim(&state, now).await.is_empty());
    state
        .event_delivered(first[0].seq)
        .await
        .expect("delivered");
    let next = claim(&state, now).await;
    assert_eq!(
        described(&next),
        [(info.id.to_string(), "post-receive", 50)]
    );
    assert_ne!(next[0].key, first[0].key);
}

/// A failed event is due again at its retry time, with its key and its count; a parked
/// one is counted and no longer holds back the upload's later events, and goes out
/// again when replayed; an event whose holder died goes out again once the hold runs
/// out.
pub async fn outbox_retries_parks_and_outlives_its_holder(state: Arc<dyn StateStore>) {
    let info = sample_info(Some(1));
    state
        .insert_with_event(&info, Some(&event(HookKind::PostCreate, &info)))
        .await
        .expect("insert");
    let parked_before = state.parked_events().await.expect("parked");
    let now = SystemTime::now();
    let first = claim(&state, now).await;
    assert_eq!(first.len(), 1);
    // The holder dies: after the hold, it is handed out again, same key.
    let again = claim(&state, now + HOLD + Duration::from_secs(1)).await;
    assert_eq!(described(&again), described(&first));
    assert_eq!(again[0].key, first[0].key);

    let retry_at = now + Duration::from_secs(60);
    state
        .event_failed(first[0].seq, retry_at, false)
        .await
        .expect("failed");
    assert!(
        claim(&state, now + Duration::from_secs(59))
            .await
            .is_empty()
    );
    let retried = claim(&state, retry_at).await;
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].attempts, &retried[0].key), (1, &first[0].key));

    let mut done = info.clone();
    done.offset = 1;
    state
        .update_with_event(&done, Some(&event(HookKind::PostFinish, &done)))
        .await
        .expect("finish");
    state
        .event_failed(retried[0].seq, retry_at, true)
        .await
        .expect("parked");
    assert_eq!(
        state.parked_events().await.expect("parked"),
        parked_before + 1
    );
    let after = claim(&state, retry_at).await;
    assert_eq!(described(&after), [(info.id.to_string(), "post-finish", 1)]);
    state
        .event_delivered(after[0].seq)
        .await
        .expect("delivered");

    // Replayed (the receiver mended): due at once, attempts from zero, the same key.
    let replayed = state.replay_parked(retry_at).await.expect("replay");
    assert!(replayed >= 1, "{replayed}");
    let back: Vec<OutboxEvent> = claim(&state, retry_at)
        .await
        .into_iter()
        .filter(|o| o.event.upload.id == info.id)
        .collect();
    assert_eq!(described(&back), [(info.id.to_string(), "post-create", 0)]);
    assert_eq!((back[0].attempts, &back[0].key), (0, &first[0].key));
}
