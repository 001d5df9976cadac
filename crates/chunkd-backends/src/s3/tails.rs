//! Tail objects: the bytes of an upload past its last whole part, kept between requests.
//! Each write puts its tail under a new name, recorded with the offset, so a tail put by
//! a write whose record was never saved can never be read for the recorded one.

use std::collections::BTreeSet;

use bytes::Bytes;
use chunkd_core::{Result, UploadInfo};
use rusty_s3::actions::ListObjectsV2;

use super::client::{S3Error, Signed};
use super::object::Object;
use super::{Multipart, S3Store};

/// Listing pages followed when looking for an upload's unrecorded tails (1000 keys a
/// page): each is left by one crash, so a few is already many.
const MAX_LIST_PAGES: usize = 10;

impl S3Store {
    /// The tail object called `name` (records from before tails were named have none),
    /// in the configured bucket wherever the upload was placed.
    pub(super) fn tail_object(&self, info: &UploadInfo, name: Option<&str>) -> Object<'_> {
        Object {
            bucket: &self.bucket,
            key: self.tail_name(info, name),
        }
    }

    fn tail_name(&self, info: &UploadInfo, name: Option<&str>) -> String {
        match name {
            Some(name) => format!("{}{}.tail.{name}", self.prefix, info.id),
            None => format!("{}{}.tail", self.prefix, info.id),
        }
    }

    /// Deletes every tail object of `info`: those its record names, and those put by
    /// writes whose record was never saved (a crash between the put and the save),
    /// which only a listing finds. A service that refuses to list keeps the latter.
    pub(super) async fn delete_tails(
        &self,
        info: &UploadInfo,
        multipart: Option<&Multipart>,
    ) -> Result<()> {
        let mut keys = match self.listed_tails(info).await {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!(id = %info.id, error = %e, "cannot list the upload's tail objects; unrecorded ones stay");
                BTreeSet::new()
            }
        };
        // The named ones too, in case the listing stopped short of them; and the
        // unnamed tail of records from before tails were named, which is not listed.
        let named = multipart.map_or([None, None], |m| {
            [m.tail.as_deref(), m.stale_tail.as_deref()]
        });
        for name in named.into_iter().flatten() {
            keys.insert(self.tail_name(info, Some(name)));
        }
        keys.insert(self.tail_name(info, None));
        for key in keys {
            let object = Object {
                bucket: &self.bucket,
                key,
            };
            self.delete_object(&object).await?;
        }
        Ok(())
    }

    /// The keys under `<key>.tail.`, as far as [`MAX_LIST_PAGES`] pages go.
    async fn listed_tails(
        &self,
        info: &UploadInfo,
    ) -> std::result::Result<BTreeSet<String>, S3Error> {
        let prefix = format!("{}.", self.tail_name(info, None));
        let mut keys = BTreeSet::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            action.with_prefix(prefix.as_str());
            if let Some(token) = &token {
                action.with_continuation_token(token.as_str());
            }
            let (_, body) = self.client.send(&Signed::new(action, Bytes::new())).await?;
            let page = std::str::from_utf8(&body)
                .map_err(|e| e.to_string())
                .and_then(|xml| ListObjectsV2::parse_response(xml).map_err(|e| e.to_string()))
                .map_err(|e| S3Error::Unexpected(format!("ListObjectsV2: {e}")))?;
            keys.extend(page.contents.into_iter().map(|object| object.key));
            match page.next_continuation_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(keys)
    }
}
