//! A pre-finish hook's reply, applied to the answer of the request that completed the
//! upload, the same way on every front end: its headers are added (the protocol's own
//! win) and, where the answer has a body (a success with content: a form's, a chunk's,
//! Content-Range's file list), the hook's body takes its place. An empty answer (tus's
//! 204, its creation's 201) stays empty. A failed answer is left as it is. The reply
//! goes to the request during which the upload finished: for a tus final that is the
//! request that finished its last part, for a finish a status check repaired that
//! check; a form of several files gets the last one's.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use chunkd_core::{Reply, ReplySlot, Uploads};
use http::{HeaderName, HeaderValue, StatusCode, header};

/// The slot a request's pre-finish reply is left in, kept in its extensions.
#[derive(Clone)]
pub(crate) struct Slot(pub(crate) ReplySlot);

/// Adds reply handling to a front end's `router`; nothing when no hook listens.
pub(crate) fn answer_finish_replies<S>(router: Router<S>, uploads: &Uploads) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    if !uploads.hooks_listen() {
        return router;
    }
    router.layer(middleware::from_fn(
        |mut req: Request, next: Next| async move {
            let slot: ReplySlot = Arc::new(Mutex::new(None));
            req.extensions_mut().insert(Slot(slot.clone()));
            let response = next.run(req).await;
            let reply = slot.lock().ok().and_then(|mut s| s.take());
            match reply {
                Some(reply) => apply(response, &reply),
                None => response,
            }
        },
    ))
}

fn apply(mut response: Response, reply: &Reply) -> Response {
    // A request that failed after its upload finished (a form whose later file was
    // refused, a store error) says so undisturbed.
    if !response.status().is_success() {
        return response;
    }
    let headers = response.headers_mut();
    for (name, value) in reply.headers() {
        let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) else {
            continue;
        };
        if !headers.contains_key(&name) {
            headers.insert(name, value);
        }
    }
    let has_body = response.status().is_success()
        && response.status() != StatusCode::NO_CONTENT
        && http_body::Body::size_hint(response.body()).exact() != Some(0);
    let Some((body, content_type)) = reply.body().filter(|_| has_body) else {
        return response;
    };
    let content_type = content_type
        .and_then(|t| HeaderValue::try_from(t).ok())
        .unwrap_or(HeaderValue::from_static("text/plain; charset=utf-8"));
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, content_type);
    Response::from_parts(parts, Body::from(body.to_owned()))
}
