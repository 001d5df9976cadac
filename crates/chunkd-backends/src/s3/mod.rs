//! Upload bytes in any S3-compatible object store, streamed with bounded memory.
//!
//! An upload is one multipart upload. Appended bytes are cut into parts of
//! `part_size`; what is left below a part at the end of a request (the tail) is kept
//! in a staging object `<key>.tail.<name>` (a new name for each write), never in a
//! local file, and prepended to the next request's bytes. So memory per in-flight
//! request is one part, whatever the request size. The parts (numbers and ETags) and
//! the part size live in the upload's record, saved with the offset in one state
//! update: after a restart, or on another instance, a write continues from the record
//! alone, once it has claimed part numbers no earlier writer can still send
//! (`fence.rs`). Finishing uploads the tail as the last part and completes the
//! multipart upload. A concatenation copies its partial objects into parts inside S3
//! (UploadPartCopy) when their sizes allow.

mod chunks;
mod client;
mod concat;
mod config;
mod direct;
mod fence;
mod object;
mod record;
mod tails;
mod xml;

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use chunkd_core::{
    ByteStream, DataStore, Error, Placement, Result, Status, StoreState, UploadId, UploadInfo,
    Written,
};
use futures::StreamExt;
use rusty_s3::{Bucket, Credentials, UrlStyle};

use chunks::Chunks;
use client::{S3Client, S3Error, Signed};
pub use config::S3Config;
use fence::Writers;
use object::Object;
use record::{Multipart, RecordedPart};

/// S3 refuses smaller parts (except the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// Upload bytes in an S3 bucket.
pub struct S3Store {
    bucket: Bucket,
    /// Buckets pre-create hooks may place uploads in besides `bucket`.
    other_buckets: Vec<Bucket>,
    credentials: Credentials,
    prefix: String,
    part_size: u64,
    client: S3Client,
    writers: Writers,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket.name())
            .field("prefix", &self.prefix)
            .field("part_size", &self.part_size)
            .finish()
    }
}

impl S3Store {
    /// [`S3Store::new`], then, with `create_bucket`, [`S3Store::ensure_bucket`].
    pub async fn connect(config: S3Config) -> Result<S3Store> {
        let create_bucket = config.create_bucket;
        let store = S3Store::new(config)?;
        if create_bucket {
            store.ensure_bucket().await?;
        }
        Ok(store)
    }

    /// A store for the bucket, without contacting it (`create_bucket` is not applied).
    pub fn new(config: S3Config) -> Result<S3Store> {
        let endpoint: url::Url = config
            .endpoint
            .parse()
            .map_err(|e| S3Error::Settings(format!("endpoint: {e}")))?;
        let style = if config.virtual_host {
            UrlStyle::VirtualHost
        } else {
            UrlStyle::Path
        };
        let named = |name: String| {
            Bucket::new(endpoint.clone(), style, name, config.region.clone())
                .map_err(|e| S3Error::Settings(e.to_string()))
        };
        let bucket = named(config.bucket)?;
        let other_buckets = config
            .other_buckets
            .into_iter()
            .map(named)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if config.part_size < MIN_PART_SIZE {
            return Err(S3Error::Settings("part_size must be at least 5 MiB".into()).into());
        }
        Ok(S3Store {
            bucket,
            other_buckets,
            credentials: Credentials::new(config.access_key, config.secret_key),
            prefix: config.prefix,
            part_size: config.part_size,
            client: S3Client::new(config.ca_file.as_deref())?,
            writers: Writers::new(),
        })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        self.bucket.name()
    }

