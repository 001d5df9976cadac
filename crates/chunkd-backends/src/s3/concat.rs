//! Concatenation inside S3: each finished partial object becomes one or more parts of
//! the final upload by UploadPartCopy, so no byte passes through chunkd. S3 copies only
//! parts it would accept as uploads (at least 5 MiB except the last, at most 5 GiB, at
//! most 10,000), so other sizes are left to the engine, which streams them.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use chunkd_core::{Concat, Result, StoreState, UploadInfo};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rusty_s3::S3Action;

use super::client::{S3Error, Signed};
use super::object::Object;
use super::xml::{element, unescape_etag};
use super::{MIN_PART_SIZE, Multipart, S3Store};

/// The most S3 copies into one part.
const MAX_COPY_PART: u64 = 5 << 30;
const MAX_PARTS: usize = 10_000;

#[async_trait]
impl Concat for S3Store {
    async fn concat(
        &self,
        target: &UploadInfo,
        parts: &[UploadInfo],
    ) -> Result<Option<StoreState>> {
        let lengths: Vec<u64> = parts.iter().map(|p| p.length.unwrap_or(p.offset)).collect();
        let Some(plan) = copy_plan(&lengths) else {
            return Ok(None);
        };
        let _turn = self.writers.turn(&target.id).await;
        let mut multipart = Multipart::of(target)?;
        let key = self.object(target)?;
        for (index, range) in plan {
            let len = range.end - range.start;
            let source = self.object(&parts[index])?;
            let etag = self
                .upload_part_copy(&key, &multipart, &source, range)
                .await?;
            multipart.push(etag, len);
        }
        // The engine finishes the upload next: with every byte in parts and no tail,
        // that completes the multipart upload.
        Ok(Some(multipart.state()))
    }
}

impl S3Store {
    async fn upload_part_copy(
        &self,
        object: &Object<'_>,
        multipart: &Multipart,
        source: &Object<'_>,
        range: Range<u64>,
    ) -> std::result::Result<String, S3Error> {
        let number = multipart.next_number()?;
        let mut action = object.bucket.upload_part(
            Some(&self.credentials),
            &object.key,
            number,
            &multipart.upload_id,
        );
        // Signed with the request, as S3 requires of every x-amz-* header. The source
        // may be in another of the configured buckets.
        let copy_source = format!("/{}/{}", source.bucket.name(), encode_key(&source.key));
        let copy_range = format!("bytes={}-{}", range.start, range.end - 1);
        action
            .headers_mut()
            .insert("x-amz-copy-source", copy_source);
        action
            .headers_mut()
            .insert("x-amz-copy-source-range", copy_range);
        let (_, body) = self.client.send(&Signed::new(action, Bytes::new())).await?;
        let body = String::from_utf8_lossy(&body);
        element(&body, "ETag")
            .map(unescape_etag)
            .filter(|etag| !etag.is_empty())
            .ok_or_else(|| S3Error::Unexpected(format!("UploadPartCopy answered {body}")))
    }
}

/// For each part to copy, in order: which source and which of its bytes. `None` when
/// copying cannot satisfy S3's part rules.
fn copy_plan(lengths: &[u64]) -> Option<Vec<(usize, Range<u64>)>> {
    // Empty sources add nothing, and S3 cannot copy an empty range.
    let sources: Vec<(usize, u64)> = lengths
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, len)| len > 0)
        .collect();
    let mut plan = Vec::new();
    for (position, &(index, len)) in sources.iter().enumerate() {
        if len < MIN_PART_SIZE && position + 1 < sources.len() {
            return None;
        }
        // Even pieces: each of a source above 5 GiB is then at least 2.5 GiB.
        let piece = len.div_ceil(len.div_ceil(MAX_COPY_PART));
        let mut start = 0;
        while start < len {
            let end = (start + piece).min(len);
            plan.push((index, start..end));
            start = end;
        }
    }
    (plan.len() <= MAX_PARTS).then_some(plan)
}

/// `x-amz-copy-source` names the key URL-encoded; `/` stays as it is.
fn encode_key(key: &str) -> String {
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    utf8_percent_encode(key, KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn copies_whole_sources_when_all_but_the_last_are_big_enough() {
        let plan = copy_plan(&[5 * MIB, 0, 8 * MIB, 3]).unwrap();
        assert_eq!(plan, vec![(0, 0..5 * MIB), (2, 0..8 * MIB), (3, 0..3)]);
        assert_eq!(copy_plan(&[2 * MIB]).unwrap(), vec![(0, 0..2 * MIB)]);
        assert_eq!(copy_plan(&[0, 0]).unwrap(), vec![]);
    }

    #[test]
    fn leaves_a_small_source_before_the_end_to_streaming() {
        assert_eq!(copy_plan(&[5 * MIB - 1, 8 * MIB]), None);
        assert_eq!(copy_plan(&[8 * MIB, 1, 8 * MIB]), None);
    }

    #[test]
    fn splits_sources_above_five_gib_evenly() {
        let len = MAX_COPY_PART + 1;
        let plan = copy_plan(&[len, MIB]).unwrap();
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[0].1.end, plan[1].1.start);
        assert_eq!(plan[1].1.end, len);
        assert!(plan.iter().all(|(_, r)| r.end - r.start <= MAX_COPY_PART));
        assert!(
            plan[..2]
                .iter()
                .all(|(_, r)| r.end - r.start >= MIN_PART_SIZE)
        );
    }

    #[test]
    fn refuses_more_than_ten_thousand_parts() {
        assert!(copy_plan(&vec![5 * MIB; MAX_PARTS]).is_some());
        assert_eq!(copy_plan(&vec![5 * MIB; MAX_PARTS + 1]), None);
    }

    #[test]
    fn encodes_keys_for_the_copy_source() {
        assert_eq!(encode_key("up/a b+c%"), "up/a%20b%2Bc%25");
        assert_eq!(encode_key("ü"), "%C3%BC");
    }
}
