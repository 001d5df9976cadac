//! The request behind hook events, described once for every front end. Every header is
//! kept, credentials too (an application authorizing uploads in its pre-create hook
//! reads them, as with tusd); transports choose which to send.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use chunkd_core::{Caller, RequestInfo};
use http::{Extensions, HeaderMap, Method, Uri};

/// The parts of a request hooks are told about.
pub(crate) struct Described<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub extensions: &'a Extensions,
}

impl<'a> From<&'a http::request::Parts> for Described<'a> {
    fn from(parts: &'a http::request::Parts) -> Self {
        Described {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            extensions: &parts.extensions,
        }
    }
}

impl<'a, B> From<&'a http::Request<B>> for Described<'a> {
    fn from(req: &'a http::Request<B>) -> Self {
        Described {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }
}

/// Most header values passed on, so a request with thousands of headers costs a hook
/// event no more than this.
const MAX_VALUES: usize = 100;

/// `caller` acting for `request`, when a hook listens.
pub(crate) fn describe<'a>(
    caller: Caller,
    request: impl Into<Described<'a>>,
    protocol: &'static str,
) -> Caller {
    if !caller.engine().hooks_listen() {
        return caller;
    }
    let request = request.into();
    let caller = match request.extensions.get::<crate::finish_reply::Slot>() {
        Some(slot) => caller.answering_into(slot.0.clone()),
        None => caller,
    };
    caller.with_request(request_info(request, protocol))
}

fn request_info(parts: Described<'_>, protocol: &'static str) -> RequestInfo {
    let mut headers: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in parts.headers.iter().take(MAX_VALUES) {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.iter_mut().find(|(n, _)| n == name.as_str()) {
            Some((_, values)) => values.push(value),
            None => headers.push((name.as_str().to_owned(), vec![value])),
        }
    }
    RequestInfo {
        protocol: protocol.to_owned(),
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        remote_addr: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.to_string()),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_kept_and_repeated_ones_gather() {
        let (mut parts, ()) = http::Request::patch("/files/abc?x=1")
            .header("Authorization", "Bearer secret")
            .header("Cookie", "s=1")
            .header("X-Tag", "a")
            .header("X-Tag", "b")
            .header("Upload-Offset", "5")
            .body(())
            .unwrap()
            .into_parts();
        parts
            .extensions
            .insert(ConnectInfo("127.0.0.1:4000".parse::<SocketAddr>().unwrap()));
        let info = request_info((&parts).into(), "tus");
        assert_eq!(info.method, "PATCH");
        assert_eq!(info.uri, "/files/abc?x=1");
        assert_eq!(info.remote_addr.as_deref(), Some("127.0.0.1:4000"));
        assert_eq!(
            info.headers,
            vec![
                ("authorization".to_owned(), vec!["Bearer secret".to_owned()]),
                ("cookie".to_owned(), vec!["s=1".to_owned()]),
                ("x-tag".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
                ("upload-offset".to_owned(), vec!["5".to_owned()]),
            ]
        );
    }

    #[test]
    fn a_flood_of_headers_is_cut() {
        let mut builder = http::Request::get("/");
        for i in 0..1000 {
            builder = builder.header(format!("x-{i}"), "v");
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        assert_eq!(
            request_info((&parts).into(), "tus").headers.len(),
            MAX_VALUES
        );
    }
}