    /// The upload's object: where a hook placed it, else `<prefix><id>` in the bucket.
    fn object(&self, info: &UploadInfo) -> std::result::Result<Object<'_>, S3Error> {
        let bucket = match info.store.get(record::BUCKET) {
            None => &self.bucket,
            Some(name) => self.configured_bucket(name).ok_or_else(|| {
                S3Error::Settings(format!(
                    "{} is in bucket {name:?}, which is no longer configured",
                    info.id
                ))
            })?,
        };
        let key = match info.store.get(record::KEY) {
            Some(placed) => placed.clone(),
            None => format!("{}{}", self.prefix, info.id),
        };
        Ok(Object { bucket, key })
    }

    fn configured_bucket(&self, name: &str) -> Option<&Bucket> {
        std::iter::once(&self.bucket)
            .chain(&self.other_buckets)
            .find(|b| b.name() == name)
    }

    /// The key a placement names, if the store can follow it safely: a configured bucket, below
    /// the prefix, no `.` or `..` segment (some S3 servers map keys to files), no
    /// control characters, at most S3's 1024 bytes. A key ending in `/` is a prefix the
    /// upload's id is appended to.
    fn placed_key(
        &self,
        info: &UploadInfo,
        wanted: &Placement,
    ) -> std::result::Result<String, String> {
        if wanted.path.is_some() {
            return Err("an S3 store takes a Key (and Bucket), not a Path".into());
        }
        if let Some(bucket) = &wanted.bucket
            && self.configured_bucket(bucket).is_none()
        {
            return Err(format!("bucket {bucket:?} is not a configured one"));
        }
        let Some(key) = wanted.key.as_deref() else {
            return Err("no Key given".into());
        };
        let key = match key.ends_with('/') {
            true => format!("{key}{}", info.id),
            false => key.to_owned(),
        };
        let Some(below) = key.strip_prefix(self.prefix.as_str()) else {
            return Err(format!(
                "key {key:?} is outside the prefix {:?}",
                self.prefix
            ));
        };
        let plain = !below.is_empty()
            && key.len() <= 1024
            && !key.starts_with('/')
            && !key.chars().any(char::is_control)
            && key
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != "..");
        match plain {
            true => Ok(key),
            false => Err(format!("key {key:?} is not a plain object key")),
        }
    }

    /// Creates the buckets that do not exist (for setups and tests).
    pub async fn ensure_bucket(&self) -> Result<()> {
        for bucket in std::iter::once(&self.bucket).chain(&self.other_buckets) {
            let action = bucket.create_bucket(&self.credentials);
            match self.client.send(&Signed::new(action, Bytes::new())).await {
                Ok(_) => {}
                Err(e) if e.status() == Some(http::StatusCode::CONFLICT) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The first `len` bytes of the tail object; `None` when it is gone because the
    /// store already finished `info` (the process that did died before the record said
    /// so): the object is there, whole. Only a whole upload is asked about, as the
    /// object appears whole, at completion, or not at all.
    async fn tail_unless_finished(
        &self,
        info: &UploadInfo,
        tail: &Object<'_>,
        len: u64,
    ) -> std::result::Result<Option<Chunks>, S3Error> {
        match self.get_small(tail, len).await {
            Ok(tail) => Ok(Some(tail)),
            Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => {
                if self.is_whole(info).await? {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the object of a whole upload is there with every byte: an earlier finish
    /// completed it (the object appears whole, at completion, or not at all).
    async fn is_whole(&self, info: &UploadInfo) -> std::result::Result<bool, S3Error> {
        Ok(info.length == Some(info.offset)
            && self.object_len(&self.object(info)?).await? == Some(info.offset))
    }

    /// Sends the last part, if any, and completes the multipart upload. When the upload
    /// is unknown to the service (403 from s3s-fs, 404 NoSuchUpload elsewhere) an earlier
    /// finish whose record was never saved completed it; that is success if the object
    /// is whole.
    async fn complete_with_tail(
        &self,
        info: &UploadInfo,
        multipart: &mut Multipart,
        tail: Chunks,
        tail_len: u64,
    ) -> std::result::Result<(), S3Error> {
        let key = self.object(info)?;
        let sent = async {
            if tail_len > 0 {
                let etag = self.upload_part(&key, multipart, tail).await?;
                multipart.push(etag, tail_len);
            }
            self.complete_multipart(&key, &multipart.parts, &multipart.upload_id)
                .await
        };
        match sent.await {
            Err(e)
                if matches!(
                    e.status(),
                    Some(http::StatusCode::NOT_FOUND | http::StatusCode::FORBIDDEN)
                ) && self.is_whole(info).await? =>
            {
                Ok(())
            }
            other => other,
        }
    }

    async fn upload_part(
        &self,
        object: &Object<'_>,
        multipart: &Multipart,
        body: Chunks,
    ) -> std::result::Result<String, S3Error> {
        let number = multipart.next_number()?;
        let action = object.bucket.upload_part(
            Some(&self.credentials),
            &object.key,
            number,
            &multipart.upload_id,
        );
        let (headers, _) = self.client.send(&Signed::new(action, body)).await?;
        headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| S3Error::Unexpected("UploadPart answered without an ETag".into()))
    }

    async fn complete_multipart(
        &self,
        object: &Object<'_>,
        parts: &[RecordedPart],
        upload_id: &str,
    ) -> std::result::Result<(), S3Error> {
        // Only the URL: the body numbers the parts as recorded, which may have gaps.
        let action = rusty_s3::actions::CompleteMultipartUpload::new(
            object.bucket,
            Some(&self.credentials),
            &object.key,
            upload_id,
            std::iter::empty(),
        );
        let body = Bytes::from(record::completion_body(parts));
        self.client.send(&Signed::new(action, body)).await?;
        Ok(())
    }

    async fn abort(
        &self,
        object: &Object<'_>,
        upload_id: &str,
    ) -> std::result::Result<(), S3Error> {
        let action =
            object
                .bucket
                .abort_multipart_upload(Some(&self.credentials), &object.key, upload_id);
        match self.client.send(&Signed::new(action, Bytes::new())).await {
            // Gone already (completed or aborted): some services say 404, s3s-fs 403.
            // A real permission problem shows in the object deletes that follow.
            Err(e)
                if !matches!(
                    e.status(),
                    Some(http::StatusCode::NOT_FOUND | http::StatusCode::FORBIDDEN)
                ) =>
            {
                Err(e)
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl DataStore for S3Store {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn place(&self, info: &UploadInfo, wanted: &Placement) -> Result<StoreState> {
        let key = self
            .placed_key(info, wanted)
            .map_err(|why| Error::backend("s3", why))?;
        let mut state = info.store.clone();
        state.insert(record::KEY.to_owned(), key);
        if let Some(bucket) = wanted.bucket.as_ref().filter(|b| *b != self.bucket()) {
            state.insert(record::BUCKET.to_owned(), bucket.clone());
        }
        Ok(state)
    }

    async fn create(&self, info: &UploadInfo) -> Result<StoreState> {
        let key = self.object(info)?;
        let placed = info.store.get(record::KEY).cloned();
        // Completion would replace an object there: a placed key must be free.
        if placed.is_some() && self.object_len(&key).await?.is_some() {
            return Err(Error::backend("s3", format!("object {key} exists already")));
        }
        let action = key
            .bucket
            .create_multipart_upload(Some(&self.credentials), &key.key);
        let (_, body) = self.client.send(&Signed::new(action, Bytes::new())).await?;
        let text = String::from_utf8_lossy(&body);
        let created = rusty_s3::actions::CreateMultipartUpload::parse_response(&text)
            .map_err(|e| S3Error::Unexpected(format!("CreateMultipartUpload: {e}")))?;
        let mut multipart = Multipart::new(
            created.upload_id().to_owned(),
            self.part_size,
            self.writers.instance(),
        );
        multipart.key = placed;
        multipart.bucket = info.store.get(record::BUCKET).cloned();
        Ok(multipart.state())
    }

    async fn write(&self, info: &UploadInfo, mut body: ByteStream<'_>) -> Result<Written> {
        let _turn = self.writers.turn(&info.id).await;
        let mut multipart = Multipart::of(info)?;
        let key = self.object(info)?;
        if self.writers.must_claim(&multipart) {
            let listed = self.list_parts(&key, &multipart.upload_id).await?;
            self.writers
                .claim(&mut multipart, listed.last().map(|p| p.number));
            // Nothing read: the engine saves the claim and calls again.
            return Ok(Written {
                bytes: 0,
                store: multipart.state(),
            });
        }
        let tail = self.tail_object(info, multipart.tail.as_deref());
        let part_size = multipart.part_size;
        // The record naming the current tail is saved: the one it replaced is garbage.
        if let Some(stale) = multipart.stale_tail.take() {
            self.delete_object(&self.tail_object(info, Some(&stale)))
                .await?;
        }
        // The record is the truth: parts or tail bytes past it (a crash before the
        // record was saved) are ignored and overwritten.
        let tail_len = info.offset.saturating_sub(multipart.parts_bytes);
        let mut pending = if tail_len > 0 {
            match self.tail_unless_finished(info, &tail, tail_len).await? {
                Some(tail) => tail,
                // A retry's empty last write after the finish: nothing is left to send.
                None => {
                    return Ok(Written {
                        bytes: 0,
                        store: info.store.clone(),
                    });
                }
            }
        } else {
            Chunks::default()
        };
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            // Nothing of this call is recorded: the parts sent are overwritten later.
            let chunk = chunk.map_err(|e| S3Error::Transport(format!("request body: {e}")))?;
            written += chunk.len() as u64;
            pending.push(chunk);
            while pending.len() >= part_size {
                let part = pending.split_to(part_size);
                let etag = self.upload_part(&key, &multipart, part).await?;
                multipart.push(etag, part_size);
            }
        }
        if written > 0 {
            // Under a new name each time: a tail put by a write whose record was never
            // saved (a crash) can never be read for the recorded one, whatever its length.
            let name = (!pending.is_empty()).then(|| UploadId::generate().as_str().to_owned());
            if let Some(name) = &name {
                self.put(&self.tail_object(info, Some(name)), pending)
                    .await?;
            }
            multipart.stale_tail = std::mem::replace(&mut multipart.tail, name);
        }
        Ok(Written {
            bytes: written,
            store: multipart.state(),
        })
    }

    async fn finish(&self, info: &UploadInfo) -> Result<StoreState> {
        let _turn = self.writers.turn(&info.id).await;
        let mut multipart = Multipart::of(info)?;
        let key = self.object(info)?;
        let tail = self.tail_object(info, multipart.tail.as_deref());
        let tail_len = info.offset.saturating_sub(multipart.parts_bytes);
        // The tail (none to fetch when empty), unless an earlier finish whose record was
        // never saved took it.
        match self.tail_unless_finished(info, &tail, tail_len).await? {
            None => {}
            Some(body) if multipart.parts.is_empty() => {
                // Below one part: a plain object, no multipart upload needed.
                self.put(&key, body).await?;
                self.abort(&key, &multipart.upload_id).await?;
            }
            Some(tail) => {
                self.complete_with_tail(info, &mut multipart, tail, tail_len)
                    .await?;
            }
        }
        // Also when the tail is empty: an earlier request may have left one behind.
        self.delete_tails(info, Some(&multipart)).await?;
        multipart.tail = None;
        multipart.stale_tail = None;
        Ok(multipart.state())
    }

    async fn read(&self, info: &UploadInfo, range: Range<u64>) -> Result<ByteStream<'static>> {
        Ok(self.get(&self.object(info)?, range).await?)
    }

    fn direct(&self) -> Option<&dyn chunkd_core::DirectParts> {
        Some(self)
    }

    fn concat(&self) -> Option<&dyn chunkd_core::Concat> {
        Some(self)
    }

    async fn check(&self) -> Result<()> {
        for bucket in std::iter::once(&self.bucket).chain(&self.other_buckets) {
            let action = bucket.head_bucket(Some(&self.credentials));
            self.client.send(&Signed::new(action, Bytes::new())).await?;
        }
        Ok(())
    }

    fn location(&self, info: &UploadInfo) -> Option<chunkd_core::Location> {
        let object = self.object(info).ok()?;
        Some(chunkd_core::Location::Object {
            bucket: object.bucket.name().to_owned(),
            key: object.key,
        })
    }

    async fn delete(&self, info: &UploadInfo) -> Result<()> {
        let key = self.object(info)?;
        let multipart = Multipart::of(info).ok();
        if let Some(multipart) = &multipart
            && info.status == Status::Open
        {
            self.abort(&key, &multipart.upload_id).await?;
        }
        self.delete_tails(info, multipart.as_ref()).await?;
        self.delete_object(&key).await?;
        Ok(())
    }
}
