//! The Structured Field Values (RFC 9651) the draft's headers use: Items and
//! Dictionaries, parsed whole or refused whole, as section 4.2 requires.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A bare item. Strings, tokens and display strings are kept as text; none of the
/// draft's fields uses their contents beyond telling them apart.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Bare {
    Integer(i64),
    /// In thousandths.
    Decimal(i64),
    Text(String),
    Bytes(Vec<u8>),
    Boolean(bool),
}

/// A dictionary member: an item, or an inner list (kept only as "not an item").
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Member {
    Item(Bare),
    InnerList,
}

/// `Some(true|false)` for a valid Boolean item; `None` for anything else.
pub(crate) fn boolean(value: &[u8]) -> Option<bool> {
    match item(value)? {
        Bare::Boolean(b) => Some(b),
        _ => None,
    }
}

/// A valid non-negative Integer item.
pub(crate) fn non_negative(value: &[u8]) -> Option<u64> {
    match item(value)? {
        Bare::Integer(n) => u64::try_from(n).ok(),
        _ => None,
    }
}

pub(crate) fn item(value: &[u8]) -> Option<Bare> {
    let mut p = Parser { s: value, i: 0 };
    p.skip_sp();
    let bare = p.bare()?;
    p.params()?;
    p.skip_sp();
    p.at_end().then_some(bare)
}

/// More members than any field of the draft has (a few digest algorithms): a larger
/// dictionary is refused rather than parsed at the client's expense.
pub(crate) const MAX_MEMBERS: usize = 64;

/// Members in order; a repeated key keeps its first place and its last value (RFC 9651
/// section 4.2.2: "overwrite its value").
pub(crate) fn dictionary(value: &[u8]) -> Option<Vec<(String, Member)>> {
    let mut p = Parser { s: value, i: 0 };
    let mut members: Vec<(String, Member)> = Vec::new();
    let mut places: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    p.skip_sp();
    while !p.at_end() {
        let key = p.key()?;
        let member = if p.eat(b'=') {
            if p.peek() == Some(b'(') {
                p.inner_list()?;
                Member::InnerList
            } else {
                let bare = p.bare()?;
                p.params()?;
                Member::Item(bare)
            }
        } else {
            p.params()?;
            Member::Item(Bare::Boolean(true))
        };
        match places.get(&key) {
            Some(&place) => members[place].1 = member,
            None if members.len() == MAX_MEMBERS => return None,
            None => {
                places.insert(key.clone(), members.len());
                members.push((key, member));
            }
        }
        p.skip_ows();
        if p.at_end() {
            break;
        }
        if !p.eat(b',') {
            return None;
        }
        p.skip_ows();
        if p.at_end() {
            // A trailing comma.
            return None;
        }
    }
    Some(members)
}

