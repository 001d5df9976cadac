//! Signed S3 requests over hyper, with retries for the failures S3 asks clients to
//! retry (5xx, throttling, dropped connections) and errors reported inside a 200.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rusty_s3::S3Action;
use url::Url;

use super::chunks::Chunks;

/// How long a signature made for one of our own requests stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub(crate) enum S3Error {
    #[error("S3 answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("S3 request failed: {0}")]
    Transport(String),
    #[error("S3 answered 200 with an error: {0}")]
    ErrorInBody(String),
    #[error("unexpected S3 answer: {0}")]
    Unexpected(String),
    #[error("invalid S3 settings: {0}")]
    Settings(String),
}

impl S3Error {
    pub(crate) fn status(&self) -> Option<StatusCode> {
        match self {
            S3Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            S3Error::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            // CompleteMultipartUpload may fail with an InternalError inside a 200.
            S3Error::ErrorInBody(body) => {
                body.contains("InternalError") || body.contains("SlowDown")
            }
            S3Error::Transport(_) => true,
            _ => false,
        }
    }
}

impl From<S3Error> for chunkd_core::Error {
    fn from(e: S3Error) -> Self {
        chunkd_core::Error::backend("s3", e)
    }
}

/// A request ready to send: a presigned URL, the headers it was signed with, a body.
pub(crate) struct Signed {
    method: http::Method,
    url: Url,
    headers: HeaderMap,
    body: Chunks,
}

impl Signed {
    pub(crate) fn new<'a, A: S3Action<'a>>(mut action: A, body: impl Into<Chunks>) -> Signed {
        let mut headers = HeaderMap::new();
        for (name, value) in action.headers_mut().iter() {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::try_from(name),
                http::HeaderValue::try_from(value),
            ) {
                headers.insert(name, value);
            }
        }
        Signed {
            method: http::Method::from_bytes(A::METHOD.to_str().as_bytes())
                .unwrap_or(http::Method::GET),
            url: action.sign(SIGNED_FOR),
            headers,
            body: body.into(),
        }
    }

    /// An unsigned header (S3 does not require `Range` to be signed).
    pub(crate) fn with_header(mut self, name: http::HeaderName, value: &str) -> Self {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }
}

#[derive(Clone, Debug)]
pub(crate) struct S3Client {
    http: Client<HttpsConnector<HttpConnector>, Chunks>,
}

impl S3Client {
    /// Speaks `http://` and `https://`; TLS trusts the system's root certificates and
    /// those in `ca_file` (PEM), for services with a private CA.
    pub(crate) fn new(ca_file: Option<&Path>) -> Result<S3Client, S3Error> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| S3Error::Settings(format!("TLS: {e}")))?
        .with_root_certificates(root_certificates(ca_file)?)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        // hyper's connector refuses https:// URLs unless told otherwise; TLS is ours.
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(S3Client {
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    fn request(&self, signed: &Signed) -> Result<Request<Chunks>, S3Error> {
        let mut req = Request::builder()
            .method(signed.method.clone())
            .uri(signed.url.as_str());
        for (name, value) in &signed.headers {
            req = req.header(name, value);
        }
        req.body(signed.body.clone())
            .map_err(|e| S3Error::Settings(e.to_string()))
    }

    /// Sends, retrying with backoff, and returns the response with its body unread
    /// (for streaming reads). A non-2xx answer is an error.
    pub(crate) async fn send_streaming(
        &self,
        signed: &Signed,
    ) -> Result<Response<Incoming>, S3Error> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let outcome = match self.http.request(self.request(signed)?).await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                        .unwrap_or_default();
                    S3Error::Status { status, body }
                }
                Err(e) => S3Error::Transport(chunkd_core::error::with_causes(&e)),
            };
            if attempt >= ATTEMPTS || !outcome.retryable() {
                return Err(outcome);
            }
            tracing::debug!(error = %outcome, attempt, "retrying S3 request");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    /// Sends and reads the whole answer: headers and body. A 200 whose body is an
    /// `<Error>` document is an error, and retried like a 5xx when S3 says so.
    pub(crate) async fn send(&self, signed: &Signed) -> Result<(HeaderMap, Bytes), S3Error> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let response = self.send_streaming(signed).await?;
            let headers = response.headers().clone();
            let outcome = match response.into_body().collect().await {
                Ok(body) => {
                    let body = body.to_bytes();
                    if body.starts_with(b"<?xml") && find(&body, b"<Error>") {
                        S3Error::ErrorInBody(String::from_utf8_lossy(&body).into_owned())
                    } else {
                        return Ok((headers, body));
                    }
                }
                Err(e) => S3Error::Transport(e.to_string()),
            };
            if attempt >= ATTEMPTS || !outcome.retryable() {
                return Err(outcome);
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }
}

fn root_certificates(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, S3Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: a private CA may be all that's needed.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(path) = ca_file {
        let settings = |e: &dyn std::fmt::Display| {
            S3Error::Settings(format!("ca_file {}: {e}", path.display()))
        };
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| settings(&e))? {
            roots
                .add(cert.map_err(|e| settings(&e))?)
                .map_err(|e| settings(&e))?;
            added += 1;
        }
        if added == 0 {
            return Err(settings(&"holds no PEM certificate"));
        }
    }
    Ok(roots)
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
