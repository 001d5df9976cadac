//! An HTTP request body as the engine's byte stream, with trailers handed to a callback.

use std::io;
use std::time::Duration;

use axum::body::Body;
use chunkd_core::ByteStream;
use futures::StreamExt;
use http::HeaderMap;
use http_body_util::BodyExt;

/// Data frames become stream items; a trailers frame goes to `on_trailers`; a transport
/// error (client gone, malformed chunking) or no data for `idle` becomes an error item,
/// which the engine treats as the end of what the client managed to send.
pub(crate) fn byte_stream(
    body: Body,
    idle: Duration,
    on_trailers: impl FnMut(&HeaderMap) + Send + 'static,
) -> ByteStream<'static> {
    futures::stream::unfold(
        (body, on_trailers, false),
        move |(mut body, mut on_trailers, done)| async move {
            if done {
                return None;
            }
            loop {
                let Ok(frame) = tokio::time::timeout(idle, body.frame()).await else {
                    let err = io::Error::new(io::ErrorKind::TimedOut, "request body idle");
                    return Some((Err(err), (body, on_trailers, true)));
                };
                match frame {
                    None => return None,
                    Some(Err(err)) => {
                        return Some((Err(io::Error::other(err)), (body, on_trailers, true)));
                    }
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) if data.is_empty() => continue,
                        Ok(data) => return Some((Ok(data), (body, on_trailers, false))),
                        Err(frame) => {
                            if let Some(trailers) = frame.trailers_ref() {
                                on_trailers(trailers);
                            }
                        }
                    },
                }
            }
        },
    )
    .boxed()
}
