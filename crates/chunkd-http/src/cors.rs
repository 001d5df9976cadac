//! CORS for browser clients: every protocol header a client must send or read.

use std::time::Duration;

use http::{HeaderName, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

const ALLOW_HEADERS: &[&str] = &[
    "authorization",
    "origin",
    "x-requested-with",
    "x-request-id",
    "x-http-method-override",
    "content-type",
    "content-disposition",
    "upload-length",
    "upload-offset",
    "tus-resumable",
    "upload-metadata",
    "upload-defer-length",
    "upload-concat",
    "upload-checksum",
    "upload-incomplete",
    "upload-complete",
    "upload-draft-interop-version",
];

const EXPOSE_HEADERS: &[&str] = &[
    "location",
    "upload-offset",
    "upload-length",
    "upload-metadata",
    "upload-defer-length",
    "upload-concat",
    "upload-expires",
    "upload-checksum",
    "upload-incomplete",
    "upload-complete",
    "upload-draft-interop-version",
    "upload-limit",
    "tus-version",
    "tus-resumable",
    "tus-max-size",
    "tus-extension",
    "tus-checksum-algorithm",
    "content-range",
    "content-disposition",
];

/// A CORS layer that lets browser clients of every protocol work from any origin.
pub fn cors() -> CorsLayer {
    let names = |list: &[&'static str]| -> Vec<HeaderName> {
        list.iter().map(|h| HeaderName::from_static(h)).collect()
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([
            Method::POST,
            Method::HEAD,
            Method::PATCH,
            Method::OPTIONS,
            Method::GET,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers(names(ALLOW_HEADERS))
        .expose_headers(names(EXPOSE_HEADERS))
        .max_age(Duration::from_secs(86_400))
}
