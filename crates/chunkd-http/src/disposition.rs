//! A `Content-Disposition` that is safe whatever file name a client chose.

use http::{HeaderMap, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// RFC 5987 attr-char: everything else is percent-encoded.
const ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// The file name a request's `Content-Disposition` gives, still unchecked (see
/// [`clean_filename`]): `filename*=UTF-8''...` (RFC 8187) when present, else the quoted
/// `filename="..."`, percent-decoded as blueimp and browsers' `encodeURI` send it.
pub fn filename(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_DISPOSITION)?.to_str().ok()?;
    let extended = v.split(';').map(str::trim).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        let (charset, rest) = value.trim().split_once('\'')?;
        let (_language, encoded) = rest.split_once('\'')?;
        (name.trim().eq_ignore_ascii_case("filename*") && charset.eq_ignore_ascii_case("utf-8"))
            .then(|| {
                percent_decode_str(encoded)
                    .decode_utf8()
                    .ok()
                    .map(|s| s.into_owned())
            })?
    });
    if extended.is_some() {
        return extended;
    }
    let start = v.find("filename=\"")? + "filename=\"".len();
    let name = &v[start..start + v[start..].find('"')?];
    Some(percent_decode_str(name).decode_utf8_lossy().into_owned())
}

/// A client's file name made safe to keep: the last path component, 1 to 255
/// printable characters; `Ok(None)` when nothing is left.
pub fn clean_filename(name: Option<String>) -> Result<Option<String>, &'static str> {
    match name {
        None => Ok(None),
        Some(n) if n.is_empty() => Ok(None),
        Some(n) if n.len() > 255 || n.chars().any(char::is_control) => {
            Err("filename must be 1 to 255 printable characters")
        }
        // Only the last path component is a file name (browsers may send a path).
        Some(n) => Ok(n
            .rsplit(['/', '\\'])
            .next()
            .map(str::to_owned)
            .filter(|n| !n.is_empty() && n != "..")),
    }
}

/// Whether `s` is a well-formed `type/subtype` (RFC 6838 restricted names), the only
/// client-chosen types kept and served.
pub fn is_media_type(s: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    s.split_once('/').is_some_and(|(a, b)| token(a) && token(b))
}

/// `attachment; filename="ascii fallback"; filename*=UTF-8''encoded` for a client-chosen
/// name: path components, quotes, control characters and overlong names never get through.
pub fn attachment(name: Option<&str>) -> String {
    let base = name
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(""))
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .map(|n| n.trim().trim_start_matches('.').to_owned())
        .filter(|n| !n.is_empty());
    let Some(base) = base else {
        return "attachment".to_owned();
    };
    let fallback: String = base
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' && c != ';' => c,
            _ => '_',
        })
        .collect();
    format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(&base, ATTR)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn strips_paths_and_quotes() {
        assert_eq!(
            attachment(Some("../../etc/pass\"wd")),
            "attachment; filename=\"pass_wd\"; filename*=UTF-8''pass%22wd"
        );
        assert_eq!(
            attachment(Some("C:\\x\\report.pdf")),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(attachment(Some("")), "attachment");
        assert_eq!(attachment(Some("..")), "attachment");
        assert_eq!(attachment(None), "attachment");
    }

    #[test]
    fn keeps_unicode_in_the_extended_form() {
        assert_eq!(
            attachment(Some("été.txt")),
            "attachment; filename=\"_t_.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt"
        );
    }

    proptest! {
        #[test]
        fn is_always_a_valid_single_header_value(name in any::<String>()) {
            let v = attachment(Some(&name));
            prop_assert!(http::HeaderValue::from_str(&v).is_ok());
            prop_assert!(!v.contains('/') && !v.contains('\\'));
            prop_assert_eq!(v.matches('"').count() % 2, 0);
        }
    }
}
