//! Lowercase hex, the way digests and derived ids are spelled on the wire.

/// Lower-case hex, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn spells_bytes_as_lowercase_pairs() {
        assert_eq!(super::encode(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(super::encode(&[]), "");
    }
}
