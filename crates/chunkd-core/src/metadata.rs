//! User metadata of an upload: binary-safe values under unique keys.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The metadata keys chunkd itself writes and reads; any other key is the client's.
pub mod keys {
    /// The file's name as the client gave it (cleaned of paths).
    pub const FILENAME: &str = "filename";
    /// The file's media type as the client gave it.
    pub const FILETYPE: &str = "filetype";
    /// Where in a dropped folder the file was (Resumable.js, Flow.js).
    pub const RELATIVE_PATH: &str = "relativePath";
    /// The form field that carried the file (form uploads).
    pub const FIELD: &str = "field";
}

/// Key/value metadata as clients send it (tus `Upload-Metadata`, a form's filename, ...).
/// Values are arbitrary bytes; keys are unique. Stored as base64 so any value round-trips.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata(BTreeMap<String, Vec<u8>>);

impl Metadata {
    /// No metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts a pair; returns false (and keeps the old value) if the key exists.
    pub fn try_insert(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> bool {
        match self.0.entry(key.into()) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(value.into());
                true
            }
        }
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.0.insert(key.into(), value.into());
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.get(key).map(Vec::as_slice)
    }

    /// The value as UTF-8 text, if it is valid UTF-8.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every pair, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Whether there are no pairs at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let encoded: BTreeMap<&str, String> = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), STANDARD.encode(v)))
            .collect();
        encoded.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let encoded = BTreeMap::<String, String>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for (k, v) in encoded {
            let bytes = STANDARD.decode(v).map_err(serde::de::Error::custom)?;
            out.insert(k, bytes);
        }
        Ok(Metadata(out))
    }
}
