//! A `Content-Disposition` that is safe whatever file name a client chose.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

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
