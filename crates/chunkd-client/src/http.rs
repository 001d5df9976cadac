//! The HTTP layer under both protocols: one `reqwest` client with the caller's extra
//! headers, and the sorting of every answer into success, worth retrying, or final.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, Response};
use url::Url;

use crate::body::Pulse;
use crate::error::{Error, Result, detail};

/// Redirects followed before the chain counts as a loop.
const MAX_REDIRECTS: usize = 5;
/// How much of an error answer's body is read, and kept for the message.
const MESSAGE_LIMIT: usize = 4096;
/// The longest an error answer's body is waited for.
const MESSAGE_DEADLINE: Duration = Duration::from_secs(5);

/// How long requests may take. Only a stall ends a PATCH, never its length: a large
/// chunk on a slow link takes as long as it takes while bytes keep moving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A PATCH from whose body the connection takes nothing for this long, or whose
    /// answer has not come this long after its last byte, has stalled: a network
    /// failure, retried.
    pub stall: Duration,
    /// The longest any other request (OPTIONS, HEAD, POST, DELETE) takes, its answer
    /// included; then it is a network failure, retried.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            stall: Duration::from_secs(60),
            request: Duration::from_secs(60),
        }
    }
}

/// A failed attempt: worth another try after the server's offset is asked again, or not.
#[derive(Debug)]
pub(crate) enum Fault {
    /// A network failure or 5xx ([`Error::Network`]), or a 408 (timeout), 409 (offset
    /// mismatch), 423 (locked), 429 (too many requests) or 460 (checksum mismatch)
    /// ([`Error::Declined`]); with the wait the server asked for (`Retry-After`), if any.
    Retry(Error, Option<Duration>),
    /// Anything retrying cannot mend.
    Fail(Error),
}

impl From<Error> for Fault {
    fn from(e: Error) -> Self {
        Fault::Fail(e)
    }
}

pub(crate) type Attempt<T> = std::result::Result<T, Fault>;

#[derive(Clone, Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
    /// The caller's headers (tokens), sent only to `origin`.
    headers: HeaderMap,
    origin: url::Origin,
    timeouts: Timeouts,
}

impl Http {
    /// A client sending `headers` to `endpoint`'s origin only: an upload URL elsewhere
    /// (a `Location` on another host) does not get the caller's tokens.
    pub(crate) fn new(endpoint: &Url, headers: HeaderMap, timeouts: Timeouts) -> Result<Http> {
        // reqwest is built without a crypto provider; the workspace's is ring. An
        // already installed one (the embedding program's) is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(redirects(endpoint, !headers.is_empty()))
            .connect_timeout(Duration::from_secs(15))
            // No read timeout: in reqwest it also bounds sending a body, so a chunk that
            // takes longer to send would fail. Deadlines are per request (`send`) and
            // stalls are watched on the body (`send_body`).
            .user_agent(concat!("chunkd-upload/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(format!("HTTP client: {e}")))?;
        Ok(Http {
            client,
            headers,
            origin: endpoint.origin(),
            timeouts,
        })
    }

    pub(crate) fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        let request = self.client.request(method, url.clone());
        if self.same_origin(url) {
            request.headers(self.headers.clone())
        } else {
            request
        }
    }

    /// Whether `url` is on the endpoint's origin (and so gets the caller's headers).
    pub(crate) fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.origin
    }

    /// Whether the caller gave headers of their own.
    pub(crate) fn has_headers(&self) -> bool {
        !self.headers.is_empty()
    }

    /// Sends a request without a streamed body within the request deadline, and sorts
    /// the answer: 2xx is returned, anything else a [`Fault`].
    pub(crate) async fn send(&self, request: RequestBuilder) -> Attempt<Response> {
        self.exchange(request.timeout(self.timeouts.request), true)
            .await
    }

    /// Sends a request with a streamed body (a PATCH) for as long as it keeps moving:
    /// once `pulse` has not beaten for the stall time (nothing taken of the body, or no
    /// answer after its end) it is a network failure, retried.
    pub(crate) async fn send_body(
        &self,
        request: RequestBuilder,
        pulse: &Pulse,
    ) -> Attempt<Response> {
        let stall = self.timeouts.stall;
        let (request, context) = match request.build() {
            Ok(built) => {
                let context = format!("{} {}", built.method(), built.url());
                (
                    RequestBuilder::from_parts(self.client.clone(), built),
                    context,
                )
            }
            Err(e) => return Err(Fault::Fail(Error::Invalid(format!("request: {e}")))),
        };
        let exchange = self.exchange(request, true);
        tokio::pin!(exchange);
        let check = (stall / 4).max(Duration::from_millis(10));
        loop {
            tokio::select! {
                answer = &mut exchange => return answer,
                () = tokio::time::sleep(check) => {
                    if pulse.idle() >= stall {
                        return Err(Fault::Retry(
                            Error::Network {
                                context,
                                message: format!(
                                    "stalled: nothing moved for {} s",
                                    stall.as_secs_f64()
                                ),
                            },
                            None,
                        ));
                    }
                }
            }
        }
    }

