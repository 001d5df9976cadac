//! The page's files, embedded in the binary. The vendored bundle is stored gzipped
//! (a quarter of its size), sent as it is to the browsers that accept gzip (all of
//! them) and unpacked for a client that does not.

use std::io::Read as _;
use std::sync::OnceLock;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

/// The page, with `{{title}}`, `{{assets}}`, `{{version}}` and `{{settings}}` to fill in.
pub(super) const PAGE: &str = include_str!("../../ui/page/index.html");

/// Tells a browser's cache which build its copies came from.
pub(super) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One file under the page's `ui/` folder.
pub(super) struct Asset {
    pub name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// `bytes` is gzip, to be unpacked for clients that do not accept it.
    gzipped: bool,
    etag: OnceLock<HeaderValue>,
}

const fn asset(
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    gzipped: bool,
) -> Asset {
    Asset {
        name,
        content_type,
        bytes,
        gzipped,
        etag: OnceLock::new(),
    }
}

static APP_JS: Asset = asset(
    "app.js",
    "text/javascript; charset=utf-8",
    include_bytes!("../../ui/page/app.js"),
    false,
);
static APP_CSS: Asset = asset(
    "app.css",
    "text/css; charset=utf-8",
    include_bytes!("../../ui/page/app.css"),
    false,
);
static UPPY_JS: Asset = asset(
    "uppy.js",
    "text/javascript; charset=utf-8",
    include_bytes!("../../ui/vendor/uppy.js.gz"),
    true,
);
static UPPY_CSS: Asset = asset(
    "uppy.css",
    "text/css; charset=utf-8",
    include_bytes!("../../ui/vendor/uppy.css.gz"),
    true,
);
static LICENSES: Asset = asset(
    "THIRD-PARTY-LICENSES.txt",
    "text/plain; charset=utf-8",
    include_bytes!("../../ui/vendor/THIRD-PARTY-LICENSES.txt"),
    false,
);

/// Every file, each at `{assets}/{name}`.
pub(super) static ALL: [&Asset; 5] = [&APP_JS, &APP_CSS, &UPPY_JS, &UPPY_CSS, &LICENSES];

/// A weak validator of `bytes` (weak: the gzipped and the unpacked body share it).
pub(super) fn etag(bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::try_from(format!("W/\"{hex}\"")).unwrap_or(HeaderValue::from_static("W/\"0\""))
}

impl Asset {
    pub(super) fn serve(&self, request: &HeaderMap) -> Response {
        let etag = self.etag.get_or_init(|| etag(self.bytes));
        let encoding = self.gzipped.then_some("gzip");
        let bytes = Bytes::from_static(self.bytes);
        Self::respond(request, etag, self.content_type, bytes, encoding)
    }

    /// `bytes` (encoded as `encoding`) as the answer to a GET or HEAD, or 304 when the
    /// client's copy is current.
    pub(super) fn respond(
        request: &HeaderMap,
        etag: &HeaderValue,
        content_type: &'static str,
        bytes: Bytes,
        encoding: Option<&'static str>,
    ) -> Response {
        let mut response = if current(request, etag) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            match encoding {
                Some(coding) if accepts(request, coding) => {
                    let mut r = Body::from(bytes).into_response();
                    r.headers_mut()
                        .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
                    r
                }
                Some(_) => match unpack(&bytes) {
                    Ok(plain) => Body::from(plain).into_response(),
                    Err(error) => {
                        tracing::error!(%error, "an embedded page file does not unpack");
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                },
                None => Body::from(bytes).into_response(),
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag.clone());
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        // Revalidated on each load (a 304 is cheap), so a new build shows at once.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if encoding.is_some() {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        response
    }
}

/// Whether `If-None-Match` names `etag` (weakly compared, as GET allows) or is `*`.
fn current(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag
        .as_bytes()
        .strip_prefix(b"W/")
        .unwrap_or(etag.as_bytes());
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == ours)
}

/// Whether `Accept-Encoding` takes `coding` (listed, and not with `q=0`).
fn accepts(request: &HeaderMap, coding: &str) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
        })
}

fn unpack(gzipped: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut plain = Vec::with_capacity(gzipped.len() * 4);
    flate2::read::GzDecoder::new(gzipped).read_to_end(&mut plain)?;
    Ok(plain)
}
