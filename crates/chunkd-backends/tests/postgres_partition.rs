//! A lock holder cut off from PostgreSQL stops its request before another instance can
//! take the lease: past half the lease's lifetime without a renewal, it lets go. In a
//! test binary of its own: the cut is a proxy between this process and the database.
#![cfg(feature = "postgres")]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use chunkd_backends::{Pg, PgConfig, PgLocker};
use chunkd_core::{Locker, UploadId};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test-all.sh"))
}

/// A TCP proxy to `target` that can be cut: every connection through it drops, and new
/// ones are refused, as in a network partition.
async fn proxy(target: String) -> (u16, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cut, cut_rx) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            let mut stopped = cut_rx.clone();
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopped.wait_for(|cut| *cut) => return,
            };
            let Ok((mut client, _)) = accepted else {
                return;
            };
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = stopped.wait_for(|cut| *cut) => {}
                }
            });
        }
    });
    (port, cut)
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-all.sh starts it"]
async fn a_holder_cut_off_from_the_database_lets_go() {
    let url = env("CHUNKD_TEST_PG_URL");
    // postgres://user@host:port/db: the proxy stands in for host:port.
    let (head, rest) = url.split_once('@').unwrap();
    let (addr, db) = rest.split_once('/').unwrap();
    let (port, cut) = proxy(addr.to_owned()).await;
    let config = PgConfig {
        url: format!("{head}@127.0.0.1:{port}/{db}"),
        pool_size: 2,
        ..PgConfig::default()
    };
    let pg = Pg::connect(&config).await.expect("pg through the proxy");
    let ttl = Duration::from_secs(2);
    let locker = PgLocker::new(pg, ttl);
    let mut held = locker
        .lock(&UploadId::generate(), Duration::from_secs(5))
        .await
        .expect("lock");
    let contended = held.take_contended();

    cut.send_replace(true);
    // Bounded: a holder that keeps writing without its lease fails the test here.
    tokio::time::timeout(ttl * 5, contended)
        .await
        .expect("the holder kept its request running without a renewed lease");
}
