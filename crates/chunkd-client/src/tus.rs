//! tus 1.0.0: OPTIONS for discovery, POST to create (partial and final uploads for
//! concatenation), HEAD for the offset, PATCH to append, DELETE to terminate.

use reqwest::Method;
use reqwest::header::CONTENT_LENGTH;
use url::Url;

use crate::checksum;
use crate::error::Error;
use crate::http::{self, Attempt};
use crate::metadata::Metadata;
use crate::protocol::{Capabilities, Chunk, Remote, Server};

pub(crate) const VERSION: &str = "1.0.0";

fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(crate) async fn discover(server: &Server) -> Attempt<Capabilities> {
    let request = server.http.request(Method::OPTIONS, &server.endpoint);
    let response = server.http.send(request).await?;
    let versions = list(http::text(&response, "tus-version"));
    if !versions.iter().any(|v| v == VERSION) {
        return Err(Error::Unsupported(format!(
            "{} does not speak tus {VERSION} (its OPTIONS answer has Tus-Version {versions:?})",
            server.endpoint
        ))
        .into());
    }
    Ok(Capabilities {
        extensions: list(http::text(&response, "tus-extension")),
        checksums: list(http::text(&response, "tus-checksum-algorithm")),
        max_size: http::integer(&response, "tus-max-size")?,
    })
}

pub(crate) async fn create(
    server: &Server,
    length: u64,
    metadata: &Metadata,
    partial: bool,
) -> Attempt<Url> {
    let mut request = server
        .http
        .request(Method::POST, &server.endpoint)
        .header("tus-resumable", VERSION)
        .header("upload-length", length)
        .header(CONTENT_LENGTH, 0)
        .body("");
    if !metadata.is_empty() {
        request = request.header("upload-metadata", metadata.to_tus());
    }
    if partial {
        request = request.header("upload-concat", "partial");
    }
    let response = server.http.send(request).await?;
    Ok(http::location(&response)?)
}

pub(crate) async fn concatenate(
    server: &Server,
    parts: &[Url],
    metadata: &Metadata,
) -> Attempt<Url> {
    let urls: Vec<&str> = parts.iter().map(Url::as_str).collect();
    let mut request = server
        .http
        .request(Method::POST, &server.endpoint)
        .header("tus-resumable", VERSION)
        .header("upload-concat", format!("final;{}", urls.join(" ")))
        .header(CONTENT_LENGTH, 0)
        .body("");
    if !metadata.is_empty() {
        request = request.header("upload-metadata", metadata.to_tus());
    }
    // Sent again only when the server plainly did not act on it: a second final
    // upload of the same parts would be a duplicate file.
    let response = server.http.send_once(request).await?;
    Ok(http::location(&response)?)
}

pub(crate) async fn status(server: &Server, url: &Url, length: u64) -> Attempt<Remote> {
    let request = server
        .http
        .request(Method::HEAD, url)
        .header("tus-resumable", VERSION);
    let response = server.http.send(request).await?;
    let Some(offset) = http::integer(&response, "upload-offset")? else {
        return Err(Error::Protocol(format!("{url} answered HEAD without Upload-Offset")).into());
    };
    if let Some(theirs) = http::integer(&response, "upload-length")?
        && theirs != length
    {
        return Err(Error::Protocol(format!(
            "{url} holds an upload of {theirs} bytes, not the {length} expected"
        ))
        .into());
    }
    Ok(Remote {
        offset,
        complete: offset == length,
    })
}

pub(crate) async fn append(server: &Server, url: &Url, chunk: Chunk) -> Attempt<u64> {
    let mut request = server
        .http
        .request(Method::PATCH, url)
        .header("tus-resumable", VERSION)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", chunk.offset)
        .header(CONTENT_LENGTH, chunk.len)
        .body(chunk.body);
    let pulse = chunk.pulse;
    if let Some((algorithm, digest)) = &chunk.checksum {
        request = request.header("upload-checksum", checksum::tus_header(*algorithm, digest));
    }
    let response = server.http.send_body(request, &pulse).await?;
    match http::integer(&response, "upload-offset")? {
        Some(offset) => Ok(offset),
        None => Err(Error::Protocol(format!("{url} answered PATCH without Upload-Offset")).into()),
    }
}
