//! Form bodies shared by the front ends: recognising multipart, bounding text fields,
//! and streaming a multipart file part to the engine without buffering it.

use axum::extract::multipart::Field;
use chunkd_core::ByteStream;
use futures::StreamExt;
use http::{HeaderMap, header};

pub(crate) fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// Form fields other than files are small; a larger one is not a parameter.
pub(crate) const MAX_FIELD: usize = 64 << 10;
/// More fields than this is not a form any client of ours sends.
pub(crate) const MAX_FIELDS: usize = 64;

/// A text field's name and value, at most [`MAX_FIELD`] bytes of UTF-8; the error says
/// what is wrong in words a client can act on.
pub(crate) async fn read_text(mut field: Field<'_>) -> Result<(String, String), String> {
    let name = field.name().unwrap_or_default().to_owned();
    let mut value = Vec::new();
    while let Some(bytes) = field.chunk().await.map_err(|e| e.body_text())? {
        value.extend_from_slice(&bytes);
        if value.len() > MAX_FIELD {
            return Err(format!("form field {name} is too large"));
        }
    }
    let value = String::from_utf8(value).map_err(|_| format!("form field {name} is not text"))?;
    Ok((name, value))
}

/// A file part as the engine's byte stream; a broken form ends it with an error.
pub(crate) fn field_stream(field: Field<'_>) -> ByteStream<'_> {
    futures::stream::unfold(field, |mut f| async move {
        match f.chunk().await {
            Ok(Some(bytes)) => Some((Ok(bytes), f)),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e)), f)),
        }
    })
    .boxed()
}
