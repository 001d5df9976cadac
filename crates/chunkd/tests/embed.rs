//! The engine inside a host: requests handed over as parts, bodies fed in pieces.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use bytes::Bytes;
use chunkd::config::Config;
use chunkd::embed::{Call, Engine};
use sha2::{Digest, Sha256};

fn engine(dir: &std::path::Path) -> std::sync::Arc<Engine> {
    let settings = serde_json::json!({ "data_dir": dir, "auth": { "mode": "app" } });
    Engine::start(&Config::from_settings(&settings, "").unwrap(), None).unwrap()
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "uploads.test")
        .header("tus-resumable", "1.0.0");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap()
}

/// Feeds `body` in `piece`-byte chunks, then reads the whole answer.
fn answer(
    engine: &Engine,
    mut call: Call,
    body: &[u8],
    piece: usize,
) -> (http::response::Parts, Vec<u8>) {
    engine.block_on(async {
        for chunk in body.chunks(piece) {
            if !call.feed(Bytes::copy_from_slice(chunk)).await {
                break;
            }
        }
        let head = call.head().await;
        let mut out = Vec::new();
        while let Some(chunk) = call.next_chunk().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        (head, out)
    })
}

fn header<'a>(head: &'a http::response::Parts, name: &str) -> &'a str {
    head.headers.get(name).unwrap().to_str().unwrap()
}

#[test]
fn a_tus_upload_fed_in_pieces_is_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();

    let create = engine.call(request("POST", "/files/", &[("upload-length", "3000000")]));
    let (head, _) = answer(&engine, create, b"", 1);
    assert_eq!(head.status, 201);
    let location = header(&head, "location").to_owned();
    assert!(
        location.starts_with("http://uploads.test/files/"),
        "{location}"
    );
    let path = location
        .trim_start_matches("http://uploads.test")
        .to_owned();

    // The first half, then a body that ends early: what arrived is kept.
    let half = &data[..1_500_000];
    let patch = |offset: usize, length: usize| {
        engine.call(request(
            "PATCH",
            &path,
            &[
                ("upload-offset", &offset.to_string()),
                ("content-type", "application/offset+octet-stream"),
                ("content-length", &length.to_string()),
            ],
        ))
    };
    let (head, _) = answer(&engine, patch(0, half.len()), half, 65_536);
    assert_eq!(head.status, 204);
    assert_eq!(header(&head, "upload-offset"), "1500000");

    let mut cut = patch(1_500_000, 1_500_000);
    engine.block_on(async {
        assert!(
            cut.feed(Bytes::copy_from_slice(&data[1_500_000..1_600_000]))
                .await
        );
        cut.fail("client went away");
        let _ = cut.head().await;
    });
    let (head, _) = answer(&engine, engine.call(request("HEAD", &path, &[])), b"", 1);
    let offset: usize = header(&head, "upload-offset").parse().unwrap();
    assert!((1_500_000..=1_600_000).contains(&offset), "{offset}");

    let rest = &data[offset..];
    let (head, _) = answer(&engine, patch(offset, rest.len()), rest, 1 << 20);
    assert_eq!(head.status, 204);

    let (head, stored) = answer(&engine, engine.call(request("GET", &path, &[])), b"", 1);
    assert_eq!(head.status, 200);
    assert_eq!(Sha256::digest(&stored), Sha256::digest(&data));
    engine.shutdown();
}

#[test]
fn an_answer_given_before_the_body_stops_the_feeding() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    // No such upload: the engine answers without reading, and says so to the feeder.
    let mut call = engine.call(request(
        "PATCH",
        "/files/nosuchupload",
        &[
            ("upload-offset", "0"),
            ("content-type", "application/offset+octet-stream"),
            ("content-length", "10000000"),
        ],
    ));
    let chunk = Bytes::from(vec![0u8; 1 << 20]);
    let fed = engine.block_on(async {
        let mut fed = 0;
        while call.feed(chunk.clone()).await {
            fed += 1;
            assert!(fed < 10, "the engine kept reading a body it refused");
        }
        fed
    });
    let head = engine.block_on(call.head());
    assert_eq!(head.status, 404);
    assert!(fed < 10);
}

#[test]
fn a_body_cut_short_never_completes_an_upload_of_open_length() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    // IETF draft: the creation's body is the whole file (Upload-Complete: ?1, no length
    // given), so only the body's end says the upload is complete.
    let mut create = engine.call(
        http::Request::builder()
            .method("POST")
            .uri("/uploads")
            .header("host", "uploads.test")
            .header("upload-draft-interop-version", "6")
            .header("upload-complete", "?1")
            .body(())
            .unwrap(),
    );
    let chunk = Bytes::from(vec![7u8; 256 * 1024]);
    let head = engine.block_on(async {
        // Pieces in flight when the body is cut: the cut must not wait its turn.
        for _ in 0..8 {
            assert!(create.feed(chunk.clone()).await);
        }
        create.fail("client went away");
        create.head().await
    });
    // The answer goes to a client that is gone; what counts is what was kept.
    assert_eq!(header(&head, "upload-complete"), "?0", "{head:?}");
    let path = header(&head, "location")
        .trim_start_matches("http://uploads.test")
        .to_owned();
    let probe = http::Request::builder()
        .method("HEAD")
        .uri(path.as_str())
        .header("host", "uploads.test")
        .header("upload-draft-interop-version", "6")
        .body(())
        .unwrap();
    let (head, _) = answer(&engine, engine.call(probe), b"", 1);
    assert_eq!(header(&head, "upload-complete"), "?0");
    assert_eq!(header(&head, "upload-offset"), (8 * 256 * 1024).to_string());
    engine.shutdown();
}
