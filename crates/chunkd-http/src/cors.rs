//! CORS for browser clients: every protocol header a client must send or read.

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};

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
    "content-digest",
    "repr-digest",
    "want-repr-digest",
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
    "repr-digest",
    "tus-version",
    "tus-resumable",
    "tus-max-size",
    "tus-extension",
    "tus-checksum-algorithm",
    "content-range",
    "content-disposition",
];

/// Adds CORS to `router` so browser clients of every protocol work from any origin.
///
/// Only a real preflight (an OPTIONS with `Origin` and `Access-Control-Request-Method`)
/// is answered here; a plain OPTIONS reaches the protocol, where tus answers discovery.
pub fn cors<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(middleware::from_fn(cors_middleware))
}

async fn cors_middleware(req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let preflight = req.method() == Method::OPTIONS
        && origin.is_some()
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, joined(ALLOW_HEADERS));
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        r
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            joined(EXPOSE_HEADERS),
        );
    }
    response
}

const ALLOW_METHODS: &str = "POST, HEAD, PATCH, OPTIONS, GET, PUT, DELETE";

fn joined(list: &[&str]) -> HeaderValue {
    HeaderValue::from_str(&list.join(", ")).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    fn app() -> Router {
        cors(Router::new().route(
            "/x",
            axum::routing::any(|| async { (StatusCode::OK, [("upload-offset", "1")]) }),
        ))
    }

    #[tokio::test]
    async fn answers_preflight_and_exposes_headers() {
        let req = Request::builder()
            .method("OPTIONS")
            .uri("/x")
            .header("origin", "http://a.example")
            .header("access-control-request-method", "PATCH")
            .body(Body::empty())
            .expect("request");
        let r = app().oneshot(req).await.expect("response");
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "http://a.example"
        );
        assert!(
            r.headers()["access-control-allow-headers"]
                .to_str()
                .expect("text")
                .contains("upload-offset")
        );

        let req = Request::builder()
            .method("PATCH")
            .uri("/x")
            .header("origin", "http://a.example")
            .body(Body::empty())
            .expect("request");
        let r = app().oneshot(req).await.expect("response");
        assert!(
            r.headers()["access-control-expose-headers"]
                .to_str()
                .expect("text")
                .contains("location")
        );
    }

    #[tokio::test]
    async fn plain_options_reaches_the_protocol() {
        let req = Request::builder()
            .method("OPTIONS")
            .uri("/x")
            .body(Body::empty())
            .expect("request");
        let r = app().oneshot(req).await.expect("response");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["upload-offset"], "1");
    }
}
