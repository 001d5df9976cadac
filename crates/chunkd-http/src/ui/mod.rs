//! The upload page people open in a browser: Uppy's Dashboard (vendored, pinned, see
//! `scripts/refresh-ui-assets.sh`) on chunkd's own endpoints, served from the binary.
//!
//! The page is one exact route (`/` by default) and its files live under `{page}ui/`.
//! What the page needs to know (endpoints, the size limit, the protocol to speak) is
//! written into it as a JSON data block, so it makes no request before the user acts.
//! It carries no identity of its own: its requests to the upload endpoints carry the
//! caller's (a token handed to it in the URL fragment, or what a proxy adds).

mod assets;
pub mod finished;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use serde::Serialize;

/// Which of chunkd's endpoints the page uploads through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[serde(rename_all = "lowercase")]
pub enum PageProtocol {
    /// tus 1.0 at the tus path.
    #[default]
    Tus,
    /// The IETF resumable-upload draft at the IETF path.
    Ietf,
    /// Browser-direct to the S3 bucket through the `s3_multipart` endpoints.
    S3,
}

/// Settings of the upload page.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Serve the page at all.
    pub enabled: bool,
    /// Where the page is; its files are under `{path}ui/` (`{path}/ui/` without the slash).
    pub path: String,
    /// The protocol the page speaks.
    pub protocol: PageProtocol,
    /// Bytes per request (tus and IETF); 0 sends each file in one request, which the
    /// server checkpoints as it arrives.
    pub chunk_size: u64,
    /// The heading and the window title.
    pub title: String,
    /// Origins that may show the page in a frame (`https://app.example.com`), besides
    /// its own.
    pub frame_ancestors: Vec<String>,
    /// The endpoints and limits the page works against, filled in by the server.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub endpoints: Endpoints,
}

/// What the server tells the page about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// The tus creation URL path (downloads are under it too).
    pub tus: String,
    /// The IETF draft's creation path.
    pub ietf: String,
    /// The browser-direct endpoints' base path (`{s3}/multipart`).
    pub s3: String,
    /// The largest upload the server takes, if limited.
    pub max_size: Option<u64>,
    /// Whether requests must carry a bearer token (`auth.mode = "token"`).
    pub token: bool,
    /// Origins besides the page's own that upload URLs may name (a configured public
    /// URL); the page may connect to them.
    #[serde(skip)]
    pub origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            path: "/".to_owned(),
            protocol: PageProtocol::Tus,
            chunk_size: 0,
            title: "Upload files".to_owned(),
            frame_ancestors: Vec::new(),
            endpoints: Endpoints::default(),
        }
    }
}

impl Config {
    /// The folder the page's files are served from: `{path}ui`.
    pub fn assets_path(&self) -> String {
        format!("{}ui", base(&self.path))
    }
}

/// `path` with one trailing slash.
fn base(path: &str) -> String {
    if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    }
}

/// The settings block written into the page.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageSettings<'a> {
    protocol: PageProtocol,
    chunk_size: u64,
    #[serde(flatten)]
    endpoints: &'a Endpoints,
}

struct Page {
    html: Bytes,
    etag: HeaderValue,
    policy: HeaderValue,
}

/// The page and its files, or nothing when the page is turned off.
pub fn router<S>(config: Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    if !config.enabled {
        return Router::new();
    }
    let page = Arc::new(render(&config));
    let assets = config.assets_path();
    let mut router = Router::new().route(&config.path, get(serve_page).with_state(page));
    for asset in assets::ALL {
        router = router.route(
            &format!("{assets}/{}", asset.name),
            get(move |headers: HeaderMap| async move { asset.serve(&headers) }),
        );
    }
    crate::accounting::account(router, "ui")
}

fn render(config: &Config) -> Page {
    let settings = PageSettings {
        protocol: config.protocol,
        chunk_size: config.chunk_size,
        endpoints: &config.endpoints,
    };
    // `<` escaped keeps a path like `</script>` inside the data block.
    let settings = serde_json::to_string(&settings)
        .unwrap_or_else(|_| "{}".to_owned())
        .replace('<', "\\u003c");
    let html = fill(
        assets::PAGE,
        &[
            ("title", &escape_html(&config.title)),
            ("assets", &escape_html(&config.assets_path())),
            ("version", assets::VERSION),
            ("settings", &settings),
        ],
    );
    let etag = assets::etag(html.as_bytes());
    Page {
        html: Bytes::from(html),
        etag,
        policy: policy(config),
    }
}

/// `template` with each `{{name}}` replaced, in one pass: a value holding `{{...}}` stays
/// as it is.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}").and_then(|end| {
            values
                .iter()
                .find(|(name, _)| *name == &after[..end])
                .map(|v| (end, v.1))
        }) {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Scripts only from the server itself; requests only to it and the origins its upload
/// URLs may name, or anywhere in the S3 mode (the bucket's origin, virtual-hosted or
/// not, is the S3 service's to say); frames only by the page's own origin and those
/// configured. An origin that would not be one token of the policy is left out.
fn policy(config: &Config) -> HeaderValue {
    let origin = |o: &&String| {
        !o.is_empty()
            && o.bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    };
    let mut connect = vec!["'self'".to_owned()];
    connect.extend(config.endpoints.origins.iter().filter(origin).cloned());
    if config.protocol == PageProtocol::S3 {
        connect.extend(["http:".to_owned(), "https:".to_owned()]);
    }
    let mut frames = vec!["'self'".to_owned()];
    frames.extend(config.frame_ancestors.iter().filter(origin).cloned());
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; connect-src {}; frame-ancestors {}; object-src 'none'; \
         base-uri 'none'; form-action 'none'",
        connect.join(" "),
        frames.join(" ")
    );
    HeaderValue::try_from(policy).unwrap_or(HeaderValue::from_static("default-src 'self'"))
}

async fn serve_page(State(page): State<Arc<Page>>, headers: HeaderMap) -> Response {
    let mut response = assets::answer(
        &headers,
        &page.etag,
        "text/html; charset=utf-8",
        page.html.clone(),
        None,
    );
    let answer = response.headers_mut();
    answer.insert(header::CONTENT_SECURITY_POLICY, page.policy.clone());
    answer.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
