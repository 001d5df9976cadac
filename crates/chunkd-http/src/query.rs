//! `application/x-www-form-urlencoded` pairs: the syntax of query strings and of
//! urlencoded form bodies, decoded in one place for every front end.

/// Every `name=value` pair, percent- and `+`-decoded, in order; a pair without `=` has
/// an empty value and empty pairs (`a=1&&b=2`) are skipped.
pub fn pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The first value of `name` (ASCII case-insensitive) in a request's query, if any.
pub fn value(query: Option<&str>, name: &str) -> Option<String> {
    pairs(query?)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        assert_eq!(
            pairs("a=1&b=x+y%2Fz&&c"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y/z".into()),
                ("c".into(), String::new())
            ]
        );
    }

    #[test]
    fn finds_the_first_value_whatever_the_case_of_its_name() {
        let q = Some("X-Progress-ID=a%2Db&x-progress-id=c&key=k+1");
        assert_eq!(value(q, "x-progress-id").as_deref(), Some("a-b"));
        assert_eq!(value(q, "KEY").as_deref(), Some("k 1"));
        assert_eq!(value(q, "missing"), None);
        assert_eq!(value(None, "key"), None);
    }
}
