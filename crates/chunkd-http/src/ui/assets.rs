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
    /// `bytes` unpacked, once a client needed it so.
    plain: OnceLock<Option<Bytes>>,
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
        plain: OnceLock::new(),
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
        if !self.gzipped {
            return answer(
                request,
                etag,
                self.content_type,
                Bytes::from_static(self.bytes),
                None,
            );
        }
        if accepts(request, "gzip") {
            let bytes = Bytes::from_static(self.bytes);
            return answer(request, etag, self.content_type, bytes, Some("gzip"));
        }
        // Unpacked once, for the rare client without gzip.
        let plain = self.plain.get_or_init(|| match unpack(self.bytes) {
            Ok(plain) => Some(Bytes::from(plain)),
            Err(error) => {
                tracing::error!(%error, file = self.name, "an embedded page file does not unpack");
                None
            }
        });
        match plain {
            Some(plain) => answer(
                request,
                etag,
                self.content_type,
                plain.clone(),
                Some("identity"),
            ),
            None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

/// `body` as the answer to a GET or HEAD, or 304 when the client's copy is current.
/// `coding` is the body's content coding where the file has more than one (`identity`
/// for the unpacked one), so caches keep them apart.
pub(super) fn answer(
    request: &HeaderMap,
    etag: &HeaderValue,
    content_type: &'static str,
    body: Bytes,
    coding: Option<&'static str>,
) -> Response {
    let mut response = if current(request, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Body::from(body).into_response()
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
    if let Some(coding) = coding {
        if coding != "identity" {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
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
