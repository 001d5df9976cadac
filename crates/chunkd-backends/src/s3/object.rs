//! Objects by bucket and key, and the plain requests on them: read, size, put, delete.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use chunkd_core::ByteStream;
use futures::StreamExt;
use http_body_util::BodyExt;
use rusty_s3::Bucket;

use super::S3Store;
use super::chunks::Chunks;
use super::client::{S3Error, Signed};

/// An object: the bucket it is in, its key.
pub(super) struct Object<'a> {
    pub(super) bucket: &'a Bucket,
    pub(super) key: String,
}

impl fmt::Display for Object<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.bucket.name(), self.key)
    }
}

impl S3Store {
    pub(super) async fn get(
        &self,
        object: &Object<'_>,
        range: Range<u64>,
    ) -> std::result::Result<ByteStream<'static>, S3Error> {
        if range.start == range.end {
            return Ok(futures::stream::empty().boxed());
        }
        let action = object
            .bucket
            .get_object(Some(&self.credentials), &object.key);
        let signed = Signed::new(action, Bytes::new()).with_header(
            http::header::RANGE,
            &format!("bytes={}-{}", range.start, range.end - 1),
        );
        let response = self.client.send_streaming(&signed).await?;
        let stream = response
            .into_body()
            .into_data_stream()
            .map(|item| item.map_err(std::io::Error::other));
        Ok(stream.boxed())
    }

    /// The first `len` bytes of an object, in memory (a tail is below one part).
    pub(super) async fn get_small(
        &self,
        object: &Object<'_>,
        len: u64,
    ) -> std::result::Result<Chunks, S3Error> {
        let mut out = Chunks::default();
        let mut stream = self.get(object, 0..len).await?;
        while let Some(chunk) = stream.next().await {
            out.push(chunk.map_err(|e| S3Error::Transport(e.to_string()))?);
        }
        if out.len() != len {
            return Err(S3Error::Unexpected(format!(
                "{object} holds {} bytes, expected {len}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// The size of an object, `None` when there is none.
    pub(super) async fn object_len(
        &self,
        object: &Object<'_>,
    ) -> std::result::Result<Option<u64>, S3Error> {
        let action = object
            .bucket
            .head_object(Some(&self.credentials), &object.key);
        match self.client.send(&Signed::new(action, Bytes::new())).await {
            Ok((headers, _)) => Ok(headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn put(
        &self,
        object: &Object<'_>,
        body: Chunks,
    ) -> std::result::Result<(), S3Error> {
        let action = object
            .bucket
            .put_object(Some(&self.credentials), &object.key);
        self.client.send(&Signed::new(action, body)).await?;
        Ok(())
    }

    pub(super) async fn delete_object(
        &self,
        object: &Object<'_>,
    ) -> std::result::Result<(), S3Error> {
        let action = object
            .bucket
            .delete_object(Some(&self.credentials), &object.key);
        match self.client.send(&Signed::new(action, Bytes::new())).await {
            Err(e) if e.status() != Some(http::StatusCode::NOT_FOUND) => Err(e),
            _ => Ok(()),
        }
    }
}
