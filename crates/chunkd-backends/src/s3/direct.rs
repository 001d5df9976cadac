//! Browser-direct parts: presigned UploadPart URLs (each bound to one part number of
//! one multipart upload, for a limited time), ListParts, and completion.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chunkd_core::{DirectParts, Part, Result, StoreState, UploadInfo};
use rusty_s3::S3Action;

use super::client::{S3Error, Signed};
use super::object::Object;
use super::xml::{element, unescape_etag};
use super::{MIN_PART_SIZE, Multipart, RecordedPart, S3Store};

/// S3 accepts signatures valid for at most a week.
const MAX_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

#[async_trait]
impl DirectParts for S3Store {
    fn min_part_size(&self) -> u64 {
        MIN_PART_SIZE
    }

    fn session(&self, info: &UploadInfo) -> Option<String> {
        Multipart::of(info).ok().map(|m| m.upload_id)
    }

    fn sign_part(&self, info: &UploadInfo, number: u16, valid_for: Duration) -> Result<String> {
        let multipart = Multipart::of(info)?;
        let object = self.object(info)?;
        let action = object.bucket.upload_part(
            Some(&self.credentials),
            &object.key,
            number,
            &multipart.upload_id,
        );
        let valid_for = valid_for.clamp(Duration::from_secs(1), MAX_VALIDITY);
        Ok(action.sign(valid_for).to_string())
    }

    async fn parts(&self, info: &UploadInfo) -> Result<Vec<Part>> {
        let multipart = Multipart::of(info)?;
        Ok(self
            .list_parts(&self.object(info)?, &multipart.upload_id)
            .await?)
    }

    async fn complete(&self, info: &UploadInfo, parts: &[Part]) -> Result<StoreState> {
        let mut multipart = Multipart::of(info)?;
        let key = self.object(info)?;
        let recorded: Vec<RecordedPart> = parts
            .iter()
            .map(|p| RecordedPart {
                number: p.number,
                etag: p.etag.clone(),
            })
            .collect();
        match self
            .complete_multipart(&key, &recorded, &multipart.upload_id)
            .await
        {
            Ok(()) => {}
            // S3's own check of the parts the client named (a wrong ETag, a small part).
            Err(S3Error::Status { status, body })
                if status == http::StatusCode::BAD_REQUEST
                    && (body.contains("InvalidPart") || body.contains("EntityTooSmall")) =>
            {
                return Err(chunkd_core::Error::InvalidPart(
                    "the store refused the named parts (wrong ETag, or a part below 5 MiB)",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        multipart.parts_bytes = parts.iter().map(|p| p.size).sum();
        multipart.next_number = recorded.last().map_or(1, |p| p.number + 1);
        multipart.parts = recorded;
        Ok(multipart.state())
    }
}

impl S3Store {
    /// Every part the service holds for the multipart upload, ascending by number.
    pub(super) async fn list_parts(
        &self,
        object: &Object<'_>,
        upload_id: &str,
    ) -> std::result::Result<Vec<Part>, S3Error> {
        let mut parts = Vec::new();
        let mut marker: Option<u16> = None;
        loop {
            let mut action =
                object
                    .bucket
                    .list_parts(Some(&self.credentials), &object.key, upload_id);
            if let Some(marker) = marker {
                action.set_part_number_marker(marker);
            }
            let (_, body) = self.client.send(&Signed::new(action, Bytes::new())).await?;
            let listed = ListedParts::parse(&String::from_utf8_lossy(&body));
            let last = listed.parts.last().map(|p| p.number);
            parts.extend(listed.parts);
            // Each page must move the marker on, so a service that repeats itself ends
            // the loop (10,000 parts are at most 10 pages).
            match (listed.next_marker, last) {
                (Some(next), Some(_)) if listed.truncated && Some(next) > marker => {
                    marker = Some(next);
                }
                _ => break,
            }
        }
        // Some services list out of order.
        parts.sort_by_key(|p| p.number);
        parts.dedup_by_key(|p| p.number);
        Ok(parts)
    }
}

/// A ListParts answer, read leniently: some S3-compatible services leave out fields
/// (s3s-fs sends no `ETag`, `MaxParts` or `IsTruncated`), so a missing ETag is empty
/// and a missing `IsTruncated` means the list is whole.
struct ListedParts {
    parts: Vec<Part>,
    truncated: bool,
    next_marker: Option<u16>,
}

impl ListedParts {
    fn parse(xml: &str) -> ListedParts {
        let mut parts = Vec::new();
        let mut rest = xml;
        while let Some(start) = rest.find("<Part>") {
            let after = &rest[start + "<Part>".len()..];
            let Some(end) = after.find("</Part>") else {
                break;
            };
            let block = &after[..end];
            let number = element(block, "PartNumber").and_then(|n| n.trim().parse().ok());
            let size = element(block, "Size").and_then(|n| n.trim().parse().ok());
            if let (Some(number), Some(size)) = (number, size) {
                let etag = unescape_etag(element(block, "ETag").unwrap_or_default());
                parts.push(Part { number, etag, size });
            }
            rest = &after[end..];
        }
        // The part list comes first in the document; these follow it.
        ListedParts {
            parts,
            truncated: element(xml, "IsTruncated").is_some_and(|t| t.trim() == "true"),
            next_marker: element(xml, "NextPartNumberMarker").and_then(|n| n.trim().parse().ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ListedParts;

    #[test]
    fn reads_listings_with_and_without_etags() {
        let aws = r#"<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker>
            <Part><PartNumber>1</PartNumber><ETag>&quot;a1&quot;</ETag><Size>5242880</Size></Part>
            <Part><PartNumber>2</PartNumber><ETag>"b2"</ETag><Size>10</Size></Part></ListPartsResult>"#;
        let listed = ListedParts::parse(aws);
        assert_eq!(listed.parts.len(), 2);
        assert_eq!(listed.parts[0].etag, "\"a1\"");
        assert_eq!(listed.parts[1].size, 10);
        assert!(listed.truncated);
        assert_eq!(listed.next_marker, Some(2));
        let s3s = "<ListPartsResult><Part><LastModified>x</LastModified><PartNumber>1</PartNumber><Size>1000</Size></Part></ListPartsResult>";
        let listed = ListedParts::parse(s3s);
        assert_eq!(listed.parts[0].etag, "");
        assert!(!listed.truncated);
    }
}
