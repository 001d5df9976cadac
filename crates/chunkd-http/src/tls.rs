//! TLS for the listeners (rustls): a certificate chain and key from PEM files, read
//! again on [`Certificates::reload`] (the binary calls it on SIGHUP) without touching
//! open connections; ALPN offers HTTP/2 and HTTP/1.1.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// `[tls]`: what a `tls://` listener presents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// The certificate chain, PEM, leaf first.
    pub cert_file: Option<PathBuf>,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// The oldest TLS version accepted.
    pub min_version: MinVersion,
}

/// The oldest TLS version a listener accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MinVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "1.2"))]
    Tls12,
    /// TLS 1.3 only.
    #[cfg_attr(feature = "serde", serde(rename = "1.3"))]
    Tls13,
}

/// Why the certificate could not be used; each names the setting and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A `tls://` listener without both files configured.
    #[error("a tls:// listener needs tls.cert_file and tls.key_file")]
    NotConfigured,
    /// A file is missing or unreadable.
    #[error("{setting} {}: cannot read it: {source}", path.display())]
    Read {
        /// `tls.cert_file` or `tls.key_file`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What reading said.
        source: std::io::Error,
    },
    /// A file holds no PEM block of the kind wanted, or a malformed one.
    #[error("{setting} {}: {what}", path.display())]
    Pem {
        /// `tls.cert_file` or `tls.key_file`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The key is of an unsupported kind or does not belong to the certificate.
    #[error("tls.key_file {} does not fit tls.cert_file {}: {source}", key.display(), cert.display())]
    Key {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate a listener presents, replaceable while it serves.
#[derive(Debug)]
pub struct Certificates {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Reads the files `config` names.
    pub fn load(config: &Config) -> Result<Arc<Self>, TlsError> {
        let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
            return Err(TlsError::NotConfigured);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = read(cert_file, key_file, &provider)?;
        Ok(Arc::new(Certificates {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            provider,
            current: RwLock::new(Arc::new(current)),
        }))
    }

    /// Reads the files again; new handshakes present what they hold now. On an error
    /// the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = read(&self.cert_file, &self.key_file, &self.provider)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(fresh);
        Ok(())
    }

    /// A handshake driver presenting these certificates, with ALPN `h2` and `http/1.1`.
    pub fn acceptor(self: &Arc<Self>, min_version: MinVersion) -> Result<TlsAcceptor, TlsError> {
        let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
            MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            MinVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(versions)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

fn read(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let bytes = |setting, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            setting,
            path: path.to_owned(),
            source,
        })
    };
    let pem = |setting, path: &Path, what: String| TlsError::Pem {
        setting,
        path: path.to_owned(),
        what,
    };
    let chain = CertificateDer::pem_slice_iter(&bytes("tls.cert_file", cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem("tls.cert_file", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem("tls.cert_file", cert, "holds no CERTIFICATE".into()));
    }
    let private = PrivateKeyDer::from_pem_slice(&bytes("tls.key_file", key)?)
        .map_err(|e| pem("tls.key_file", key, e.to_string()))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|source| TlsError::Key {
        key: key.to_owned(),
        cert: cert.to_owned(),
        source,
    })
}
