//! tusd's hook JSON, so a receiver written for tusd works unchanged. The request is
//! `{Type, Event: {Upload, HTTPRequest}}`, the answer `{HTTPResponse, RejectUpload,
//! RejectTermination, ChangeFileInfo, StopUpload}`. chunkd adds fields tusd receivers
//! ignore: `Event.Protocol`, `Event.Identity`, `Event.Access` (pre-access), the
//! storage's `Bucket` and `Key` on S3; in the answer, `RejectAccess`,
//! `ChangeFileInfo.Storage.Key`/`Bucket` (tusd has `Path` only), and
//! `ChangeFileInfo.MaxSize` and `ExpireAfter` (seconds).

use std::collections::BTreeMap;
use std::time::Duration;

use chunkd_core::{
    Access, Changes, ConcatKind, Delivered, HookEvent, HookKind, Location, Metadata, Placement,
    Rejection, Reply, UploadId, Verdict,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct HookRequest<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "Event")]
    event: EventJson<'a>,
}

#[derive(Serialize)]
struct EventJson<'a> {
    #[serde(rename = "Upload")]
    upload: UploadJson,
    #[serde(rename = "HTTPRequest")]
    request: RequestJson,
    #[serde(rename = "Protocol")]
    protocol: &'a str,
    #[serde(rename = "Identity")]
    identity: Option<&'a str>,
    #[serde(rename = "Access", skip_serializing_if = "Option::is_none")]
    access: Option<&'static str>,
}

#[derive(Serialize)]
struct UploadJson {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Size")]
    size: u64,
    #[serde(rename = "SizeIsDeferred")]
    size_is_deferred: bool,
    #[serde(rename = "Offset")]
    offset: u64,
    #[serde(rename = "MetaData")]
    metadata: BTreeMap<String, String>,
    #[serde(rename = "IsPartial")]
    is_partial: bool,
    #[serde(rename = "IsFinal")]
    is_final: bool,
    #[serde(rename = "PartialUploads")]
    partial_uploads: Option<Vec<String>>,
    #[serde(rename = "Storage")]
    storage: Option<BTreeMap<&'static str, String>>,
}

#[derive(Serialize, Default)]
struct RequestJson {
    #[serde(rename = "Method")]
    method: String,
    #[serde(rename = "URI")]
    uri: String,
    #[serde(rename = "RemoteAddr")]
    remote_addr: String,
    #[serde(rename = "Header")]
    header: BTreeMap<String, Vec<String>>,
}

/// The answer, every field optional. Unknown fields are ignored, as tusd does.
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct HookResponse {
    #[serde(rename = "HTTPResponse")]
    http_response: Option<HttpResponseJson>,
    #[serde(rename = "RejectUpload")]
    reject_upload: bool,
    #[serde(rename = "RejectTermination")]
    reject_termination: bool,
    #[serde(rename = "RejectAccess")]
    reject_access: bool,
    #[serde(rename = "ChangeFileInfo")]
    change_file_info: Option<ChangeFileInfo>,
    #[serde(rename = "StopUpload")]
    stop_upload: bool,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct HttpResponseJson {
    #[serde(rename = "StatusCode")]
    status_code: u16,
    #[serde(rename = "Body")]
    body: String,
    #[serde(rename = "Header")]
    header: BTreeMap<String, String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct ChangeFileInfo {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "MetaData")]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(rename = "Storage")]
    storage: Option<StorageJson>,
    /// chunkd's: the upload's largest size, in bytes.
    #[serde(rename = "MaxSize")]
    max_size: Option<u64>,
    /// chunkd's: its idle expiry, in seconds.
    #[serde(rename = "ExpireAfter")]
    expire_after: Option<u64>,
}

/// Where the upload goes: tusd's `Path` for a file store; chunkd's `Key` (or a prefix
/// ending in `/`) and `Bucket` for S3.
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct StorageJson {
    #[serde(rename = "Path")]
    path: Option<String>,
    #[serde(rename = "Key")]
    key: Option<String>,
    #[serde(rename = "Bucket")]
    bucket: Option<String>,
}

/// Go's canonical form of a header name (`upload-length` → `Upload-Length`), which
/// tusd receivers look headers up by.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => {
                    first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The event as tusd's JSON, with only the request headers `keep` allows.
pub(crate) fn request_body(event: &HookEvent, keep: &dyn Fn(&str) -> bool) -> Vec<u8> {
    let upload = &event.upload;
    let (is_partial, is_final, partial_uploads) = match &upload.concat {
        ConcatKind::None => (false, false, None),
        ConcatKind::Partial => (true, false, None),
        ConcatKind::Final(parts) => (
            false,
            true,
            Some(parts.iter().map(|p| p.as_str().to_owned()).collect()),
        ),
    };
    let storage = event.location.as_ref().map(|location| match location {
        Location::File(path) => BTreeMap::from([
            ("Type", "filestore".to_owned()),
            ("Path", path.display().to_string()),
        ]),
        Location::Object { bucket, key } => BTreeMap::from([
            ("Type", "s3store".to_owned()),
            ("Bucket", bucket.clone()),
            ("Key", key.clone()),
        ]),
    });
    let request = event
        .request
        .as_deref()
        .map_or_else(RequestJson::default, |r| {
            let mut header: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (name, values) in r.headers.iter().filter(|(name, _)| keep(name)) {
                header
                    .entry(canonical(name))
                    .or_default()
                    .extend(values.iter().cloned());
            }
            RequestJson {
                method: r.method.clone(),
                uri: r.uri.clone(),
                remote_addr: r.remote_addr.clone().unwrap_or_default(),
                header,
            }
        });
    let body = HookRequest {
        kind: event.kind.name(),
        event: EventJson {
            upload: UploadJson {
                id: upload.id.as_str().to_owned(),
                size: upload.length.unwrap_or(0),
                size_is_deferred: upload.length.is_none(),
                offset: upload.offset,
                metadata: upload
                    .metadata
                    .iter()
                    .map(|(k, v)| (k.to_owned(), String::from_utf8_lossy(v).into_owned()))
                    .collect(),
                is_partial,
                is_final,
                partial_uploads,
                storage,
            },
            request,
            protocol: event.request.as_deref().map_or("", |r| r.protocol.as_str()),
            identity: upload.owner.as_deref(),
            access: event.access.map(Access::name),
        },
    };
    // Serializing plain strings, numbers and maps cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Why an answer was not followed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AnswerError {
    #[error("the answer is not tusd's hook JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the answer chose an id that is not a valid upload id: {0:?}")]
    BadId(String),
}

