//! Who is uploading: from a header a trusted proxy sets, or from a signed bearer token
//! (an HS256 JSON Web Token, which any web framework can mint). Front ends read the
//! [`Owner`] that [`identify`] found with [`owner_of`], and act through [`caller`]: the
//! engine checks ownership, no front end compares owners.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use chunkd_core::{Caller, Uploads};
use http::{HeaderMap, HeaderName, Method, header};

use crate::refusal::Refusal;

pub(crate) mod slots;
pub(crate) mod token;

pub use token::{MIN_KEY_BYTES, TokenRules, WeakKey};

pub use chunkd_core::Owner;

/// What the identity layer found for a request, kept in its extensions.
#[derive(Clone, Debug)]
struct Identified(Result<Owner, IdentityError>);

/// What an event stream request's `access_token` query parameter identifies; only the
/// event stream reads it (RFC 6750 §2.3 allows the parameter; URLs end up in logs, so no
/// other request may authenticate this way).
#[derive(Clone, Debug)]
struct StreamIdentified(Result<Owner, IdentityError>);

/// Who a request acts for: anonymous when no identity layer ran, a refusal (rendered by
/// the front end in its protocol's terms) when identification failed.
pub fn owner_of(req: &Request) -> Result<Owner, Refusal> {
    owner_in(req.extensions())
}

/// [`owner_of`] for extractors, which see a request's parts.
pub(crate) fn owner_in(extensions: &http::Extensions) -> Result<Owner, Refusal> {
    match extensions.get::<Identified>() {
        None => Ok(Owner::anonymous()),
        Some(Identified(found)) => found.clone().map_err(Refusal::from),
    }
}

/// Who the request was found to be, for the access log: `None` when identification
/// failed (the refusal says why).
pub(crate) fn logged_identity(extensions: &http::Extensions) -> Option<String> {
    match extensions.get::<Identified>() {
        None => Some(Owner::anonymous().to_string()),
        Some(Identified(found)) => found.as_ref().ok().map(Owner::to_string),
    }
}

/// [`owner_of`] for the event stream, which may also be identified by its query.
pub(crate) fn stream_owner_of(req: &Request) -> Result<Owner, Refusal> {
    match req.extensions().get::<StreamIdentified>() {
        Some(StreamIdentified(found)) => found.clone().map_err(Refusal::from),
        None => owner_of(req),
    }
}

/// The engine as the request's identity sees it.
pub fn caller(uploads: &Uploads, req: &Request) -> Result<Caller, Refusal> {
    Ok(uploads.for_owner(owner_of(req)?))
}

/// [`caller`], with the request described for hooks as one of `protocol`.
pub(crate) fn caller_for(
    uploads: &Uploads,
    req: &Request,
    protocol: &'static str,
) -> Result<Caller, Refusal> {
    Ok(crate::hook_request::describe(
        caller(uploads, req)?,
        req,
        protocol,
    ))
}

/// Where identities come from.
#[derive(Clone)]
pub enum Source {
    /// Everyone is anonymous.
    None,
    /// A header set by a front proxy that authenticated the user (e.g. `X-Forwarded-User`).
    /// Only safe when clients cannot reach chunkd except through that proxy.
    TrustedHeader(HeaderName),
    /// `Authorization: Bearer <JWT>` signed with HS256 and checked by these rules; the
    /// user is `sub`.
    Token(TokenRules),
    /// The application chunkd runs inside says who, with [`set_identity`] before the
    /// request reaches chunkd (the Python package does, from the framework's user). No
    /// header is read; a request without it is anonymous.
    Provided,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::None => f.write_str("None"),
            Source::TrustedHeader(h) => write!(f, "TrustedHeader({h})"),
            Source::Token(rules) => write!(f, "Token({rules:?})"),
            Source::Provided => f.write_str("Provided"),
        }
    }
}

/// How requests are identified.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the identity comes from.
    pub source: Source,
    /// Refuse (403) requests without a valid identity.
    pub required: bool,
    /// Upload requests (POST, PATCH, PUT) one client may have running at once: an
    /// identity wherever it connects from, an anonymous client per address. More are
    /// refused with 429 before their body is read. 0: no limit.
    pub max_uploads_per_client: usize,
}

