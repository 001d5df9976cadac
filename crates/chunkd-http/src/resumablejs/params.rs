//! The chunk parameters Resumable.js and Flow.js send with every test GET and chunk
//! upload, validated into a chunk of a file.

use std::collections::HashMap;

use super::Dialect;

/// One chunk of one client file, as the client describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkParams {
    /// 1-based.
    pub number: u64,
    /// The nominal chunk size the client splits by.
    pub chunk_size: u64,
    /// Bytes in this chunk.
    pub current_size: u64,
    /// The whole file's size.
    pub total_size: u64,
    /// How many chunks the file is split into.
    pub total_chunks: u64,
    /// The client's id for the file (size and name, by default).
    pub identifier: String,
    /// The file's name, a plain name without a path.
    pub filename: String,
    /// The file's path inside a dropped folder.
    pub relative_path: Option<String>,
    /// The media type the browser gave.
    pub file_type: Option<String>,
}

/// Why a chunk's parameters are refused (400).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A required parameter is absent.
    #[error("missing parameter {0}")]
    Missing(String),
    /// A number parameter is not one.
    #[error("parameter {0} must be a non-negative integer")]
    NotANumber(String),
    /// The parameters contradict each other or break a rule.
    #[error("{0}")]
    Invalid(&'static str),
    /// More chunks than the server takes for one file (the bound).
    #[error("a file may have at most {0} chunks: send larger chunks")]
    TooManyChunks(u64),
}

const MAX_IDENTIFIER: usize = 255;
const MAX_FILENAME: usize = 255;
const MAX_RELATIVE_PATH: usize = 4096;

