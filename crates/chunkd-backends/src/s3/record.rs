//! The multipart state of one upload, as kept in its record: the multipart upload, its
//! parts by number, the tail objects, and which store instance last wrote parts.

use chunkd_core::{StoreState, UploadInfo};

use super::client::S3Error;

const UPLOAD_ID: &str = "s3.upload_id";
/// `etag,etag,…` for parts numbered on from 1; a part after a gap is `number:etag`.
const PARTS: &str = "s3.parts";
const PART_SIZE: &str = "s3.part_size";
const PARTS_BYTES: &str = "s3.parts_bytes";
/// The number the next part gets, when a claim (see `fence.rs`) moved it past the last.
const NEXT_PART: &str = "s3.next_part";
/// The store instance whose claim the part numbers from `NEXT_PART` on belong to.
const WRITER: &str = "s3.writer";
/// The name of the recorded tail object, and of the one it replaced (deleted by the next
/// write, once a record naming the new one is saved).
const TAIL: &str = "s3.tail";
const STALE_TAIL: &str = "s3.stale_tail";
/// The object key a pre-create hook placed the upload at, when it did.
pub(super) const KEY: &str = "s3.key";
/// The bucket a pre-create hook placed it in, when not the configured one.
pub(super) const BUCKET: &str = "s3.bucket";

/// S3 numbers parts 1 to 10,000.
pub(super) const MAX_PART_NUMBER: u16 = 10_000;

/// One part of the multipart upload, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RecordedPart {
    pub(super) number: u16,
    pub(super) etag: String,
}

pub(super) struct Multipart {
    pub(super) upload_id: String,
    pub(super) part_size: u64,
    /// Ascending by number, perhaps with gaps (numbers claimed and never used).
    pub(super) parts: Vec<RecordedPart>,
    /// Bytes in the parts: appended parts are all `part_size`, copied ones are not.
    pub(super) parts_bytes: u64,
    /// The number the next part gets: past every recorded part, and past every number a
    /// writer that lost its lock may still send.
    pub(super) next_number: u16,
    pub(super) writer: Option<String>,
    pub(super) tail: Option<String>,
    pub(super) stale_tail: Option<String>,
    /// The placed object key (else the prefix and the id).
    pub(super) key: Option<String>,
    /// The placed bucket (else the configured one).
    pub(super) bucket: Option<String>,
}

impl Multipart {
    /// A new multipart upload, written by `writer`.
    pub(super) fn new(upload_id: String, part_size: u64, writer: &str) -> Multipart {
        Multipart {
            upload_id,
            part_size,
            parts: Vec::new(),
            parts_bytes: 0,
            next_number: 1,
            writer: Some(writer.to_owned()),
            tail: None,
            stale_tail: None,
            key: None,
            bucket: None,
        }
    }

    pub(super) fn of(info: &UploadInfo) -> std::result::Result<Multipart, S3Error> {
        let invalid = |what: &str| S3Error::Unexpected(format!("{} has {what}", info.id));
        let upload_id = info
            .store
            .get(UPLOAD_ID)
            .cloned()
            .ok_or_else(|| invalid("no multipart upload"))?;
        let part_size = info
            .store
            .get(PART_SIZE)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("no part size"))?;
        let parts = parse_parts(info.store.get(PARTS).map_or("", String::as_str))
            .ok_or_else(|| invalid("an invalid part list"))?;
        let parts_bytes = match info.store.get(PARTS_BYTES) {
            Some(s) => s.parse().map_err(|_| invalid("no valid part total"))?,
            // Records written before the total was kept hold appended parts only.
            None => parts.len() as u64 * part_size,
        };
        let after_last = parts.last().map_or(1, |p| p.number.saturating_add(1));
        let next_number = match info.store.get(NEXT_PART) {
            Some(s) => s
                .parse::<u16>()
                .map_err(|_| invalid("no valid next part number"))?
                .max(after_last),
            None => after_last,
        };
        Ok(Multipart {
            upload_id,
            part_size,
            parts,
            parts_bytes,
            next_number,
            writer: info.store.get(WRITER).cloned(),
            tail: info.store.get(TAIL).cloned(),
            stale_tail: info.store.get(STALE_TAIL).cloned(),
            key: info.store.get(KEY).cloned(),
            bucket: info.store.get(BUCKET).cloned(),
        })
    }

    /// The number for the next part, refused past S3's last.
    pub(super) fn next_number(&self) -> std::result::Result<u16, S3Error> {
        if self.next_number > MAX_PART_NUMBER {
            return Err(S3Error::Settings(format!(
                "the upload needs a part numbered above {MAX_PART_NUMBER}: raise part_size"
            )));
        }
        Ok(self.next_number)
    }

    /// Records the part just sent as number [`next_number`](Multipart::next_number).
    pub(super) fn push(&mut self, etag: String, len: u64) {
        self.parts.push(RecordedPart {
            number: self.next_number,
            etag,
        });
        self.next_number += 1;
        self.parts_bytes += len;
    }

    pub(super) fn state(&self) -> StoreState {
        let mut state = StoreState::new();
        state.insert(UPLOAD_ID.to_owned(), self.upload_id.clone());
        state.insert(PART_SIZE.to_owned(), self.part_size.to_string());
        state.insert(PARTS.to_owned(), format_parts(&self.parts));
        state.insert(PARTS_BYTES.to_owned(), self.parts_bytes.to_string());
        let after_last = self.parts.last().map_or(1, |p| p.number + 1);
        if self.next_number != after_last {
            state.insert(NEXT_PART.to_owned(), self.next_number.to_string());
        }
        for (key, value) in [
            (WRITER, &self.writer),
            (TAIL, &self.tail),
            (STALE_TAIL, &self.stale_tail),
            (KEY, &self.key),
            (BUCKET, &self.bucket),
        ] {
            if let Some(value) = value {
                state.insert(key.to_owned(), value.clone());
            }
        }
        state
    }
}

