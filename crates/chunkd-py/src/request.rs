//! A host's request as chunkd's, and chunkd's answer head as the host's: WSGI's text
//! headers are latin-1, its status line needs a reason phrase.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use chunkd_core::Owner;
use chunkd_http::listener::OverTls;

/// What the host knows of a request before its body.
pub(crate) struct Parts<'a> {
    pub method: &'a str,
    /// Path and query, as the client sent them.
    pub uri: &'a str,
    pub headers: &'a [(String, String)],
    /// The host application's user; `None` is anonymous.
    pub owner: Option<&'a str>,
    /// The client's address, `ip:port`, when the host knows it.
    pub peer: Option<&'a str>,
    /// Whether the client reached the host over TLS.
    pub secure: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BadRequest {
    #[error("header {0} has a value that is not latin-1 text")]
    NotLatin1(String),
    #[error(transparent)]
    Http(#[from] http::Error),
}

pub(crate) fn build(parts: Parts<'_>) -> Result<http::Request<()>, BadRequest> {
    let mut request = http::Request::builder().method(parts.method).uri(parts.uri);
    for (name, value) in parts.headers {
        let bytes = latin1(value).ok_or_else(|| BadRequest::NotLatin1(name.clone()))?;
        request = request.header(name.as_str(), bytes);
    }
    let mut request = request.body(())?;
    if let Some(peer) = parts.peer.and_then(|p| p.parse::<SocketAddr>().ok()) {
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    if parts.secure {
        request.extensions_mut().insert(OverTls);
    }
    let owner = match parts.owner.filter(|o| !o.is_empty()) {
        Some(name) => Owner::named(name),
        None => Owner::anonymous(),
    };
    chunkd_http::identity::set_identity(&mut request, Ok(owner));
    Ok(request)
}

/// The status line and the headers of an answer, as WSGI's `start_response` takes
/// them. Hop-by-hop headers are the host's business (PEP 3333).
pub(crate) fn head(head: &http::response::Parts) -> (String, Vec<(String, String)>) {
    let status = head.status;
    let reason = status.canonical_reason().unwrap_or(match status.as_u16() {
        460 => "Checksum Mismatch",
        _ => "Unknown",
    });
    let headers = head
        .headers
        .iter()
        .filter(|(name, _)| !is_hop_by_hop(name.as_str()))
        .map(|(name, value)| {
            let text = value.as_bytes().iter().map(|&b| char::from(b)).collect();
            (name.as_str().to_owned(), text)
        })
        .collect();
    (format!("{} {reason}", status.as_u16()), headers)
}

fn latin1(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}
