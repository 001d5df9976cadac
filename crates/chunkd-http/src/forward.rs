//! Forward mode: when a request completes an upload, chunkd POSTs the stored files'
//! JSON description to the application and answers the client with the application's
//! response. The application decides what the client sees, and never handles the bytes.
//!
//! Front ends mark a completing response with a [`Completed`] extension; [`forward`]
//! wraps routes whose path starts with a configured prefix. tus clients need the
//! protocol's own answer (204 with `Upload-Offset`), so for tus the application is told
//! but the client keeps tus's answer.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

pub use crate::completed::CompletedFile;

/// The files a request finished.
#[derive(Clone, Debug)]
pub struct Completed {
    /// Each file the request finished.
    pub files: Vec<CompletedFile>,
    /// Who answers the client.
    pub answer: Answer,
}

/// Who answers the client when a completed upload is forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The application's response replaces the front end's.
    Application,
    /// The application is told; the client gets the protocol's own answer.
    Protocol,
}

impl Completed {
    /// The application answers the client.
    pub fn answered_by_application(files: Vec<CompletedFile>) -> Self {
        Completed {
            files,
            answer: Answer::Application,
        }
    }

    /// The application is only told (protocols whose clients need their own answers).
    pub fn notify(files: Vec<CompletedFile>) -> Self {
        Completed {
            files,
            answer: Answer::Protocol,
        }
    }
}

/// One forwarding rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Requests whose path starts with this are forwarded when they complete an upload.
    pub prefix: String,
    /// The application endpoint (plain `http://`) that receives the description.
    pub target: Uri,
}

/// How long the application may take to answer.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Request headers passed on so the application knows who uploaded.
const PASSED_ON: [header::HeaderName; 3] =
    [header::COOKIE, header::AUTHORIZATION, header::USER_AGENT];

/// Wraps `router` so completed uploads under each rule's prefix are forwarded.
pub fn forward<S: Clone + Send + Sync + 'static>(router: Router<S>, rules: Vec<Rule>) -> Router<S> {
    if rules.is_empty() {
        return router;
    }
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let rules = Arc::new(rules);
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let (client, rules) = (client.clone(), rules.clone());
        async move {
            let Some(rule) = rules
                .iter()
                .find(|r| req.uri().path().starts_with(&r.prefix))
                .cloned()
            else {
                return next.run(req).await;
            };
            let passed_on: Vec<(header::HeaderName, HeaderValue)> = PASSED_ON
                .iter()
                .filter_map(|h| req.headers().get(h).map(|v| (h.clone(), v.clone())))
                .collect();
            let path = req.uri().path().to_owned();
            let response = next.run(req).await;
            let Some(completed) = response.extensions().get::<Completed>().cloned() else {
                return response;
            };
            let description = json!({ "path": path, "files": completed.files });
            let call = call(&client, &rule.target, &description, passed_on);
            let answer = tokio::time::timeout(TIMEOUT, call).await;
            match (completed.answer, answer) {
                (Answer::Application, Ok(Ok(answer))) => answer,
                (Answer::Application, Ok(Err(err))) => unavailable(&rule, &err),
                (Answer::Application, Err(_)) => unavailable(&rule, &"no answer in time"),
                (Answer::Protocol, Ok(Ok(_))) => response,
                (Answer::Protocol, Ok(Err(err))) => {
                    tracing::error!(target = %rule.target, error = %err, "telling the application failed");
                    response
                }
                (Answer::Protocol, Err(_)) => {
                    tracing::error!(target = %rule.target, "the application did not answer in time");
                    response
                }
            }
        }
    }))
}

fn unavailable(rule: &Rule, err: &dyn std::fmt::Display) -> Response {
    tracing::error!(target = %rule.target, error = %err, "forwarding a completed upload failed");
    (
        StatusCode::BAD_GATEWAY,
        axum::Json(json!({ "error": "the application did not answer" })),
    )
        .into_response()
}

