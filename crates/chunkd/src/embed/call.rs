//! One request through the engine, driven by the host: body in, answer out.

use std::sync::{Arc, Mutex};
use std::task::Poll;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

/// Body chunks in flight between the host and the engine: enough to keep both busy,
/// few enough that a slow disk holds the host's reads back.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Why a request body ended early: the host's client went away, or sent fewer bytes
/// than it announced. The engine keeps what arrived, as for a dropped connection.
#[derive(Debug, thiserror::Error)]
#[error("request body interrupted: {0}")]
pub struct BodyError(pub String);

enum Answer {
    Pending(JoinHandle<http::Response<Body>>),
    Ready(http::Response<Body>),
    Streaming(Body),
    Done,
}

/// A request being answered. The host feeds the body ([`feed`](Self::feed), then
/// [`end`](Self::end) or [`fail`](Self::fail)), waits for the [`head`](Self::head), then
/// pulls the answer's [chunks](Self::next_chunk). Dropped early, it interrupts the body.
pub struct Call {
    body: Option<mpsc::Sender<Result<Bytes, BodyError>>>,
    /// Why the body was cut, told beside the channel: a full channel cannot take it,
    /// and the engine must never take a cut body for a whole one.
    cut: Arc<Mutex<Option<String>>>,
    answer: Answer,
}

impl Call {
    /// To be called inside the engine's runtime.
    pub(super) fn start(router: Router, request: http::Request<()>) -> Self {
        let (tx, mut rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let cut = Arc::new(Mutex::new(None::<String>));
        let told = cut.clone();
        let stream = futures::stream::poll_fn(move |cx| match rx.poll_recv(cx) {
            // The channel closed: a cut body ends in its error, once.
            Poll::Ready(None) => Poll::Ready(
                told.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
                    .map(|why| Err(BodyError(why))),
            ),
            other => other,
        });
        let (parts, ()) = request.into_parts();
        let request = http::Request::from_parts(parts, Body::from_stream(stream));
        let answer = tokio::spawn(async move {
            match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        });
        Call {
            body: Some(tx),
            cut,
            answer: Answer::Pending(answer),
        }
    }

    /// Hands the engine the next piece of the body, waiting while it is busy with the
    /// earlier ones. `false`: it reads no more (it has answered), so the host stops.
    pub async fn feed(&mut self, chunk: Bytes) -> bool {
        let Some(body) = &self.body else {
            return false;
        };
        if chunk.is_empty() {
            return true;
        }
        let Answer::Pending(task) = &mut self.answer else {
            return false;
        };
        tokio::select! {
            sent = body.send(Ok(chunk)) => sent.is_ok(),
            answered = task => {
                self.answer = match answered {
                    Ok(response) => Answer::Ready(response),
                    Err(e) => Answer::Ready(failed(&e)),
                };
                self.body = None;
                false
            }
        }
    }

    /// The body is complete.
    pub fn end(&mut self) {
        self.body = None;
    }

    /// The body ended before it was complete.
    pub fn fail(&mut self, why: impl Into<String>) {
        if let Some(body) = self.body.take() {
            // Told before the sender drops, so the stream finds it when the channel
            // closes. An engine that stopped reading already lost nothing.
            *self
                .cut
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.into());
            drop(body);
        }
    }

    /// The answer's status and headers, once the engine has them. The body, if the host
    /// has not ended it, counts as ended here.
    pub async fn head(&mut self) -> http::response::Parts {
        self.end();
        let response = match std::mem::replace(&mut self.answer, Answer::Done) {
            Answer::Pending(task) => match task.await {
                Ok(response) => response,
                Err(e) => failed(&e),
            },
            Answer::Ready(response) => response,
            Answer::Streaming(_) | Answer::Done => failed_twice(),
        };
        let (parts, body) = response.into_parts();
        self.answer = Answer::Streaming(body);
        parts
    }

    /// The answer's next piece of body; `None` at its end (trailers are dropped: the
    /// hosts carry none).
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, axum::Error>> {
        let Answer::Streaming(body) = &mut self.answer else {
            return None;
        };
        loop {
            match body.frame().await {
                None => break,
                Some(Err(e)) => {
                    self.answer = Answer::Done;
                    return Some(Err(e));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Some(Ok(data));
                    }
                }
            }
        }
        self.answer = Answer::Done;
        None
    }
}

impl Drop for Call {
    /// The request runs on to its end with the body cut where the host stopped, so the
    /// engine commits what arrived, as for a client that went away.
    fn drop(&mut self) {
        self.fail("the host stopped the request");
    }
}

/// The answer when the request's task panicked or was cancelled: the engine's own
/// failure, never the client's.
fn failed(e: &tokio::task::JoinError) -> http::Response<Body> {
    tracing::error!(error = %e, "request task failed");
    internal_error()
}

fn failed_twice() -> http::Response<Body> {
    tracing::error!("the host asked for an answer's head twice");
    internal_error()
}

fn internal_error() -> http::Response<Body> {
    let mut response = http::Response::new(Body::from("internal server error\n"));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}
