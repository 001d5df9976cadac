//! Engine events relayed between instances through PostgreSQL: one instance's uploads
//! reach another's event subscribers, without store bookkeeping, trimmed to fit, and
//! never across deployments in other schemas. Needs a server (`scripts/test-all.sh`).
#![cfg(feature = "postgres")]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chunkd_backends::{Pg, PgConfig, PgEventRelay, PgState};
use chunkd_core::memory::MemoryStore;
use chunkd_core::testing::body_of;
use chunkd_core::{Event, Limits, NewUpload, Owner, UploadId, Uploads, WriteRequest};
use tokio::sync::broadcast;

const LONG: Duration = Duration::from_secs(20);

async fn fresh_pg() -> Pg {
    let config = PgConfig {
        url: std::env::var("CHUNKD_TEST_PG_URL")
            .expect("CHUNKD_TEST_PG_URL: run scripts/test-all.sh"),
        schema: format!("r{}", UploadId::generate()),
        pool_size: 4,
        ..PgConfig::default()
    };
    Pg::connect(&config).await.expect("pg")
}

/// An instance on `pg`, its relay listening and taking the others' events in.
async fn instance(pg: &Pg) -> Uploads {
    let relay = Arc::new(PgEventRelay::new(pg.clone()));
    tokio::time::timeout(LONG, relay.listening())
        .await
        .expect("listening");
    let uploads = Uploads::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(PgState::new(pg.clone())),
    )
    .relay(relay)
    .limits(Limits {
        checkpoint_bytes: 1000,
        ..Limits::default()
    })
    .build();
    tokio::spawn({
        let uploads = uploads.clone();
        async move { uploads.relay_events().await }
    });
    uploads
}

/// The events about `id`, until it finished.
async fn until_finished(events: &mut broadcast::Receiver<Event>, id: &UploadId) -> Vec<Event> {
    tokio::time::timeout(LONG, async {
        let mut seen = Vec::new();
        loop {
            let event = events.recv().await.expect("events");
            if &event.upload().id != id {
                continue;
            }
            let finished = matches!(event, Event::Finished(_));
            seen.push(event);
            if finished {
                return seen;
            }
        }
    })
    .await
    .expect("the upload's events in time")
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-all.sh starts it"]
async fn one_instances_uploads_reach_the_others_subscribers() {
    let pg = fresh_pg().await;
    let here = instance(&pg).await;
    let there = instance(&pg).await;
    let elsewhere = instance(&fresh_pg().await).await;
    let mut heard_here = here.events();
    let mut heard_elsewhere = elsewhere.events();
    let mut own = there.events();

    let caller = there.for_owner(Owner::named("alice"));
    let mut new = NewUpload {
        length: Some(2500),
        ..Default::default()
    };
    new.metadata.insert("filename", "relayed.bin");
    // Too much to relay whole: only the file's name goes.
    new.metadata.insert("note", vec![b'x'; 9000]);
    let info = caller.create(new).await.expect("create");
    let written = caller
        .write(
            &info.id,
            WriteRequest::default(),
            body_of(&vec![5; 2500], 500),
        )
        .await
        .expect("write");
    assert!(written.info.is_finished());

    let relayed = until_finished(&mut heard_here, &info.id).await;
    let kinds: Vec<String> = relayed
        .iter()
        .map(|e| match e {
            Event::Created(_) => "created".to_owned(),
            Event::Progress(i) => format!("progress {}", i.offset),
            Event::Finished(i) => format!("finished {}", i.offset),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "progress 1000",
            "progress 2000",
            "progress 2500",
            "finished 2500"
        ]
    );
    for event in &relayed {
        let upload = event.upload();
        assert_eq!(upload.owner.as_deref(), Some("alice"));
        assert!(upload.store.is_empty(), "store bookkeeping stays home");
        assert_eq!(upload.metadata.text("filename"), Some("relayed.bin"));
        assert_eq!(upload.metadata.get("note"), None);
    }
    // The instance that did it heard it once, from itself.
    assert_eq!(
        until_finished(&mut own, &info.id).await.len(),
        relayed.len()
    );
    assert!(own.try_recv().is_err(), "its own events came back");
    assert!(
        heard_elsewhere.try_recv().is_err(),
        "a deployment in another schema heard them"
    );
}
