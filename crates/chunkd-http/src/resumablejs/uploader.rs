//! Who an anonymous uploader is. Resumable.js and Flow.js name a file by an identifier
//! any client can guess (`size-filename` by default), so a chunk set keyed by it alone
//! could be seeded or read by another client. Identified requests are keyed by their
//! owner; an anonymous one by its `chunkd-uploader` cookie. A request without the cookie
//! gets one derived (keyed HMAC) from its address, so the parallel first requests of one
//! client agree on it, and a client that keeps no cookies stays bound to its address.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use chunkd_core::UploadId;
use hmac::{Hmac, Mac};
use http::{HeaderValue, header};
use sha2::Sha256;

const COOKIE: &str = "chunkd-uploader";
/// 128 bits, as lowercase hex.
const TOKEN_LEN: usize = 32;

/// Issues and reads uploader tokens.
pub(crate) struct Uploaders {
    key: Vec<u8>,
}

/// An anonymous request's uploader token, and whether its response must set the cookie.
pub(crate) struct Uploader {
    pub(crate) token: String,
    fresh: bool,
}

impl Uploaders {
    /// `key` keys the derivation: several instances behind one balancer need the same
    /// one. Without it, a random key for this process.
    pub(crate) fn new(key: Option<Vec<u8>>) -> Self {
        let key = key.unwrap_or_else(|| UploadId::generate().as_str().as_bytes().to_vec());
        Uploaders { key }
    }

    pub(crate) fn of(&self, req: &Request) -> Uploader {
        if let Some(token) = cookie(req) {
            return Uploader {
                token,
                fresh: false,
            };
        }
        let address = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip().to_string())
            .unwrap_or_default();
        let token = Hmac::<Sha256>::new_from_slice(&self.key)
            .map(|mut mac| {
                mac.update(b"chunkd-uploader\0");
                mac.update(address.as_bytes());
                crate::hex::encode(&mac.finalize().into_bytes())[..TOKEN_LEN].to_owned()
            })
            // HMAC takes keys of any length; were it ever refused, a token of its own.
            .unwrap_or_else(|_| UploadId::generate().as_str().to_owned());
        Uploader { token, fresh: true }
    }
}

impl Uploader {
    /// Sets the cookie on a response to a request that had none.
    pub(crate) fn remember(&self, response: &mut Response) {
        if !self.fresh {
            return;
        }
        let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax", self.token);
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// A well-formed token from the request's cookies; anything else is ignored.
fn cookie(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| v.len() == TOKEN_LEN && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
}
