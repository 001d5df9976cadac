//! Where and how to reach the bucket.

use std::fmt;
use std::path::PathBuf;

/// Where and how to reach the bucket (`http://` or `https://`). `Debug` hides the secret.
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct S3Config {
    /// `https://host:port` of the service (or `http://`).
    pub endpoint: String,
    /// The bucket upload objects are kept in unless a hook places them in one of
    /// `other_buckets`, and where staging objects always are (see `create_bucket`).
    pub bucket: String,
    /// Other buckets on the same service, with the same keys, that a pre-create hook
    /// may place uploads in (staging objects stay in `bucket`).
    pub other_buckets: Vec<String>,
    /// The region requests are signed for (`us-east-1` for most S3-compatible services).
    pub region: String,
    /// The access key id requests are signed with.
    pub access_key: String,
    /// The secret key requests are signed with.
    pub secret_key: String,
    /// Objects are named `<prefix><upload id>`.
    pub prefix: String,
    /// Size of every part but the last; at least 5 MiB. Memory per request.
    pub part_size: u64,
    /// `https://bucket.host/` instead of `https://host/bucket/`.
    pub virtual_host: bool,
    /// [`S3Store::connect`](super::S3Store::connect) creates the bucket if it is missing.
    pub create_bucket: bool,
    /// PEM certificates to trust besides the system's (a private CA).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub ca_file: Option<PathBuf>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            bucket: String::new(),
            other_buckets: Vec::new(),
            region: "us-east-1".to_owned(),
            access_key: String::new(),
            secret_key: String::new(),
            prefix: String::new(),
            part_size: 8 << 20,
            virtual_host: false,
            create_bucket: false,
            ca_file: None,
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.secret_key.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("other_buckets", &self.other_buckets)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &secret)
            .field("prefix", &self.prefix)
            .field("part_size", &self.part_size)
            .field("virtual_host", &self.virtual_host)
            .field("create_bucket", &self.create_bucket)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret_key() {
        let config = S3Config {
            access_key: "AKIAEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI-secret".into(),
            ..S3Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("wJalrXUtnFEMI-secret"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("AKIAEXAMPLE"),
            "{shown}"
        );
    }
}
