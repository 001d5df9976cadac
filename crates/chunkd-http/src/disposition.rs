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

/// What a kept file name must be, for refusals.
pub const FILENAME_RULE: &str = "filename must be 1 to 255 printable characters";

/// The one cleaner of client file names, for every front end: the last path component
/// (browsers may send a path), 1 to 255 bytes, no control characters anywhere;
/// `Ok(None)` when no name is left (absent, empty, `.` or `..`).
pub fn clean_filename(name: Option<String>) -> Result<Option<String>, &'static str> {
    let Some(name) = name else {
        return Ok(None);
    };
    // A path is at most PATH_MAX long; beyond that it is not a name a browser sends.
    if name.len() > 4096 || name.chars().any(char::is_control) {
        return Err(FILENAME_RULE);
    }
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    if base.len() > 255 {
        return Err(FILENAME_RULE);
    }
    Ok((!matches!(base, "" | "." | "..")).then(|| base.to_owned()))
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
    fn cleans_names_to_their_last_component() {
        let clean = |n: &str| clean_filename(Some(n.to_owned()));
        assert_eq!(clean("C:\\docs\\a.txt"), Ok(Some("a.txt".into())));
        assert_eq!(clean("../../etc/passwd"), Ok(Some("passwd".into())));
        for nothing in ["", ".", "..", "dir/", "a/.."] {
            assert_eq!(clean(nothing), Ok(None), "{nothing:?}");
        }
        assert_eq!(
            clean(&format!("{}/b", "d".repeat(300))),
            Ok(Some("b".into()))
        );
        assert_eq!(clean(&"n".repeat(256)), Err(FILENAME_RULE));
        assert_eq!(clean("a\0b"), Err(FILENAME_RULE));
        assert_eq!(clean("dir\n/b"), Err(FILENAME_RULE));
        assert_eq!(clean_filename(None), Ok(None));
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