    /// Sends a request that must not take effect twice (the final concatenation): only
    /// a failure that shows the server did not act on it (no connection, 408, 423, 429,
    /// 503) is worth another try; any other is final, since the server may have acted.
    pub(crate) async fn send_once(&self, request: RequestBuilder) -> Attempt<Response> {
        self.exchange(request.timeout(self.timeouts.request), false)
            .await
    }

    async fn exchange(&self, request: RequestBuilder, repeatable: bool) -> Attempt<Response> {
        let request = request
            .build()
            .map_err(|e| Fault::Fail(Error::Invalid(format!("request: {e}"))))?;
        let (method, url) = (request.method().to_string(), request.url().to_string());
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| transport(&method, &url, &e, repeatable))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let url = response.url().to_string();
        let after = retry_after(&response);
        let message = message(response).await;
        let retry = if repeatable {
            status.is_server_error() || matches!(status.as_u16(), 408 | 409 | 423 | 429 | 460)
        } else {
            matches!(status.as_u16(), 408 | 423 | 429 | 503)
        };
        if !repeatable && status.is_server_error() && !retry {
            return Err(Fault::Fail(Error::Network {
                context: format!("{method} {url}"),
                message: format!("{status}{}{UNSURE}", detail(&message)),
            }));
        }
        if retry && status.is_server_error() {
            Err(Fault::Retry(
                Error::Network {
                    context: format!("{method} {url}"),
                    message: format!("{status}{}", detail(&message)),
                },
                after,
            ))
        } else if retry {
            Err(Fault::Retry(
                Error::Declined {
                    method,
                    url,
                    status: status.as_u16(),
                    message,
                },
                after,
            ))
        } else {
            Err(Fault::Fail(Error::Refused {
                method,
                url,
                status: status.as_u16(),
                message,
            }))
        }
    }
}

/// A redirect not followed because the request carried the caller's headers (tokens)
/// and the target is on another host.
#[derive(Debug, thiserror::Error)]
#[error("redirected to {0}, another host: not followed, the -H headers stay with the endpoint")]
struct CrossHost(String);

/// Up to [`MAX_REDIRECTS`]; with caller headers, none from the endpoint's origin to
/// another host (reqwest would keep headers other than `Authorization` and `Cookie`).
fn redirects(endpoint: &Url, guard: bool) -> reqwest::redirect::Policy {
    let origin = endpoint.origin();
    let host = endpoint.host_str().map(str::to_owned);
    reqwest::redirect::Policy::custom(move |attempt| {
        let carried = guard
            && attempt
                .previous()
                .first()
                .is_some_and(|u| u.origin() == origin);
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects (a loop?)"))
        } else if carried && attempt.url().host_str().map(str::to_owned) != host {
            let target = attempt.url().to_string();
            attempt.error(CrossHost(target))
        } else {
            attempt.follow()
        }
    })
}

/// Said of a request that must not be repeated and may have taken effect.
const UNSURE: &str = "; it may have been created all the same, so it is not sent again";

fn transport(method: &str, url: &str, e: &reqwest::Error, repeatable: bool) -> Fault {
    let context = format!("{method} {url}");
    if e.is_redirect() {
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            if let Some(cross) = cause.downcast_ref::<CrossHost>() {
                return Fault::Fail(Error::Unsupported(format!("{context}: {cross}")));
            }
            source = cause.source();
        }
        return Fault::Fail(Error::Protocol(format!(
            "{context}: more than {MAX_REDIRECTS} redirects (a loop?)"
        )));
    }
    if e.is_builder() {
        return Fault::Fail(Error::Invalid(format!("{context}: {e}")));
    }
    // Connection refused, reset, timed out, or a body that failed to stream.
    let mut message = e.to_string();
    let mut tls = false;
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        tls |= is_tls(cause);
        source = cause.source();
    }
    let unsure = !repeatable && !e.is_connect();
    if unsure {
        message.push_str(UNSURE);
    }
    let error = Error::Network { context, message };
    if tls || unsure {
        // An untrusted certificate stays untrusted: no retry.
        Fault::Fail(error)
    } else {
        Fault::Retry(error, None)
    }
}