/// `:base64:` for a byte sequence.
pub(crate) fn byte_sequence(bytes: &[u8]) -> String {
    format!(":{}:", STANDARD.encode(bytes))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &[u8] {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    fn key(&mut self) -> Option<String> {
        let first = self.peek()?;
        if !(first.is_ascii_lowercase() || first == b'*') {
            return None;
        }
        let key = self
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b));
        Some(String::from_utf8_lossy(key).into_owned())
    }

    fn params(&mut self) -> Option<()> {
        while self.eat(b';') {
            self.skip_sp();
            self.key()?;
            if self.eat(b'=') {
                self.bare()?;
            }
        }
        Some(())
    }

    fn inner_list(&mut self) -> Option<()> {
        if !self.eat(b'(') {
            return None;
        }
        loop {
            self.skip_sp();
            if self.eat(b')') {
                return self.params();
            }
            self.bare()?;
            self.params()?;
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return None;
            }
        }
    }

    fn bare(&mut self) -> Option<Bare> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string().map(Bare::Text),
            b':' => self.bytes().map(Bare::Bytes),
            b'?' => {
                self.i += 1;
                let b = match self.peek()? {
                    b'0' => false,
                    b'1' => true,
                    _ => return None,
                };
                self.i += 1;
                Some(Bare::Boolean(b))
            }
            b'@' => {
                self.i += 1;
                match self.number()? {
                    Bare::Integer(n) => Some(Bare::Integer(n)),
                    _ => None,
                }
            }
            b'%' => {
                self.i += 1;
                self.string().map(Bare::Text)
            }
            b if b.is_ascii_alphabetic() || b == b'*' => {
                let token = self
                    .take_while(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b));
                Some(Bare::Text(String::from_utf8_lossy(token).into_owned()))
            }
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Bare> {
        let negative = self.eat(b'-');
        let int = self.take_while(|b| b.is_ascii_digit()).to_vec();
        if int.is_empty() {
            return None;
        }
        let parse = |d: &[u8]| std::str::from_utf8(d).ok()?.parse::<i64>().ok();
        let sign = if negative { -1 } else { 1 };
        if !self.eat(b'.') {
            if int.len() > 15 {
                return None;
            }
            return parse(&int).map(|n| Bare::Integer(sign * n));
        }
        let frac = self.take_while(|b| b.is_ascii_digit()).to_vec();
        if int.len() > 12 || frac.is_empty() || frac.len() > 3 {
            return None;
        }
        let scale = 10i64.pow(3 - frac.len() as u32);
        Some(Bare::Decimal(
            sign * (parse(&int)? * 1000 + parse(&frac)? * scale),
        ))
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' => {
                    self.i += 1;
                    let c = self.peek().filter(|c| matches!(c, b'"' | b'\\'))?;
                    out.push(c);
                    self.i += 1;
                }
                c if (0x20..0x7f).contains(&c) => {
                    out.push(c);
                    self.i += 1;
                }
                _ => return None,
            }
        }
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        if !self.eat(b':') {
            return None;
        }
        let b64 = self
            .take_while(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
            .to_vec();
        if !self.eat(b':') {
            return None;
        }
        STANDARD.decode(b64).ok()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn booleans() {
        assert_eq!(boolean(b"?1"), Some(true));
        assert_eq!(boolean(b" ?0 "), Some(false));
        assert_eq!(boolean(b"?1;a=2"), Some(true));
        for bad in [
            &b""[..],
            b"?",
            b"?2",
            b"1",
            b"true",
            b"?1,?0",
            b"?1 x",
            b"?01",
        ] {
            assert_eq!(boolean(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn integers() {
        assert_eq!(non_negative(b"0"), Some(0));
        assert_eq!(non_negative(b"999999999999999"), Some(999_999_999_999_999));
        for bad in [
            &b""[..],
            b"-1",
            b"1.5",
            b"1000000000000000",
            b"12a",
            b"0x10",
            b"?1",
            b"\"5\"",
        ] {
            assert_eq!(
                non_negative(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn dictionaries() {
        let d = dictionary(b"sha-256=:AAE=:, sha-512=:/w==:;p=1").unwrap();
        assert_eq!(
            d[0],
            ("sha-256".into(), Member::Item(Bare::Bytes(vec![0, 1])))
        );
        assert_eq!(
            d[1],
            ("sha-512".into(), Member::Item(Bare::Bytes(vec![255])))
        );
        let d = dictionary(b"a=1, b, c=(1 2);x, a=3").unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0], ("a".into(), Member::Item(Bare::Integer(3))));
        assert_eq!(d[1].0, "b");
        assert_eq!(d[2].1, Member::InnerList);
        assert_eq!(dictionary(b"").unwrap(), vec![]);
        let members = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}=1"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(
            dictionary(members(MAX_MEMBERS).as_bytes()).unwrap().len(),
            MAX_MEMBERS
        );
        assert_eq!(dictionary(members(MAX_MEMBERS + 1).as_bytes()), None);
        // Repeats of one key are one member however many there are.
        let repeats = vec!["k=1"; 40_000].join(",");
        assert_eq!(dictionary(repeats.as_bytes()).unwrap().len(), 1);
        for bad in [
            &b"A=1"[..],
            b"a=1,",
            b"a=:AA=",
            b"a=1 b=2",
            b"a=(1",
            b"a=\"x",
        ] {
            assert_eq!(dictionary(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #[test]
        fn integers_round_trip(n in 0u64..=999_999_999_999_999) {
            prop_assert_eq!(non_negative(n.to_string().as_bytes()), Some(n));
        }

        #[test]
        fn byte_sequences_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let field = format!("sha-256={}", byte_sequence(&bytes));
            let d = dictionary(field.as_bytes()).unwrap();
            prop_assert_eq!(&d[0].1, &Member::Item(Bare::Bytes(bytes)));
        }

        #[test]
        fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = item(&input);
            let _ = dictionary(&input);
        }
    }
}
