//! The application's own authentication: users sign in with a password and get a random
//! session token, sent back as `Authorization: Bearer <token>`. The middleware tells
//! chunkd who the caller is; chunkd never sees a password or a token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chunkd_http::identity::{self, IdentityError, Owner};
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Users and the sessions they opened; clones share them.
#[derive(Clone)]
pub struct Sessions(Arc<Inner>);

struct Inner {
    /// Name to password. A real application keeps salted hashes in its database.
    users: HashMap<String, String>,
    /// Token to user name.
    open: Mutex<HashMap<String, String>>,
}

/// `NAME:PASSWORD`, as `--user` takes it.
pub fn parse_user(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((name, password)) if !name.is_empty() && !password.is_empty() => {
            Ok((name.to_owned(), password.to_owned()))
        }
        _ => Err("expected NAME:PASSWORD".to_owned()),
    }
}

impl Sessions {
    pub fn new(users: Vec<(String, String)>) -> Self {
        Sessions(Arc::new(Inner {
            users: users.into_iter().collect(),
            open: Mutex::default(),
        }))
    }

    /// The user whose session token `headers` carry.
    fn user_of(&self, headers: &HeaderMap) -> Option<String> {
        let token = headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        // A panic elsewhere cannot leave the map half-changed: inserts are single calls.
        let open = self.0.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(token.trim()).cloned()
    }
}

/// Digests compared byte by byte in full: the time taken says nothing about where the
/// guess went wrong, or how long the password is.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0, |diff, (x, y)| diff | (x ^ y))
        == 0
}

/// What `POST /api/sessions` takes.
#[derive(Deserialize)]
pub struct SignIn {
    user: String,
    password: String,
}

/// What a successful sign-in answers.
#[derive(Serialize)]
pub struct Session {
    token: String,
}

/// `POST /api/sessions`: a new session token for a known user and password, else 401.
pub async fn sign_in(
    State(sessions): State<Sessions>,
    Json(form): Json<SignIn>,
) -> Result<(StatusCode, Json<Session>), StatusCode> {
    let known = sessions.0.users.get(&form.user);
    if !known.is_some_and(|password| same_secret(password, &form.password)) {
        tracing::info!(user = %form.user, "sign-in refused");
        return Err(StatusCode::UNAUTHORIZED);
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let token = chunkd_http::hex::encode(&raw);
    let mut open = sessions
        .0
        .open
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    open.insert(token.clone(), form.user);
    Ok((StatusCode::CREATED, Json(Session { token })))
}

/// The signed-in user, for the application's own handlers; 401 without a session.
#[derive(Clone, Debug)]
pub struct User(pub String);

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<User>()
            .cloned()
            .ok_or_else(|| StatusCode::UNAUTHORIZED.into_response())
    }
}

/// Finds the session of every request and tells both the application ([`User`]) and
/// chunkd ([`identity::set_identity`]) who sent it. Without one, chunkd refuses uploads
/// in each protocol's own terms (a tus error for tus clients, a problem document for
/// IETF ones); the application's routes decide for themselves.
pub async fn authenticate(
    State(sessions): State<Sessions>,
    mut req: Request,
    next: Next,
) -> Response {
    // Discovery and CORS preflights carry no credentials, as chunkd's own identity
    // layer also assumes.
    if req.method() != Method::OPTIONS {
        let user = sessions.user_of(req.headers());
        let found = user.clone().map(Owner::named).ok_or(IdentityError::Missing);
        identity::set_identity(&mut req, found);
        if let Some(user) = user {
            req.extensions_mut().insert(User(user));
        }
    }
    next.run(req).await
}