/// The wait an answer asks for (`Retry-After`, in seconds or as an HTTP date), if any.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = text(response, "retry-after")?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Whether `cause` is a TLS failure; io::Errors hide their inner error from `source`,
/// and the connector nests them.
fn is_tls(cause: &(dyn std::error::Error + 'static)) -> bool {
    if cause.is::<rustls::Error>() {
        return true;
    }
    match cause
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => is_tls(inner),
        None => false,
    }
}

/// The start of an error answer's body, read no further than [`MESSAGE_LIMIT`] and for
/// no longer than [`MESSAGE_DEADLINE`] (a body that trickles or never ends is cut).
async fn message(mut response: Response) -> String {
    let mut body = Vec::new();
    let read = async {
        while body.len() < MESSAGE_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MESSAGE_LIMIT - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(MESSAGE_DEADLINE, read).await;
    String::from_utf8_lossy(&body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A header's value as text; a value that is not text counts as absent.
pub(crate) fn text<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name)?.to_str().ok().map(str::trim)
}

/// A non-negative integer header (`Upload-Offset`, `Upload-Length`): absent is `None`,
/// malformed is a protocol error.
pub(crate) fn integer(response: &Response, name: &str) -> Result<Option<u64>> {
    let Some(value) = response.headers().get(name) else {
        return Ok(None);
    };
    let parsed = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok());
    match parsed {
        Some(n) => Ok(Some(n)),
        None => Err(Error::Protocol(format!(
            "{} answered {name}: {:?}, not a non-negative integer",
            response.url(),
            String::from_utf8_lossy(value.as_bytes())
        ))),
    }
}

/// The upload URL a creation answered with, resolved against the answer's own URL
/// (after redirects, as the tus clients do).
pub(crate) fn location(response: &Response) -> Result<Url> {
    let Some(value) = text(response, "location").filter(|v| !v.is_empty()) else {
        return Err(Error::Protocol(format!(
            "{} created an upload ({}) without a Location",
            response.url(),
            response.status()
        )));
    };
    let url = response.url().join(value).map_err(|e| {
        Error::Protocol(format!(
            "{} answered Location {value:?}: {e}",
            response.url()
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Protocol(format!(
            "{} answered Location {value:?}, not an http(s) URL",
            response.url()
        )));
    }
    Ok(url)
}

/// One `Name: value` header as given on the command line.
pub fn parse_header(line: &str) -> Result<(HeaderName, HeaderValue)> {
    let Some((name, value)) = line.split_once(':') else {
        return Err(Error::Invalid(format!(
            "header {line:?}: expected 'Name: value'"
        )));
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        Error::Invalid(format!(
            "header {line:?}: {:?} is no header name",
            name.trim()
        ))
    })?;
    let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
        Error::Invalid(format!(
            "header {line:?}: the value holds a forbidden character"
        ))
    })?;
    if name == reqwest::header::AUTHORIZATION || name == reqwest::header::COOKIE {
        // Kept out of debug output and logs.
        value.set_sensitive(true);
    }
    Ok((name, value))
}

/// Whether a status means the upload is gone, so a fresh one is made.
pub(crate) fn is_gone(error: &Error) -> bool {
    matches!(error.status(), Some(404 | 410))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_command_line_headers() {
        let (name, value) =
            parse_header("Authorization: Bearer abc.def").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(name, "authorization");
        assert_eq!(value, "Bearer abc.def");
        assert!(value.is_sensitive());
        let (name, value) = parse_header("X-Token:  a:b ").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (name.as_str(), value.to_str().ok()),
            ("x-token", Some("a:b"))
        );
    }

    #[test]
    fn refuses_malformed_headers() {
        for line in ["no colon", ": value", "Bad Name: v", "X: a\nb"] {
            assert!(
                matches!(parse_header(line), Err(Error::Invalid(_))),
                "{line:?} was accepted"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_header_line_parses_or_is_refused(line in ".*") {
            let _ = parse_header(&line);
        }

        #[test]
        fn well_formed_headers_round_trip(name in "[A-Za-z][A-Za-z0-9-]{0,20}", value in "[!-~]([ -~]{0,40}[!-~])?") {
            let (n, v) = parse_header(&format!("{name}: {value}")).unwrap_or_else(|e| panic!("{e}"));
            proptest::prop_assert_eq!(n.as_str(), name.to_ascii_lowercase());
            proptest::prop_assert_eq!(v.to_str().ok(), Some(value.as_str()));
        }
    }
}
