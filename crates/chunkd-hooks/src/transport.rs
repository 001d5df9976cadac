//! How a hook event reaches the application: an HTTP POST, or a command's stdin.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chunkd_core::HookEvent;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::signing::{SIGNATURE_HEADER, Signer};

/// Why a hook gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the hook did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the hook could not be reached: {0}")]
    Unreachable(String),
    #[error("the hook answered {0}")]
    Status(u16),
    #[error("the hook's answer is over {0} bytes")]
    TooLarge(usize),
    #[error("the hook command failed: {0}")]
    Command(String),
    #[error("the hook failed: {0}")]
    Receiver(String),
}

/// A hook receiver inside the process (the Python package's hooks object): it gets
/// each event as the webhook's JSON body and answers as a webhook does.
#[async_trait::async_trait]
pub trait Receiver: Send + Sync + 'static {
    /// The answer to the event of `kind` whose JSON is `body`; `key` stays the same
    /// across a post-event's attempts. An error counts as an unreachable hook.
    async fn receive(
        &self,
        kind: chunkd_core::HookKind,
        body: Vec<u8>,
        key: String,
    ) -> Result<Vec<u8>, String>;
}

/// One delivery: the event, its JSON, and the key that stays the same across retries.
pub(crate) struct Delivery<'a> {
    pub event: &'a HookEvent,
    pub body: &'a [u8],
    pub idempotency_key: &'a str,
}

/// Where events go.
#[derive(Clone, Debug)]
pub(crate) enum Transport {
    Webhook(Arc<Webhook>),
    Command(Arc<CommandHook>),
    Receiver(Arc<dyn Receiver>),
}

impl std::fmt::Debug for dyn Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receiver")
    }
}

impl Transport {
    /// The answer's bytes, within `timeout` and `max_answer` bytes.
    pub(crate) async fn call(
        &self,
        delivery: Delivery<'_>,
        timeout: Duration,
        max_answer: usize,
    ) -> Result<Vec<u8>, TransportError> {
        let call = async {
            match self {
                Transport::Webhook(hook) => hook.post(&delivery, max_answer).await,
                Transport::Command(hook) => hook.run(&delivery, max_answer).await,
                Transport::Receiver(hook) => {
                    let answer = hook
                        .receive(
                            delivery.event.kind,
                            delivery.body.to_vec(),
                            delivery.idempotency_key.to_owned(),
                        )
                        .await
                        .map_err(TransportError::Receiver)?;
                    match answer.len() > max_answer {
                        true => Err(TransportError::TooLarge(max_answer)),
                        false => Ok(answer),
                    }
                }
            }
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| TransportError::Timeout(timeout))?
    }
}

/// POSTs each event, signed, to one URL.
pub(crate) struct Webhook {
    url: http::Uri,
    signer: Signer,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("url", &self.url).finish()
    }
}

impl Webhook {
    /// `http://` or `https://` (trusting the system's certificates).
    pub(crate) fn new(url: &str, signer: Signer) -> Result<Webhook, String> {
        let url: http::Uri = url.parse().map_err(|e| format!("hooks.url: {e}"))?;
        if !matches!(url.scheme_str(), Some("http" | "https")) {
            return Err("hooks.url must be an http:// or https:// URL".into());
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Webhook {
            url,
            signer,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    async fn post(
        &self,
        delivery: &Delivery<'_>,
        max_answer: usize,
    ) -> Result<Vec<u8>, TransportError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let request = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("hook-name", delivery.event.kind.name())
            .header("idempotency-key", delivery.idempotency_key)
            .header(SIGNATURE_HEADER, self.signer.sign(now, delivery.body))
            .body(Full::new(Bytes::copy_from_slice(delivery.body)))
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| TransportError::Unreachable(chunkd_core::error::with_causes(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(TransportError::Status(status.as_u16()));
        }
        let body = Limited::new(response.into_body(), max_answer)
            .collect()
            .await
            .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
                Ok(_) => TransportError::TooLarge(max_answer),
                Err(e) => TransportError::Unreachable(e.to_string()),
            })?;
        Ok(body.to_bytes().to_vec())
    }
}

/// Runs a command per event: the hook's name as its argument, `TUS_ID`, `TUS_OFFSET`
/// and `TUS_SIZE` in its environment (as tusd's file hooks), the event JSON on stdin,
/// the answer on stdout. A non-zero exit is a failed hook.
#[derive(Debug)]
pub(crate) struct CommandHook {
    program: PathBuf,
}

impl CommandHook {
    pub(crate) fn new(program: PathBuf) -> CommandHook {
        CommandHook { program }
    }

    async fn run(
        &self,
        delivery: &Delivery<'_>,
        max_answer: usize,
    ) -> Result<Vec<u8>, TransportError> {
        let upload = &delivery.event.upload;
        let failed =
            |e: std::io::Error| TransportError::Command(format!("{}: {e}", self.program.display()));
        let mut child = tokio::process::Command::new(&self.program)
            .arg(delivery.event.kind.name())
            .env("TUS_ID", upload.id.as_str())
            .env("TUS_OFFSET", upload.offset.to_string())
            .env(
                "TUS_SIZE",
                upload.length.map(|l| l.to_string()).unwrap_or_default(),
            )
            .env("CHUNKD_IDEMPOTENCY_KEY", delivery.idempotency_key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // A hook past its timeout is dropped, and with it the process.
            .kill_on_drop(true)
            .spawn()
            .map_err(failed)?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| TransportError::Command("no stdin".into()))?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| TransportError::Command("no stdout".into()))?;
        let body = delivery.body.to_vec();
        // Written beside the read, so a command that answers before reading all of a
        // large event never blocks on a full pipe.
        let write = async move {
            // A command that ignores its input closes the pipe early: not an error.
            let _ = stdin.write_all(&body).await;
        };
        let read = async {
            let mut answer = Vec::new();
            (&mut stdout)
                .take(max_answer as u64 + 1)
                .read_to_end(&mut answer)
                .await
                .map_err(failed)?;
            Ok::<_, TransportError>(answer)
        };
        let ((), answer) = tokio::join!(write, read);
        let answer = answer?;
        if answer.len() > max_answer {
            return Err(TransportError::TooLarge(max_answer));
        }
        let status = child.wait().await.map_err(failed)?;
        if !status.success() {
            return Err(TransportError::Command(format!(
                "{} exited with {status}",
                self.program.display()
            )));
        }
        Ok(answer)
    }
}
