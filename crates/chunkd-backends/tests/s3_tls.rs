//! The S3 store speaks https: it trusts a private CA named by `ca_file` and refuses a
//! certificate it has no reason to trust. The service is s3s-fs (started by
//! `scripts/test-all.sh`) behind a TLS terminator with a fresh self-signed certificate,
//! as a proxy in front of a private MinIO or Ceph would be.
#![cfg(feature = "s3")]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chunkd_backends::s3::MIN_PART_SIZE;
use chunkd_backends::{S3Config, S3Store};
use chunkd_core::error::with_causes;
use chunkd_core::testing::{body_of, collect, pattern, sample_info};
use chunkd_core::{DataStore, UploadId};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::Digest;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run scripts/test-all.sh, or eval \"$(scripts/services.sh start)\""
        )
    })
}

/// A TLS terminator on loopback that passes the decrypted bytes to s3s-fs. Returns its
/// address and the CA certificate (PEM) that vouches for it.
async fn tls_front() -> (SocketAddr, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(certified.cert.der().to_vec())],
        key,
    )
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let backend = env("CHUNKD_TEST_S3_ENDPOINT")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to do.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut plain = TcpStream::connect(&backend).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (addr, certified.cert.pem())
}

fn config(addr: SocketAddr, ca_file: Option<PathBuf>) -> S3Config {
    S3Config {
        endpoint: format!("https://{addr}"),
        bucket: format!("t{}", UploadId::generate()),
        region: "us-east-1".into(),
        access_key: env("CHUNKD_TEST_S3_ACCESS_KEY"),
        secret_key: env("CHUNKD_TEST_S3_SECRET_KEY"),
        prefix: String::new(),
        part_size: MIN_PART_SIZE,
        virtual_host: false,
        create_bucket: false,
        ca_file,
        ..S3Config::default()
    }
}

#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn uploads_over_https_trusting_a_private_ca() {
    let (addr, ca) = tls_front().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let store = S3Store::new(config(addr, Some(ca_file))).unwrap();
    store.ensure_bucket().await.expect("bucket over https");
    // One whole part and a tail: UploadPart, the staging object and completion.
    let data = pattern(MIN_PART_SIZE as usize + 12_345, 41);
    let mut info = sample_info(Some(data.len() as u64));
    info.store = store.create(&info).await.expect("create");
    let written = store
        .write(&info, body_of(&data, 65_536))
        .await
        .expect("write");
    info.offset = written.bytes;
    info.store = written.store;
    info.store = store.finish(&info).await.expect("finish");
    let stored = collect(store.read(&info, 0..data.len() as u64).await.unwrap()).await;
    assert_eq!(sha2::Sha256::digest(&stored), sha2::Sha256::digest(&data));
}

#[tokio::test]
#[ignore = "needs an S3 service: scripts/test-all.sh starts one"]
async fn refuses_a_certificate_nobody_vouches_for() {
    let (addr, _) = tls_front().await;
    let store = S3Store::new(config(addr, None)).unwrap();
    let err = store
        .ensure_bucket()
        .await
        .expect_err("the self-signed certificate is not trusted");
    let text = with_causes(&err);
    assert!(
        text.contains("certificate"),
        "the error names the certificate: {text}"
    );
}

#[test]
fn a_ca_file_without_certificates_is_a_settings_error() {
    let dir = tempfile::tempdir().unwrap();
    let settings = |ca_file: PathBuf| S3Config {
        endpoint: "https://127.0.0.1:9".into(),
        bucket: "b".into(),
        region: "us-east-1".into(),
        access_key: "k".into(),
        secret_key: "s".into(),
        prefix: String::new(),
        part_size: MIN_PART_SIZE,
        virtual_host: false,
        create_bucket: false,
        ca_file: Some(ca_file),
        ..S3Config::default()
    };
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, "not a certificate\n").unwrap();
    let err = S3Store::new(settings(ca_file)).expect_err("no certificate in the file");
    assert!(with_causes(&err).contains("no PEM certificate"), "{err:?}");
    let err = S3Store::new(settings(dir.path().join("missing.pem"))).expect_err("missing file");
    assert!(with_causes(&err).contains("missing.pem"), "{err:?}");
}