async fn call(
    client: &Client<HttpConnector, Full<Bytes>>,
    target: &Uri,
    description: &Value,
    passed_on: Vec<(header::HeaderName, HeaderValue)>,
) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
    let mut req = http::Request::builder()
        .method(Method::POST)
        .uri(target.clone())
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in passed_on {
        req = req.header(name, value);
    }
    let req = req.body(Full::new(Bytes::from(serde_json::to_vec(description)?)))?;
    let answer = client.request(req).await?;
    let (parts, body) = answer.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = parts.status;
    // The application's own answer, minus hop-by-hop framing.
    for (name, value) in &parts.headers {
        if name != header::TRANSFER_ENCODING
            && name != header::CONNECTION
            && name != header::CONTENT_LENGTH
        {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use tokio::net::TcpListener;
    use tower::ServiceExt;

    /// A real application on a loopback port: records what it is told, answers 201.
    async fn application() -> (
        Uri,
        tokio::sync::mpsc::UnboundedReceiver<(Value, Option<String>)>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let app = Router::new().route(
            "/received",
            post(
                move |headers: http::HeaderMap, axum::Json(v): axum::Json<Value>| {
                    let tx = tx.clone();
                    async move {
                        let cookie = headers
                            .get("cookie")
                            .and_then(|c| c.to_str().ok())
                            .map(str::to_owned);
                        let _ = tx.send((v, cookie));
                        (
                            StatusCode::CREATED,
                            [("x-app", "yes")],
                            "thanks from the app",
                        )
                    }
                },
            ),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/received").parse().expect("uri"), rx)
    }

    fn file(id: &str) -> CompletedFile {
        CompletedFile {
            id: id.to_owned(),
            filename: None,
            content_type: None,
            size: 3,
            md5: None,
            sha256: None,
            url: None,
            field: None,
        }
    }

    fn uploads_router() -> Router {
        Router::new()
            .route(
                "/upload",
                post(|| async {
                    let mut r = (StatusCode::OK, "stored").into_response();
                    r.extensions_mut()
                        .insert(Completed::answered_by_application(vec![file("abc")]));
                    r
                }),
            )
            .route(
                "/upload/tus",
                post(|| async {
                    let mut r = StatusCode::NO_CONTENT.into_response();
                    r.extensions_mut()
                        .insert(Completed::notify(vec![file("tus1")]));
                    r
                }),
            )
            .route(
                "/upload/partial",
                post(|| async { (StatusCode::OK, "chunk stored") }),
            )
    }

    #[tokio::test]
    async fn completed_uploads_get_the_applications_answer() {
        let (target, mut seen) = application().await;
        let app = forward(
            uploads_router(),
            vec![Rule {
                prefix: "/upload".into(),
                target,
            }],
        );
        let req = http::Request::post("/upload")
            .header("cookie", "session=1")
            .body(Body::empty())
            .expect("req");
        let res = app.clone().oneshot(req).await.expect("response");
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()["x-app"], "yes");
        let body = res.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"thanks from the app");
        let (description, cookie) = seen.recv().await.expect("the application was told");
        assert_eq!(description["files"][0]["id"], "abc");
        assert_eq!(cookie.as_deref(), Some("session=1"));
        // A request that completes nothing is answered as usual.
        let req = http::Request::post("/upload/partial")
            .body(Body::empty())
            .expect("req");
        let res = app.oneshot(req).await.expect("response");
        assert_eq!(
            res.into_body().collect().await.expect("body").to_bytes(),
            "chunk stored"
        );
    }

    #[tokio::test]
    async fn notified_completions_keep_the_protocols_answer() {
        let (target, mut seen) = application().await;
        let app = forward(
            uploads_router(),
            vec![Rule {
                prefix: "/upload".into(),
                target,
            }],
        );
        let res = app
            .oneshot(
                http::Request::post("/upload/tus")
                    .body(Body::empty())
                    .expect("req"),
            )
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let (description, _) = seen.recv().await.expect("the application was told");
        assert_eq!(description["files"][0]["id"], "tus1");
    }

    #[tokio::test]
    async fn an_unreachable_application_is_a_502() {
        let target: Uri = "http://127.0.0.1:9/nowhere".parse().expect("uri");
        let app = forward(
            uploads_router(),
            vec![Rule {
                prefix: "/".into(),
                target,
            }],
        );
        let res = app
            .oneshot(
                http::Request::post("/upload")
                    .body(Body::empty())
                    .expect("req"),
            )
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    }
}
