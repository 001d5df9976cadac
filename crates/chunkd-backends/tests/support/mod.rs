//! What the S3 test files share: the test service's settings and stores on it.
#![allow(dead_code, clippy::expect_used)]

use chunkd_backends::s3::MIN_PART_SIZE;
use chunkd_backends::{S3Config, S3Store};
use chunkd_core::{DataStore, UploadId, UploadInfo};
use futures::StreamExt;

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run scripts/test-all.sh, or eval \"$(scripts/services.sh start)\""
        )
    })
}

/// The test service's settings for `bucket`, with 5 MiB parts under `uploads/`.
pub fn s3_config(bucket: &str) -> S3Config {
    S3Config {
        endpoint: env("CHUNKD_TEST_S3_ENDPOINT"),
        bucket: bucket.to_owned(),
        region: "us-east-1".into(),
        access_key: env("CHUNKD_TEST_S3_ACCESS_KEY"),
        secret_key: env("CHUNKD_TEST_S3_SECRET_KEY"),
        prefix: "uploads/".into(),
        part_size: MIN_PART_SIZE,
        virtual_host: false,
        create_bucket: false,
        ca_file: None,
        ..S3Config::default()
    }
}

/// A store on a bucket of its own.
pub async fn fresh_store() -> S3Store {
    let store = store_on(&format!("b{}", UploadId::generate()));
    store.ensure_bucket().await.expect("bucket");
    store
}

/// Another store instance on `bucket`, as another process has: nothing shared in memory.
pub fn store_on(bucket: &str) -> S3Store {
    S3Store::new(s3_config(bucket)).expect("s3 store")
}

pub async fn read_all(store: &S3Store, info: &UploadInfo, range: std::ops::Range<u64>) -> Vec<u8> {
    let mut stream = store.read(info, range).await.expect("read");
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    out
}

pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(data))
}