/// What the answer to a post-event asks for: only `StopUpload` means anything. A
/// receiver is not expected to answer post-events in JSON, so anything else is noted.
pub(crate) fn delivered(answer: &[u8]) -> Delivered {
    match serde_json::from_slice::<HookResponse>(answer) {
        Ok(HookResponse {
            stop_upload: true, ..
        }) => Delivered::StopUpload,
        _ => Delivered::Noted,
    }
}

/// A pre-finish `HTTPResponse`: headers, and a body for the protocols whose answer has
/// one. Its `StatusCode` is not followed: the completing request keeps the status its
/// client expects.
fn finish_reply(response: HttpResponseJson) -> Verdict {
    let (headers, content_type): (Vec<_>, Vec<_>) = response
        .header
        .into_iter()
        .partition(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
    if headers.is_empty() && response.body.is_empty() {
        return Verdict::Continue;
    }
    let (mut reply, left_out) = Reply::with_headers(headers);
    if !left_out.is_empty() {
        tracing::warn!(
            hook = HookKind::PreFinish.name(),
            ?left_out,
            "response headers a hook may not set were left out"
        );
    }
    if !response.body.is_empty() {
        let content_type = content_type.into_iter().next().map(|(_, value)| value);
        reply = reply.with_body(response.body, content_type);
    }
    Verdict::Reply(reply)
}

/// What the answer to a hook of `kind` means for the upload.
pub(crate) fn verdict(kind: HookKind, answer: &[u8]) -> Result<Verdict, AnswerError> {
    let answer: HookResponse = if answer.iter().all(u8::is_ascii_whitespace) {
        HookResponse::default()
    } else {
        serde_json::from_slice(answer)?
    };
    let (rejected, default_status, default_message) = match kind {
        HookKind::PreCreate => (
            answer.reject_upload,
            400,
            "upload creation has been rejected by server",
        ),
        HookKind::PreFinish => (
            answer.reject_upload,
            400,
            "upload has been rejected by server",
        ),
        HookKind::PreTerminate => (
            answer.reject_termination,
            400,
            "upload termination has been rejected by server",
        ),
        HookKind::PreAccess => (
            answer.reject_access || answer.reject_upload,
            403,
            "access to the upload has been rejected by server",
        ),
        // Post-events are answered through `delivered`.
        _ => {
            if answer.stop_upload {
                tracing::warn!(
                    hook = kind.name(),
                    "StopUpload answers only post-receive; ignored"
                );
            }
            return Ok(Verdict::Continue);
        }
    };
    if rejected {
        let response = answer.http_response.unwrap_or_default();
        let message = match response.body.is_empty() {
            true => default_message.to_owned(),
            false => response.body,
        };
        let rejection = Rejection::new(response.status_code, message.clone())
            .or_else(|_| Rejection::new(default_status, message))
            .unwrap_or_else(|_| Rejection::forbidden(default_message));
        let (rejection, left_out) = rejection.with_headers(response.header);
        if !left_out.is_empty() {
            tracing::warn!(
                hook = kind.name(),
                ?left_out,
                "response headers a hook may not set were left out"
            );
        }
        return Ok(Verdict::Reject(rejection));
    }
    if kind == HookKind::PreFinish {
        return Ok(match answer.http_response {
            Some(response) => finish_reply(response),
            None => Verdict::Continue,
        });
    }
    let Some(change) = answer
        .change_file_info
        .filter(|_| kind == HookKind::PreCreate)
    else {
        return Ok(Verdict::Continue);
    };
    let placement = change.storage.map(|s| Placement {
        path: s.path,
        key: s.key,
        bucket: s.bucket,
    });
    let id = match change.id.as_str() {
        "" => None,
        id => Some(
            id.parse::<UploadId>()
                .map_err(|_| AnswerError::BadId(id.to_owned()))?,
        ),
    };
    let metadata = change.metadata.map(|pairs| {
        let mut metadata = Metadata::new();
        for (key, value) in pairs {
            metadata.insert(key, value.into_bytes());
        }
        metadata
    });
    let changes = Changes {
        id,
        metadata,
        placement,
        max_size: change.max_size,
        expire_after: change.expire_after.map(Duration::from_secs),
    };
    Ok(match changes == Changes::default() {
        true => Verdict::Continue,
        false => Verdict::Change(changes),
    })
}

#[cfg(test)]
mod tests;
