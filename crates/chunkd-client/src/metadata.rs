//! Upload metadata: `key=value` pairs from the caller, the defaults (`filename`,
//! `filetype`), and their tus `Upload-Metadata` encoding.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, Result};

/// Ordered key/value pairs; a later value for a key replaces the earlier one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata(Vec<(String, String)>);

impl Metadata {
    /// No pairs.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Sets `key` to `value`, replacing an earlier value. Keys are non-empty and hold
    /// no spaces or commas (tus's rule).
    pub fn insert(&mut self, key: &str, value: &str) -> Result<()> {
        if key.is_empty() || key.chars().any(|c| c == ' ' || c == ',' || c.is_control()) {
            return Err(Error::Invalid(format!(
                "metadata key {key:?}: must be non-empty, without spaces or commas"
            )));
        }
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value.to_owned(),
            None => self.0.push((key.to_owned(), value.to_owned())),
        }
        Ok(())
    }

    /// One `key=value` pair as given on the command line.
    pub fn insert_pair(&mut self, pair: &str) -> Result<()> {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Error::Invalid(format!(
                "metadata {pair:?}: expected key=value"
            )));
        };
        self.insert(key.trim(), value)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// These pairs with `filename` and `filetype` for `path` where not given.
    pub fn with_defaults_for(&self, path: &Path) -> Metadata {
        let mut all = Metadata::new();
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            all.0.push(("filename".to_owned(), name.to_owned()));
        }
        let filetype = mime_guess::from_path(path)
            .first_raw()
            .unwrap_or("application/octet-stream");
        all.0.push(("filetype".to_owned(), filetype.to_owned()));
        for (k, v) in self.iter() {
            // Keys were checked when they were inserted.
            let _ = all.insert(k, v);
        }
        all
    }

    /// The tus `Upload-Metadata` value: `key base64(value)` joined by commas.
    pub fn to_tus(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k} {}", STANDARD.encode(v.as_bytes()))
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_upload_metadata_as_tus_does() {
        let mut m = Metadata::new();
        m.insert("filename", "world_domination_plan.pdf")
            .unwrap_or_else(|e| panic!("{e}"));
        m.insert("is_confidential", "")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.to_tus(),
            "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential"
        );
    }

    #[test]
    fn parses_pairs_and_later_values_win() {
        let mut m = Metadata::new();
        for pair in ["a=1", "b=x=y", "a=2", "empty="] {
            m.insert_pair(pair).unwrap_or_else(|e| panic!("{e}"));
        }
        let pairs: Vec<_> = m.iter().collect();
        assert_eq!(pairs, [("a", "2"), ("b", "x=y"), ("empty", "")]);
    }

    #[test]
    fn refuses_malformed_pairs() {
        let mut m = Metadata::new();
        for pair in ["novalue", "=v", "a b=c", "a,b=c"] {
            assert!(m.insert_pair(pair).is_err(), "{pair:?} was accepted");
        }
    }

    #[test]
    fn defaults_name_and_type_unless_given() {
        let m = Metadata::new().with_defaults_for(Path::new("/tmp/photo.png"));
        assert_eq!(m.get("filename"), Some("photo.png"));
        assert_eq!(m.get("filetype"), Some("image/png"));
        let mut given = Metadata::new();
        given
            .insert("filename", "other.bin")
            .unwrap_or_else(|e| panic!("{e}"));
        let m = given.with_defaults_for(Path::new("x.unknownext"));
        assert_eq!(m.get("filename"), Some("other.bin"));
        assert_eq!(m.get("filetype"), Some("application/octet-stream"));
    }

    proptest::proptest! {
        #[test]
        fn upload_metadata_decodes_to_what_was_set(
            pairs in proptest::collection::btree_map("[a-zA-Z0-9_.-]{1,12}", ".*", 0..6)
        ) {
            let mut m = Metadata::new();
            for (k, v) in &pairs {
                m.insert(k, v).unwrap_or_else(|e| panic!("{e}"));
            }
            let header = m.to_tus();
            let decoded: std::collections::BTreeMap<String, String> = header
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once(' ') {
                    Some((k, v)) => (k.to_owned(), String::from_utf8(STANDARD.decode(v).unwrap_or_default()).unwrap_or_default()),
                    None => (p.to_owned(), String::new()),
                })
                .collect();
            proptest::prop_assert_eq!(decoded, pairs);
        }

        #[test]
        fn any_pair_parses_or_is_refused(text in ".*") {
            let _ = Metadata::new().insert_pair(&text);
        }
    }
}
