//! Signed deliveries: `Chunkd-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`, each
//! `v1` an HMAC-SHA256 over `<t>.<body>` with one of the configured keys (two during a
//! rotation), as Stripe signs its webhooks. A receiver recomputes it with its key,
//! compares in constant time, and refuses old timestamps (replays).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "chunkd-signature";

/// Keys shorter than this are refused at startup: an HMAC key is a password.
pub const MIN_KEY_BYTES: usize = 16;

/// The signing keys, newest first.
#[derive(Clone)]
pub(crate) struct Signer {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} keys)", self.keys.len())
    }
}

impl Signer {
    pub(crate) fn new(keys: Vec<Vec<u8>>) -> Signer {
        Signer { keys }
    }

    /// The header value for `body` sent at `timestamp` (seconds since the epoch).
    pub(crate) fn sign(&self, timestamp: u64, body: &[u8]) -> String {
        let mut value = format!("t={timestamp}");
        for key in &self.keys {
            value.push_str(",v1=");
            value.push_str(&hex(&mac(key, timestamp, body)));
        }
        value
    }
}

fn mac(key: &[u8], timestamp: u64, body: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_signs_the_timestamp_and_the_body() {
        let signer = Signer::new(vec![
            b"new-key-0123456789".to_vec(),
            b"old-key-0123456789".to_vec(),
        ]);
        let value = signer.sign(1_700_000_000, b"{}");
        let parts: Vec<&str> = value.split(',').collect();
        assert_eq!(parts[0], "t=1700000000");
        assert_eq!(parts.len(), 3);
        // Known answer, as `printf '1700000000.{}' | openssl dgst -sha256 -hmac new-key-0123456789`.
        assert_eq!(
            parts[1],
            "v1=c585f4d1f153e94d59c81093dae5ba038922bcc5d6a8f8ebc00149e17e686240"
        );
        assert_ne!(parts[1], parts[2], "each key signs on its own");
        assert_ne!(
            signer.sign(1_700_000_001, b"{}"),
            value,
            "the timestamp is signed"
        );
    }
}
