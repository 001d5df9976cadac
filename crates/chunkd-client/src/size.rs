//! Sizes as people write them: `8MiB`, `512k`, `1G`, `65536`.

use crate::error::{Error, Result};

/// Bytes in `text`: a number with an optional unit (`B`, `K`/`KiB`, `M`/`MiB`,
/// `G`/`GiB`, `T`/`TiB` are powers of 1024; `KB`, `MB`, `GB`, `TB` powers of 1000).
pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let invalid = || Error::Invalid(format!("size {text:?}: expected e.g. 8MiB, 512k or 65536"));
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(invalid()),
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(multiplier).ok_or_else(invalid);
    }
    // A fraction such as 1.5MiB.
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_sizes() {
        for (text, bytes) in [
            ("65536", 65536),
            ("8MiB", 8 << 20),
            ("8 MiB", 8 << 20),
            ("512k", 512 << 10),
            ("1G", 1 << 30),
            ("5MB", 5_000_000),
            ("1.5MiB", 3 << 19),
            ("0", 0),
        ] {
            assert_eq!(parse_size(text).ok(), Some(bytes), "{text}");
        }
    }

    #[test]
    fn refuses_nonsense() {
        for text in ["", "MiB", "8 parsecs", "-1", "99999999999T", "1e3"] {
            assert!(parse_size(text).is_err(), "{text:?} was accepted");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_refused(text in ".*") {
            let _ = parse_size(&text);
        }

        #[test]
        fn whole_numbers_with_units(n in 0u64..1_000_000, unit in 0usize..5) {
            let (suffix, multiplier) = [("", 1u64), ("k", 1 << 10), ("MiB", 1 << 20), ("G", 1 << 30), ("MB", 1_000_000)][unit];
            proptest::prop_assert_eq!(parse_size(&format!("{n}{suffix}")).ok(), Some(n * multiplier));
        }
    }
}