impl ChunkParams {
    /// Reads and checks the parameters (already merged from query and form).
    pub fn parse(dialect: Dialect, values: &HashMap<String, String>) -> Result<Self, ParamError> {
        let prefix = dialect.prefix();
        let text = |name: &str| -> Result<&str, ParamError> {
            let key = format!("{prefix}{name}");
            values
                .get(&key)
                .map(String::as_str)
                .ok_or(ParamError::Missing(key))
        };
        let number = |name: &str| -> Result<u64, ParamError> {
            let key = format!("{prefix}{name}");
            let v = text(name)?;
            if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParamError::NotANumber(key));
            }
            v.parse().map_err(|_| ParamError::NotANumber(key))
        };
        let params = ChunkParams {
            number: number("ChunkNumber")?,
            chunk_size: number("ChunkSize")?,
            current_size: number("CurrentChunkSize")?,
            total_size: number("TotalSize")?,
            total_chunks: number("TotalChunks")?,
            identifier: text("Identifier")?.to_owned(),
            filename: text("Filename")?.to_owned(),
            relative_path: text("RelativePath")
                .ok()
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            file_type: text("Type")
                .ok()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        };
        params.check()?;
        Ok(params)
    }

    /// The file-level parameters alone (status, cleanup): chunk number and size are
    /// taken as chunk 1's when absent.
    pub fn parse_file(
        dialect: Dialect,
        values: &HashMap<String, String>,
    ) -> Result<Self, ParamError> {
        let prefix = dialect.prefix();
        let mut values = values.clone();
        values
            .entry(format!("{prefix}ChunkNumber"))
            .or_insert_with(|| "1".to_owned());
        if !values.contains_key(&format!("{prefix}CurrentChunkSize")) {
            let get = |k: &str| {
                values
                    .get(&format!("{prefix}{k}"))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let (size, chunk, total) = (get("TotalSize"), get("ChunkSize"), get("TotalChunks"));
            if let (Some(size), Some(chunk), Some(total)) = (size, chunk, total) {
                let first = if total <= 1 { size } else { chunk.min(size) };
                values.insert(format!("{prefix}CurrentChunkSize"), first.to_string());
            }
        }
        Self::parse(dialect, &values)
    }

    fn check(&self) -> Result<(), ParamError> {
        use ParamError::Invalid;
        if self.identifier.is_empty()
            || self.identifier.len() > MAX_IDENTIFIER
            || has_control(&self.identifier)
        {
            return Err(Invalid(
                "identifier must be 1 to 255 characters without control characters",
            ));
        }
        let name = &self.filename;
        if name.is_empty()
            || name.len() > MAX_FILENAME
            || has_control(name)
            || name.contains(['/', '\\'])
            || name == "."
            || name == ".."
        {
            return Err(Invalid(
                "filename must be a plain file name of 1 to 255 characters",
            ));
        }
        if let Some(path) = &self.relative_path {
            let bad_segment = path.split(['/', '\\']).any(|s| s == "..");
            if path.len() > MAX_RELATIVE_PATH
                || has_control(path)
                || bad_segment
                || path.starts_with(['/', '\\'])
            {
                return Err(Invalid("relative path must stay inside its folder"));
            }
        }
        if let Some(t) = &self.file_type
            && (t.len() > 255 || has_control(t))
        {
            return Err(Invalid("type must be a media type"));
        }
        if self.chunk_size == 0 {
            return Err(Invalid("chunk size must be positive"));
        }
        // Resumable.js and Flow.js round the chunk count down (the last chunk absorbs the
        // rest) unless forceChunkSize rounds it up; an empty file is one empty chunk.
        let floor = (self.total_size / self.chunk_size).max(1);
        let ceil = self.total_size.div_ceil(self.chunk_size).max(1);
        if self.total_chunks != floor && self.total_chunks != ceil {
            return Err(Invalid(
                "total chunks do not match total size and chunk size",
            ));
        }
        if self.number == 0 || self.number > self.total_chunks {
            return Err(Invalid("chunk number is outside 1..=total chunks"));
        }
        if self.current_size != self.expected_size() {
            return Err(Invalid(
                "current chunk size does not match the chunk's place in the file",
            ));
        }
        Ok(())
    }

    /// These parameters, if the file has at most `max` chunks.
    pub fn within(self, max: u64) -> Result<Self, ParamError> {
        if self.total_chunks > max {
            return Err(ParamError::TooManyChunks(max));
        }
        Ok(self)
    }

    /// Where this chunk starts in the file.
    pub fn offset(&self) -> u64 {
        (self.number - 1) * self.chunk_size
    }

    /// The size this chunk must have: the nominal size, except the last one, which holds
    /// the rest of the file.
    pub fn expected_size(&self) -> u64 {
        if self.number == self.total_chunks {
            self.total_size.saturating_sub(self.offset())
        } else {
            self.chunk_size
        }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn resumable(number: &str, current: &str) -> HashMap<String, String> {
        values(&[
            ("resumableChunkNumber", number),
            ("resumableChunkSize", "1048576"),
            ("resumableCurrentChunkSize", current),
            ("resumableTotalSize", "3145800"),
            ("resumableTotalChunks", "3"),
            ("resumableIdentifier", "3145800-rand3mbin"),
            ("resumableFilename", "rand3m.bin"),
            ("resumableRelativePath", "dir/rand3m.bin"),
            ("resumableType", ""),
        ])
    }

    #[test]
    fn last_chunk_absorbs_the_rest() {
        let p = ChunkParams::parse(Dialect::Resumable, &resumable("3", "1048648")).expect("valid");
        assert_eq!((p.offset(), p.expected_size()), (2_097_152, 1_048_648));
        assert_eq!(p.relative_path.as_deref(), Some("dir/rand3m.bin"));
        assert_eq!(p.file_type, None);
    }

    #[test]
    fn rejects_inconsistent_geometry() {
        for (number, current) in [
            ("0", "1048576"),
            ("4", "1048576"),
            ("1", "5"),
            ("3", "1048576"),
            ("-1", "1"),
        ] {
            assert!(
                ChunkParams::parse(Dialect::Resumable, &resumable(number, current)).is_err(),
                "{number} {current}"
            );
        }
    }

    #[test]
    fn rejects_hostile_names() {
        for (key, value) in [
            ("resumableFilename", "../../etc/passwd"),
            ("resumableFilename", "a\0b"),
            ("resumableFilename", ".."),
            ("resumableIdentifier", "id\nwith newline"),
            ("resumableRelativePath", "../outside/file"),
            ("resumableRelativePath", "/abs/file"),
        ] {
            let mut v = resumable("1", "1048576");
            v.insert(key.to_owned(), value.to_owned());
            assert!(
                ChunkParams::parse(Dialect::Resumable, &v).is_err(),
                "{key}={value:?}"
            );
        }
        let mut v = resumable("1", "1048576");
        v.insert("resumableIdentifier".into(), "x".repeat(10_000));
        assert!(ChunkParams::parse(Dialect::Resumable, &v).is_err());
    }

    #[test]
    fn flow_uses_its_own_prefix() {
        let v = values(&[
            ("flowChunkNumber", "1"),
            ("flowChunkSize", "10"),
            ("flowCurrentChunkSize", "0"),
            ("flowTotalSize", "0"),
            ("flowTotalChunks", "1"),
            ("flowIdentifier", "0-empty"),
            ("flowFilename", "empty.txt"),
        ]);
        let p = ChunkParams::parse(Dialect::Flow, &v).expect("an empty file is one empty chunk");
        assert_eq!(p.expected_size(), 0);
    }

    proptest! {
        #[test]
        fn accepted_chunks_lie_inside_the_file(
            total in 0u64..10_000_000, chunk in 1u64..3_000_000, number in 0u64..20, force in any::<bool>()
        ) {
            let chunks = if force { total.div_ceil(chunk).max(1) } else { (total / chunk).max(1) };
            let p = ChunkParams {
                number, chunk_size: chunk, current_size: 0, total_size: total, total_chunks: chunks,
                identifier: "id".into(), filename: "f".into(), relative_path: None, file_type: None,
            };
            let p = ChunkParams { current_size: if number >= 1 && number <= chunks { p.expected_size() } else { 0 }, ..p };
            if p.check().is_ok() {
                prop_assert!(p.offset() + p.current_size <= total);
                prop_assert!(number >= 1 && number <= chunks);
            }
        }

        #[test]
        fn parser_never_panics(k in "[a-zA-Z]{0,30}", v in ".{0,40}") {
            let mut m = resumable("1", "1048576");
            m.insert(k, v);
            let _ = ChunkParams::parse(Dialect::Resumable, &m);
        }
    }
}
