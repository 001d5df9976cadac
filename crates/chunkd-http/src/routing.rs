//! What the front ends' routers share. Methods are dispatched by axum's method routers
//! (a route's fallback answers the methods it lacks, in the protocol's terms, and axum
//! adds `Allow`); `X-HTTP-Method-Override` is a layer that runs before that dispatch;
//! [`Acting`] and [`Target`] extract who a request acts for and which upload it names,
//! refusing in the protocol's own terms.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
use chunkd_core::{Caller, UploadId, Uploads};
use http::Method;
use http::request::Parts;
use tower::ServiceBuilder;

use crate::identity;
use crate::refusal::Refusal;

/// A protocol front end, as its shared extractors need it.
pub(crate) trait FrontEnd: Send + Sync + 'static {
    /// The protocol's name in hook events (`tus`, `ietf`, `content-range`).
    const PROTOCOL: &'static str;

    fn uploads(&self) -> &Uploads;

    /// `refusal` in the protocol's own terms, as an answer to this request.
    fn refuse(&self, request: &Parts, refusal: Refusal) -> Response;
}

/// The engine as the request's identity sees it.
pub(crate) struct Acting(pub Caller);

impl<F: FrontEnd> FromRequestParts<Arc<F>> for Acting {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, front: &Arc<F>) -> Result<Self, Response> {
        match identity::owner_in(&parts.extensions) {
            Ok(owner) => Ok(Acting(crate::hook_request::describe(
                front.uploads().for_owner(owner),
                &*parts,
                F::PROTOCOL,
            ))),
            Err(refusal) => Err(front.refuse(parts, refusal)),
        }
    }
}

/// The upload the route's one path parameter names, and the caller acting on it. An id
/// chunkd could never have issued is simply unknown (not found), whatever it contains.
pub(crate) struct Target {
    pub caller: Caller,
    pub id: UploadId,
}

impl<F: FrontEnd> FromRequestParts<Arc<F>> for Target {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, front: &Arc<F>) -> Result<Self, Response> {
        let id = Path::<String>::from_request_parts(parts, front)
            .await
            .ok()
            .and_then(|Path(id)| id.parse::<UploadId>().ok());
        let Some(id) = id else {
            return Err(front.refuse(parts, Refusal::not_found()));
        };
        let Acting(caller) = Acting::from_request_parts(parts, front).await?;
        Ok(Target { caller, id })
    }
}

/// `methods` as a route that lets a POST carrying `X-HTTP-Method-Override` be
/// dispatched as the method it names (clients on stacks that cannot send PATCH or
/// DELETE). The layer wraps the method router itself: a layer added with
/// `Router::layer` would run only after the method was chosen.
pub(crate) fn with_method_override<T, S>(
    router: Router<S>,
    path: &str,
    methods: MethodRouter<T>,
    state: T,
) -> Router<S>
where
    T: Clone + Send + Sync + 'static,
    S: Clone + Send + Sync + 'static,
{
    let service = ServiceBuilder::new()
        .layer(middleware::from_fn(override_method))
        .service(methods.with_state::<()>(state));
    router.route_service(path, service)
}

async fn override_method(mut req: Request, next: Next) -> Response {
    if req.method() == Method::POST
        && let Some(method) = req
            .headers()
            .get("x-http-method-override")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Method::from_bytes(v.trim().to_ascii_uppercase().as_bytes()).ok())
    {
        *req.method_mut() = method;
    }
    next.run(req).await
}

#[cfg(all(
    test,
    feature = "tus",
    feature = "ietf",
    feature = "content-range",
    feature = "resumablejs"
))]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use chunkd_core::Uploads;
    use chunkd_core::memory::{MemoryState, MemoryStore};
    use http::StatusCode;

    use crate::test_support::call;

    fn app() -> Router {
        let uploads =
            Uploads::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryState::new())).build();
        crate::test_support::every_front_end(&uploads)
    }

    /// Each route's method router answers a method it lacks with 405 in the protocol's
    /// terms, and `Allow` lists what the route does take.
    #[tokio::test]
    async fn a_missing_method_is_405_with_allow() {
        let app = app();
        let id = "0123456789abcdef0123456789abcdef";
        let cases = [
            ("/files/", "PUT", "POST", Some(("tus-resumable", "1.0.0"))),
            ("/files/x", "PUT", "PATCH", Some(("tus-resumable", "1.0.0"))),
            ("/uploads/x", "PUT", "PATCH", None),
            ("/chunked/x", "PATCH", "DELETE", None),
            ("/chunked/complete", "GET", "POST", None),
            (&format!("/chunked/{id}/content"), "DELETE", "GET", None),
            ("/resumable", "PATCH", "POST", None),
            ("/flow/status", "POST", "GET", None),
            ("/upload", "GET", "POST", None),
            ("/progress", "POST", "DELETE", None),
        ];
        for (uri, method, allowed, protocol_header) in cases {
            let r = call(&app, method, uri, &[], Body::empty()).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            let allow = r.header("allow").unwrap_or_default();
            assert!(allow.contains(allowed), "{method} {uri}: Allow {allow:?}");
            if let Some((name, value)) = protocol_header {
                assert_eq!(r.header(name), Some(value), "{method} {uri}");
            }
        }
    }

    /// A path segment chunkd could never have issued as an id is an unknown upload,
    /// in each protocol's terms, before identity or the engine are asked.
    #[tokio::test]
    async fn an_id_never_issued_is_not_found() {
        let app = app();
        let cases = [
            (
                "HEAD",
                "/files/..%2F..%2Fetc",
                &[("tus-resumable", "1.0.0")][..],
            ),
            ("HEAD", "/uploads/%00", &[][..]),
            ("GET", "/chunked/not-an-id", &[][..]),
        ];
        for (method, uri, headers) in cases {
            let r = call(&app, method, uri, headers, Body::empty()).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {uri}");
        }
        let drf = call(&app, "GET", "/chunked/not-an-id", &[], Body::empty()).await;
        let body: serde_json::Value = serde_json::from_slice(&drf.body).unwrap_or_default();
        assert_eq!(body["detail"], "Not found.");
    }
}
