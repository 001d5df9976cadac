//! Every configured listener bound before serving starts (each failure names the
//! setting), and the TLS certificate read again on SIGHUP.

use std::os::unix::fs::MetadataExt as _;
use std::sync::Arc;

use chunkd_http::listener::{Address, Listener};
use chunkd_http::tls::Certificates;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;

/// The bound listeners, `listen` first, and the certificates their TLS ones present.
pub struct Bound {
    pub listeners: Vec<(Listener, Address)>,
    pub certificates: Option<Arc<Certificates>>,
    /// The unix sockets made, to remove at the end.
    pub sockets: Vec<Socket>,
}

/// A unix socket this process made: its path and the file it made there.
pub struct Socket {
    path: std::path::PathBuf,
    file: (u64, u64),
}

pub async fn bind(config: &Config) -> anyhow::Result<Bound> {
    let addresses: Vec<(&str, &Address)> = std::iter::once(("listen", &config.listen))
        .chain(config.also_listen.iter().map(|a| ("also_listen", a)))
        .collect();
    let wants_tls = addresses.iter().any(|(_, a)| matches!(a, Address::Tls(_)));
    let (certificates, acceptor) = match wants_tls {
        true => {
            let certificates = Certificates::load(&config.tls)?;
            let acceptor = certificates.acceptor(config.tls.min_version)?;
            (Some(certificates), Some(acceptor))
        }
        false => (None, None),
    };
    let mut listeners = Vec::new();
    let mut sockets = Vec::new();
    for (setting, address) in addresses {
        let listener = Listener::bind(address, acceptor.as_ref())
            .await
            .map_err(|e| anyhow::anyhow!("{setting}: {e}"))?;
        if let Address::Unix(path) = address {
            let meta = std::fs::symlink_metadata(path)?;
            sockets.push(Socket {
                path: path.clone(),
                file: (meta.dev(), meta.ino()),
            });
        }
        let local = listener.local_address()?;
        listeners.push((listener, local));
    }
    Ok(Bound {
        listeners,
        certificates,
        sockets,
    })
}

/// Reads the certificate files again on each SIGHUP; open connections keep theirs, a
/// failed read keeps the certificate in use. The handler is installed when this
/// returns (before the server says it is ready), so a SIGHUP never ends the process.
pub fn reload_on_sighup(
    certificates: Option<Arc<Certificates>>,
) -> impl Future<Output = ()> + Send + 'static {
    let hangups = signal(SignalKind::hangup());
    async move {
        let mut hangups = match hangups {
            Ok(hangups) => hangups,
            Err(e) => {
                tracing::warn!(error = %e, "cannot install a SIGHUP handler; certificates are not reloaded");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            let Some(certificates) = &certificates else {
                tracing::info!("SIGHUP: no TLS listener, nothing to reload");
                continue;
            };
            match certificates.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded; the old one stays")
                }
            }
        }
    }
}

/// Removes the unix sockets this process made, once it stopped serving; one that a
/// newer server put in its place (while this one drained) is left alone.
pub fn remove_sockets(sockets: &[Socket]) {
    for Socket { path, file } in sockets {
        let ours = std::fs::symlink_metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == *file);
        if !ours {
            continue;
        }
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the socket");
        }
    }
}
