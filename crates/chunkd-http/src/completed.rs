//! What a completed file looks like to the application: one description, built from the
//! upload record, sent by forward mode for every protocol (and by hooks, later).

use chunkd_core::UploadInfo;
use chunkd_core::metadata::keys;
use serde::Serialize;

/// A stored file, as forward mode describes it: `{id, filename, content_type, size, md5,
/// sha256, url}`, with `null` for what is not known (digests are known for form uploads,
/// which compute them on the way through).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CompletedFile {
    /// chunkd's upload id.
    pub id: String,
    /// The client's file name, cleaned.
    pub filename: Option<String>,
    /// The media type the client gave.
    pub content_type: Option<String>,
    /// Bytes stored.
    pub size: u64,
    /// Hex MD5 of the bytes, where computed on the way through.
    pub md5: Option<String>,
    /// Hex SHA-256 of the bytes, where computed on the way through.
    pub sha256: Option<String>,
    /// Where the application (or the client) can download it.
    pub url: Option<String>,
    /// The form field that carried it; only form uploads have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl CompletedFile {
    /// The description of a finished upload, downloadable at `url`.
    pub fn of(info: &UploadInfo, url: Option<String>) -> Self {
        let text = |key: &str| info.metadata.text(key).map(str::to_owned);
        CompletedFile {
            id: info.id.as_str().to_owned(),
            filename: text(keys::FILENAME),
            content_type: text(keys::FILETYPE),
            size: info.length.unwrap_or(info.offset),
            md5: None,
            sha256: None,
            url,
            field: text(keys::FIELD),
        }
    }

    /// The same file with the digests computed while it streamed in.
    pub fn with_digests(mut self, md5: String, sha256: String) -> Self {
        self.md5 = Some(md5);
        self.sha256 = Some(sha256);
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chunkd_core::testing::sample_info;

    #[test]
    fn every_front_end_sends_the_readme_shape() {
        let mut info = sample_info(Some(5));
        info.metadata.insert(keys::FILENAME, "a.txt");
        info.metadata.insert(keys::FILETYPE, "text/plain");
        let file = CompletedFile::of(&info, Some("http://h/files/x".into()));
        let json = serde_json::to_value(&file).unwrap();
        let mut names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "content_type",
                "filename",
                "id",
                "md5",
                "sha256",
                "size",
                "url"
            ]
        );
        assert_eq!(json["filename"], "a.txt");
        assert_eq!(json["size"], 5);
        assert!(json["md5"].is_null());
        let hashed = file.with_digests("m".into(), "s".into());
        assert_eq!(serde_json::to_value(&hashed).unwrap()["sha256"], "s");
    }
}
