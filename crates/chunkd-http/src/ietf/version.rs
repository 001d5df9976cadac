//! Interop versions: what changes on the wire from one draft to the next.
//!
//! | interop | drafts | differences handled here |
//! |---|---|---|
//! | 3 | -01 | `Upload-Incomplete` (inverted) instead of `Upload-Complete` |
//! | 4, 5 | -02, -03 | `Upload-Complete` |
//! | 6 | -04, -05 | PATCH needs `application/partial-upload`; `Upload-Limit` age key `expires`; problem types |
//! | 7, 8 | -06 to -12 | age key `max-age` |
//!
//! A request without `Upload-Draft-Interop-Version` is served by the newest rules and,
//! as the draft requires of draft servers, gets no 104.

use http::HeaderMap;

pub(crate) const INTEROP_HEADER: &str = "upload-draft-interop-version";

/// The versions spoken, oldest first.
pub const SUPPORTED: std::ops::RangeInclusive<u8> = 3..=8;
const NEWEST: u8 = *SUPPORTED.end();

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Interop {
    /// What the client announced; `None` when it sent nothing.
    announced: Option<u8>,
}

/// The client announced an interop version this server does not speak.
#[derive(Debug)]
pub(crate) struct Unsupported(pub String);

impl Interop {
    pub(crate) fn of(headers: &HeaderMap) -> Result<Interop, Unsupported> {
        let Some(value) = headers.get(INTEROP_HEADER) else {
            return Ok(Interop { announced: None });
        };
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match super::fields::non_negative(value.as_bytes()) {
            Some(n) => match u8::try_from(n) {
                Ok(n) if SUPPORTED.contains(&n) => Ok(Interop { announced: Some(n) }),
                _ => Err(Unsupported(text)),
            },
            _ => Err(Unsupported(text)),
        }
    }

    /// The version to echo, and with it the permission to send 104.
    pub(crate) fn announced(self) -> Option<u8> {
        self.announced
    }

    fn level(self) -> u8 {
        self.announced.unwrap_or(NEWEST)
    }

    /// The header carrying completeness, and whether its true value means "complete".
    pub(crate) fn completeness_header(self) -> (&'static str, bool) {
        if self.level() == 3 {
            ("upload-incomplete", false)
        } else {
            ("upload-complete", true)
        }
    }

    /// Interop 3 defaults an absent `Upload-Incomplete` to complete; later versions
    /// require the field.
    pub(crate) fn completeness_default(self) -> Option<bool> {
        (self.level() == 3).then_some(true)
    }

    pub(crate) fn requires_partial_upload_type(self) -> bool {
        self.level() >= 6
    }

    /// The `Upload-Limit` key for the remaining lifetime, in seconds.
    pub(crate) fn age_key(self) -> &'static str {
        if self.level() <= 6 {
            "expires"
        } else {
            "max-age"
        }
    }

    /// Progress 104s (with `Upload-Offset`) arrived with interop 5.
    pub(crate) fn progress_interim(self) -> bool {
        self.level() >= 5
    }

    /// Problem types (RFC 9457 bodies) arrived with interop 6.
    pub(crate) fn problem_details(self) -> bool {
        self.level() >= 6
    }
}