fn parse_parts(list: &str) -> Option<Vec<RecordedPart>> {
    let mut parts: Vec<RecordedPart> = Vec::new();
    for entry in list.split(',').filter(|e| !e.is_empty()) {
        let after_last = parts.last().map_or(Some(1), |p| p.number.checked_add(1))?;
        // ETags are quoted, so a leading number before `:` is never part of one.
        let (number, etag) = match entry.split_once(':') {
            Some((n, etag)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                (n.parse().ok()?, etag)
            }
            _ => (after_last, entry),
        };
        if number < after_last || number > MAX_PART_NUMBER {
            return None;
        }
        parts.push(RecordedPart {
            number,
            etag: etag.to_owned(),
        });
    }
    Some(parts)
}

fn format_parts(parts: &[RecordedPart]) -> String {
    let mut out = String::new();
    let mut after_last = 1;
    for part in parts {
        if !out.is_empty() {
            out.push(',');
        }
        if part.number != after_last {
            out.push_str(&format!("{}:", part.number));
        }
        out.push_str(&part.etag);
        after_last = part.number + 1;
    }
    out
}

/// The body of CompleteMultipartUpload, numbering each part as recorded (a part list
/// may have gaps, which S3 allows).
pub(super) fn completion_body(parts: &[RecordedPart]) -> String {
    let mut body = String::from("<CompleteMultipartUpload>");
    for part in parts {
        let etag = part
            .etag
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        body.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
            part.number
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u16, etag: &str) -> RecordedPart {
        RecordedPart {
            number,
            etag: etag.to_owned(),
        }
    }

    #[test]
    fn part_lists_number_on_and_say_where_they_jump() {
        let parts = vec![part(1, "\"a\""), part(2, "\"b\""), part(5, "\"c\"")];
        let text = format_parts(&parts);
        assert_eq!(text, "\"a\",\"b\",5:\"c\"");
        assert_eq!(parse_parts(&text).unwrap(), parts);
        // Records from before gaps existed read as they always did.
        assert_eq!(
            parse_parts("\"a\",\"b\"").unwrap(),
            vec![part(1, "\"a\""), part(2, "\"b\"")]
        );
        assert_eq!(parse_parts("").unwrap(), vec![]);
    }

    #[test]
    fn part_lists_out_of_order_or_out_of_range_are_refused() {
        assert_eq!(parse_parts("3:\"a\",2:\"b\""), None);
        assert_eq!(parse_parts("\"a\",1:\"b\""), None);
        assert_eq!(parse_parts("10001:\"a\""), None);
        assert_eq!(parse_parts("99999999999:\"a\""), None);
        assert!(parse_parts("10000:\"a\"").is_some());
        assert_eq!(parse_parts("10000:\"a\",\"b\""), None);
    }

    #[test]
    fn the_next_number_is_recorded_only_when_claimed_past_the_last_part() {
        let mut info = chunkd_core::testing::sample_info(None);
        let mut multipart = Multipart::new("u".into(), 5 << 20, "w1");
        multipart.push("\"a\"".into(), 5 << 20);
        info.store = multipart.state();
        assert!(!info.store.contains_key(NEXT_PART));
        assert_eq!(Multipart::of(&info).unwrap().next_number, 2);
        multipart.next_number = 9;
        info.store = multipart.state();
        let read = Multipart::of(&info).unwrap();
        assert_eq!(read.next_number, 9);
        assert_eq!(read.writer.as_deref(), Some("w1"));
    }

    #[test]
    fn no_part_is_numbered_past_ten_thousand() {
        let mut multipart = Multipart::new("u".into(), 5 << 20, "w");
        multipart.next_number = MAX_PART_NUMBER;
        assert_eq!(multipart.next_number().unwrap(), MAX_PART_NUMBER);
        multipart.push("\"a\"".into(), 1);
        assert!(multipart.next_number().is_err());
    }

    #[test]
    fn completion_names_each_part_by_its_own_number() {
        let body = completion_body(&[part(1, "\"a\""), part(4, "\"b&c\"")]);
        assert_eq!(
            body,
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag></Part>\
             <Part><PartNumber>4</PartNumber><ETag>\"b&amp;c\"</ETag></Part></CompleteMultipartUpload>"
        );
    }
}
