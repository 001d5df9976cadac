//! Where the server listens: TCP (HTTP/1.1 and h2c), TLS over TCP (HTTP/2 by ALPN, and
//! HTTP/1.1), or a unix socket (behind a proxy on the same machine). Written as
//! `127.0.0.1:1080`, `tls://0.0.0.0:8443` and `unix:/run/chunkd/chunkd.sock`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;

/// A listening address as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// Plain TCP.
    Tcp(SocketAddr),
    /// TLS over TCP.
    Tls(SocketAddr),
    /// A unix socket at this path.
    Unix(PathBuf),
}

impl FromStr for Address {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let tcp = |a: &str| {
            a.parse::<SocketAddr>()
                .map_err(|_| format!("{s:?} is not host:port, tls://host:port or unix:/path"))
        };
        if let Some(path) = s.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(format!("{s:?}: a unix socket path must be absolute"));
            }
            return Ok(Address::Unix(path));
        }
        match s.strip_prefix("tls://") {
            Some(a) => Ok(Address::Tls(tcp(a)?)),
            None => Ok(Address::Tcp(tcp(s)?)),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Tls(a) => write!(f, "tls://{a}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// In a request's extensions when it came over a TLS connection (upload URLs handed
/// back say `https`).
#[derive(Clone, Copy, Debug)]
pub struct OverTls;

/// A bound listener, ready for [`crate::interim::serve_with`].
pub enum Listener {
    /// HTTP/1.1 and h2c.
    Tcp(TcpListener),
    /// TLS, then HTTP/2 or HTTP/1.1 as ALPN chose.
    Tls(TcpListener, TlsAcceptor),
    /// HTTP/1.1 and h2c over a unix socket.
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Listener::Tcp(listener)
    }
}

impl Listener {
    /// Binds `address`; a `tls://` one presents what `tls` gives. At a unix socket path
    /// that exists, a socket nobody listens on (left by a killed server) is replaced;
    /// a live one, or anything that is not a socket, is an error.
    pub async fn bind(address: &Address, tls: Option<&TlsAcceptor>) -> Result<Self, String> {
        let failed = |e: std::io::Error| format!("cannot listen on {address}: {e}");
        match address {
            Address::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a).await.map_err(failed)?)),
            Address::Tls(a) => {
                let Some(tls) = tls else {
                    return Err(format!(
                        "{address}: {}",
                        crate::tls::TlsError::NotConfigured
                    ));
                };
                let listener = TcpListener::bind(a).await.map_err(failed)?;
                Ok(Listener::Tls(listener, tls.clone()))
            }
            Address::Unix(path) => {
                remove_stale_socket(path)
                    .map_err(|e| format!("cannot listen on {address}: {e}"))?;
                Ok(Listener::Unix(UnixListener::bind(path).map_err(failed)?))
            }
        }
    }

    /// Where it listens, with the port the system chose for `:0`.
    pub fn local_address(&self) -> std::io::Result<Address> {
        Ok(match self {
            Listener::Tcp(l) => Address::Tcp(l.local_addr()?),
            Listener::Tls(l, _) => Address::Tls(l.local_addr()?),
            Listener::Unix(l) => Address::Unix(
                l.local_addr()?
                    .as_pathname()
                    .map(PathBuf::from)
                    .unwrap_or_default(),
            ),
        })
    }
}

fn remove_stale_socket(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt as _;
    let Ok(meta) = path.symlink_metadata() else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err("the path exists and is not a socket".into());
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err("another server listens there".into()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing a stale socket");
            std::fs::remove_file(path).map_err(|e| format!("cannot remove the stale socket: {e}"))
        }
        Err(e) => Err(format!("the path exists and cannot be checked: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print_back() {
        for text in [
            "127.0.0.1:1080",
            "tls://[::1]:8443",
            "unix:/run/chunkd.sock",
        ] {
            let address: Address = text.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(address.to_string(), text);
        }
        for bad in [
            "localhost",
            "tls://x",
            "unix:relative.sock",
            "http://1.2.3.4:5",
            "",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
    }
}