/// Upload requests a client may have running at once, unless configured otherwise: a
/// browser sends a few files at a time, so this only stops one client taking over.
pub const DEFAULT_MAX_UPLOADS_PER_CLIENT: usize = 32;

impl Default for Config {
    /// Everyone anonymous, at most [`DEFAULT_MAX_UPLOADS_PER_CLIENT`] uploads each.
    fn default() -> Self {
        Config {
            source: Source::None,
            required: false,
            max_uploads_per_client: DEFAULT_MAX_UPLOADS_PER_CLIENT,
        }
    }
}

/// Why a request could not be identified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No identity where one is required.
    #[error("authentication required")]
    Missing,
    /// An identity was sent but is not acceptable (the reason says why).
    #[error("invalid identity: {0}")]
    Invalid(&'static str),
    /// The client already has as many upload requests running as it may.
    #[error("too many uploads at once from this client (at most {limit})")]
    TooManyUploads {
        /// Upload requests a client may have running at once.
        limit: usize,
    },
}

const MAX_IDENTITY: usize = 255;

impl Config {
    /// Who `headers` identify: anonymous when nothing is sent and none is required.
    pub fn identify(&self, headers: &HeaderMap) -> Result<Owner, IdentityError> {
        self.identify_with(headers, None)
    }

    /// Who a stream request identifies by its `access_token` query parameter, when it
    /// has one and no `Authorization`: a browser's `EventSource` cannot send headers.
    fn identify_stream(&self, req: &Request) -> Option<Result<Owner, IdentityError>> {
        let streams = req.method() == Method::GET
            && !req.headers().contains_key(header::AUTHORIZATION)
            && req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/event-stream"));
        let token = crate::query::value(req.uri().query(), "access_token").filter(|_| streams)?;
        Some(self.identify_with(req.headers(), Some(&token)))
    }

