//! The absolute URL clients reach this server by, for `Location` headers.

use http::HeaderMap;
use http::header::HOST;

/// How to build absolute upload URLs.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct PublicUrl {
    /// A fixed origin such as `https://uploads.example.com`; wins over request headers.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub base: Option<String>,
    /// Believe `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto` (only behind a
    /// proxy that sets them, or clients could point uploads elsewhere).
    pub trust_forwarded: bool,
}

impl PublicUrl {
    /// [`PublicUrl::origin`] of a request: `https` when it came over TLS.
    pub fn of_request<B>(&self, req: &http::Request<B>) -> String {
        self.of(req.headers(), req.extensions(), req.uri())
    }

    /// [`PublicUrl::of_request`] of a request's head.
    pub fn of_parts(&self, parts: &http::request::Parts) -> String {
        self.of(&parts.headers, &parts.extensions, &parts.uri)
    }

    fn of(&self, headers: &HeaderMap, extensions: &http::Extensions, uri: &http::Uri) -> String {
        let secure = extensions.get::<crate::listener::OverTls>().is_some();
        self.origin_with(
            headers,
            uri.authority().map(|a| a.as_str()),
            if secure { "https" } else { "http" },
        )
    }

    /// `scheme://host[:port]` for a request with these headers, without a trailing
    /// slash; the scheme is `http` unless trusted forwarding headers say otherwise.
    pub fn origin(&self, headers: &HeaderMap, uri_authority: Option<&str>) -> String {
        self.origin_with(headers, uri_authority, "http")
    }

    fn origin_with(
        &self,
        headers: &HeaderMap,
        uri_authority: Option<&str>,
        scheme: &str,
    ) -> String {
        if let Some(base) = &self.base {
            return base.trim_end_matches('/').to_owned();
        }
        let mut proto = scheme.to_owned();
        let mut host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or(uri_authority)
            .filter(|h| valid_host(h))
            .unwrap_or("localhost")
            .to_owned();
        if self.trust_forwarded {
            if let Some((p, h)) = forwarded(headers) {
                if let Some(p) = p {
                    proto = p;
                }
                if let Some(h) = h {
                    host = h;
                }
            } else {
                if let Some(h) = first_value(headers, "x-forwarded-host").filter(|h| valid_host(h))
                {
                    host = h.to_owned();
                }
                if let Some(p) =
                    first_value(headers, "x-forwarded-proto").filter(|p| valid_proto(p))
                {
                    proto = p.to_ascii_lowercase();
                }
            }
        }
        let host = strip_default_port(&host, &proto);
        format!("{proto}://{host}")
    }
}

fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
}

/// `(proto, host)` from the first element of an RFC 7239 `Forwarded` header.
fn forwarded(headers: &HeaderMap) -> Option<(Option<String>, Option<String>)> {
    let first = first_value(headers, "forwarded")?;
    let mut proto = None;
    let mut host = None;
    for pair in first.split(';') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "proto" if valid_proto(v) => proto = Some(v.to_ascii_lowercase()),
            "host" if valid_host(v) => host = Some(v.to_owned()),
            _ => {}
        }
    }
    Some((proto, host))
}

fn valid_proto(p: &str) -> bool {
    p.eq_ignore_ascii_case("http") || p.eq_ignore_ascii_case("https")
}

/// A host is only letters, digits, `.-:` and IPv6 brackets: nothing that could smuggle a
/// path or another header into a URL we hand out.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn strip_default_port(host: &str, proto: &str) -> String {
    let default = if proto == "https" { ":443" } else { ":80" };
    host.strip_suffix(default).unwrap_or(host).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn uses_host_header() {
        let url = PublicUrl::default();
        assert_eq!(
            url.origin(&headers(&[("host", "example.com:80")]), None),
            "http://example.com"
        );
        assert_eq!(
            url.origin(&headers(&[("host", "127.0.0.1:1080")]), None),
            "http://127.0.0.1:1080"
        );
    }

    #[test]
    fn ignores_forwarded_headers_unless_trusted() {
        let h = headers(&[
            ("host", "internal:8080"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            PublicUrl::default().origin(&h, None),
            "http://internal:8080"
        );
        let trusted = PublicUrl {
            base: None,
            trust_forwarded: true,
        };
        assert_eq!(trusted.origin(&h, None), "https://evil.example");
    }

    #[test]
    fn prefers_rfc7239_forwarded() {
        let h = headers(&[
            ("host", "internal"),
            (
                "forwarded",
                "for=1.2.3.4;proto=https;host=\"up.example:443\", for=5.6.7.8",
            ),
        ]);
        let trusted = PublicUrl {
            base: None,
            trust_forwarded: true,
        };
        assert_eq!(trusted.origin(&h, None), "https://up.example");
    }

    #[test]
    fn base_wins_and_bad_hosts_are_refused() {
        let base = PublicUrl {
            base: Some("https://cdn.example/".into()),
            trust_forwarded: false,
        };
        assert_eq!(
            base.origin(&headers(&[("host", "x")]), None),
            "https://cdn.example"
        );
        let h = headers(&[("host", "a/b@evil")]);
        assert_eq!(PublicUrl::default().origin(&h, None), "http://localhost");
    }
}
