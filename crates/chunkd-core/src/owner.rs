//! Who is asking: the identity every engine call that touches an upload acts for.

use std::fmt;

/// The identity a request acts for. Uploads belong to the identity that created them
/// and are visible only to it; anonymous uploads only to anonymous callers.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Owner(Option<String>);

impl Owner {
    /// Nobody in particular: what every caller is when identities are not in use.
    pub fn anonymous() -> Self {
        Owner(None)
    }

    /// A named identity (a user id from a token, a proxy's user header).
    pub fn named(name: impl Into<String>) -> Self {
        Owner(Some(name.into()))
    }

    /// `None` for [`Owner::anonymous`], the way the upload record stores it.
    pub fn from_record(owner: Option<String>) -> Self {
        Owner(owner)
    }

    /// The name, `None` when anonymous.
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether this is [`Owner::anonymous`].
    pub fn is_anonymous(&self) -> bool {
        self.0.is_none()
    }

    /// Whether this identity may see an upload whose record names `owner`.
    pub fn may_access(&self, owner: Option<&str>) -> bool {
        self.as_deref() == owner
    }

    pub(crate) fn into_record(self) -> Option<String> {
        self.0
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Owner(anonymous)"),
            Some(name) => write!(f, "Owner({name:?})"),
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_deref().unwrap_or("anonymous"))
    }
}