    fn identify_with(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Owner, IdentityError> {
        let identity = match &self.source {
            Source::None | Source::Provided => None,
            Source::TrustedHeader(name) => {
                let mut values = headers.get_all(name).iter();
                match (values.next(), values.next()) {
                    (None, _) => None,
                    // A proxy that adds its header to one the client sent leaves two:
                    // which one the proxy vouches for cannot be told.
                    (Some(_), Some(_)) => {
                        return Err(IdentityError::Invalid(
                            "identity header sent more than once",
                        ));
                    }
                    (Some(v), None) => Some(
                        v.to_str()
                            .map_err(|_| IdentityError::Invalid("identity header is not text"))?
                            .trim()
                            .to_owned(),
                    ),
                }
            }
            Source::Token(rules) => match headers.get(header::AUTHORIZATION) {
                None => match query_token {
                    None => None,
                    Some(token) => Some(rules.verify(token.trim(), now())?),
                },
                Some(v) => {
                    let v = v
                        .to_str()
                        .map_err(|_| IdentityError::Invalid("malformed Authorization"))?;
                    let token = v
                        .strip_prefix("Bearer ")
                        .ok_or(IdentityError::Invalid("expected a Bearer token"))?;
                    Some(rules.verify(token.trim(), now())?)
                }
            },
        };
        self.admitted(identity.as_deref())
    }

    /// The owner an identity found makes: printable, bounded, and present when identity
    /// is required (an empty one is none).
    fn admitted(&self, identity: Option<&str>) -> Result<Owner, IdentityError> {
        let identity = identity.filter(|i| !i.is_empty());
        if let Some(i) = identity
            && (i.len() > MAX_IDENTITY || i.chars().any(char::is_control))
        {
            return Err(IdentityError::Invalid("identity too long or not printable"));
        }
        match (identity, self.required) {
            (None, true) => Err(IdentityError::Missing),
            (None, false) => Ok(Owner::anonymous()),
            (Some(name), _) => Ok(Owner::named(name)),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Adds identification to `router`: each request carries what was found, which front
/// ends read with [`owner_of`] and refuse, in their own protocol's terms, when it failed.
/// An upload request past its client's `max_uploads_per_client` is such a failure.
/// CORS preflights and discovery (`OPTIONS`) are never identified.
pub fn identify<S: Clone + Send + Sync + 'static>(router: Router<S>, config: Config) -> Router<S> {
    let limited = config.max_uploads_per_client > 0;
    if matches!(config.source, Source::None) && !config.required && !limited {
        // Nobody is identified or counted: every request is anonymous, nothing to add.
        return router;
    }
    let slots = limited.then(|| slots::Slots::new(config.max_uploads_per_client));
    let config = Arc::new(config);
    router.layer(middleware::from_fn(move |mut req: Request, next: Next| {
        let config = config.clone();
        let slots = slots.clone();
        async move {
            if req.method() == Method::OPTIONS {
                return next.run(req).await;
            }
            let provided = req.extensions_mut().remove::<Identified>();
            let mut found = match (&config.source, provided) {
                // What the embedding application said, held to a header's rules.
                (Source::Provided, Some(Identified(found))) => {
                    found.and_then(|owner| config.admitted(owner.as_deref()))
                }
                _ => {
                    if let Some(stream) = config.identify_stream(&req) {
                        req.extensions_mut().insert(StreamIdentified(stream));
                    }
                    config.identify(req.headers())
                }
            };
            // Held until the handler has answered, which is after it read the body.
            let mut slot = None;
            if let (Ok(owner), Some(slots)) = (&found, &slots)
                && slots::is_upload(req.method())
            {
                slot = slots.take(slots::client_key(owner, req.extensions()));
                if slot.is_none() {
                    found = Err(IdentityError::TooManyUploads {
                        limit: slots.limit(),
                    });
                }
            }
            req.extensions_mut().insert(Identified(found));
            let response = next.run(req).await;
            drop(slot);
            response
        }
    }))
}

/// Says who `req` acts for, for an application that authenticates requests itself (its
/// own sessions, in its own middleware) instead of through [`identify`]. An `Err` makes
/// the front ends refuse the request in their protocol's terms. Where both run, the one
/// nearer the routes decides, unless [`identify`]'s source is [`Source::Provided`], which
/// keeps this one.
pub fn set_identity<B>(req: &mut http::Request<B>, found: Result<Owner, IdentityError>) {
    req.extensions_mut().insert(Identified(found));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token_key() {
        let config = Config {
            source: Source::Token(
                TokenRules::new(b"token-key-0123456789abcdef0123456789".to_vec()).unwrap(),
            ),
            required: true,
            ..Default::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("token-key"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn required_identity_refuses_anonymous_requests() {
        let config = Config {
            source: Source::TrustedHeader(HeaderName::from_static("x-user")),
            required: true,
            ..Default::default()
        };
        assert_eq!(
            config.identify(&HeaderMap::new()),
            Err(IdentityError::Missing)
        );
        let mut h = HeaderMap::new();
        h.insert("x-user", "carol".parse().expect("value"));
        assert_eq!(config.identify(&h), Ok(Owner::named("carol")));
        h.insert("x-user", "x".repeat(300).parse().expect("value"));
        assert!(config.identify(&h).is_err());
    }

    /// A client that sends the trusted header itself, behind a proxy that appends its
    /// own, leaves two values: neither is believed.
    #[test]
    fn a_trusted_header_sent_twice_is_refused() {
        let config = Config {
            source: Source::TrustedHeader(HeaderName::from_static("x-user")),
            required: false,
            ..Default::default()
        };
        let mut h = HeaderMap::new();
        h.append("x-user", "mallory".parse().expect("value"));
        h.append("x-user", "alice".parse().expect("value"));
        assert_eq!(
            config.identify(&h),
            Err(IdentityError::Invalid(
                "identity header sent more than once"
            ))
        );
    }

    #[test]
    fn an_application_sets_the_identity_itself() {
        let mut req = Request::new(axum::body::Body::empty());
        assert_eq!(owner_of(&req).ok(), Some(Owner::anonymous()));
        set_identity(&mut req, Ok(Owner::named("dana")));
        assert_eq!(owner_of(&req).ok(), Some(Owner::named("dana")));
        set_identity(&mut req, Err(IdentityError::Missing));
        let refusal = owner_of(&req).expect_err("an unidentified request is refused");
        assert_eq!(refusal.status, http::StatusCode::FORBIDDEN);
    }
}
