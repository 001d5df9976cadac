//! The S3 service of the tests: s3s-fs (which checks SigV4 signatures and the 5 MiB part
//! minimum, and keeps objects as plain files), with S3's rules for completing multipart
//! uploads (`faithful.rs`) and one change to how it is served. Each request runs in a task of its own, to completion, even when its client goes
//! away. S3 itself behaves that way: a CompleteMultipartUpload that has been received
//! completes. s3s-fs's own server drops a request when its connection closes, and its
//! completion is not atomic (it forgets the upload, then moves the parts one by one).
//! So a client killed mid-completion, which the crash tests do on purpose, would leave
//! half an object. No real S3 service does that.
//!
//!     chunkd-test-s3 --host H --port P --access-key K --secret-key S ROOT

mod faithful;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use s3s::HttpError;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

struct Options {
    host: String,
    port: u16,
    access_key: String,
    secret_key: String,
    root: String,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut host, mut port, mut access_key, mut secret_key, mut root) =
        ("127.0.0.1".to_owned(), 8014, None, None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => host = value()?,
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--access-key" => access_key = Some(value()?),
            "--secret-key" => secret_key = Some(value()?),
            _ if !arg.starts_with('-') && root.is_none() => root = Some(arg),
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    Ok(Options {
        host,
        port,
        access_key: access_key.ok_or("--access-key is required")?,
        secret_key: secret_key.ok_or("--secret-key is required")?,
        root: root.ok_or("the data directory is required")?,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let opt = options().map_err(|e| {
        format!("{e}\nusage: chunkd-test-s3 --host H --port P --access-key K --secret-key S ROOT")
    })?;
    let service = {
        let mut builder = S3ServiceBuilder::new(faithful::Faithful::new(&opt.root)?);
        builder.set_auth(SimpleAuth::from_single(opt.access_key, opt.secret_key));
        builder.build()
    };
    let listener = TcpListener::bind((opt.host.as_str(), opt.port)).await?;
    eprintln!("s3 service at http://{}", listener.local_addr()?);
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let service = service.clone();
        // A request's work is a task of its own: dropping the connection's future (the
        // client went away) leaves it running; only its answer is lost.
        let run_to_completion = service_fn(move |request: hyper::Request<Incoming>| {
            let work = hyper::service::Service::call(&service, request);
            async move {
                tokio::spawn(work)
                    .await
                    .unwrap_or_else(|panicked| Err(HttpError::new(Box::new(panicked))))
            }
        });
        tokio::spawn(async move {
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(socket), run_to_completion)
                .await;
        });
    }
}
