//! TLS with rustls (ring): one certificate and key (PEM files, given by
//! `--tls-cert` and `--tls-key`) for every listener that uses TLS
//! (`--http-tls`, `--tcp-tls`, `--irc-tls`).
//!
//! Reload: on SIGHUP the files are read again; if they make a valid pair,
//! new handshakes use it. Connections already open keep their session;
//! a pair that fails to load is logged and the old one stays.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context as _, bail};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// ALPN for the HTTP listener: HTTP/1.1 only (WebSocket upgrades need it).
pub const ALPN_HTTP: &[&[u8]] = &[b"http/1.1"];

/// The current certificate and key, swapped whole on reload.
pub struct Certs {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certs")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Certs {
    /// Loads the pair, failing with a sentence that names the bad file.
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Certs>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = load_pair(cert, key, &provider)?;
        Ok(Arc::new(Certs {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(current)),
        }))
    }

    /// Reads the files again; on success new handshakes use the new pair.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = load_pair(&self.cert, &self.key, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    /// An acceptor that always presents the current pair; `alpn` is
    /// offered to clients (empty: none).
    pub fn acceptor(self: &Arc<Self>, alpn: &[&[u8]]) -> anyhow::Result<TlsAcceptor> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("cannot read TLS certificates from {}", cert.display()))?;
    if chain.is_empty() {
        bail!("no PEM certificate in {}", cert.display());
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("cannot read a PEM private key from {}", key.display()))?;
    CertifiedKey::from_der(chain, private, provider).with_context(|| {
        format!(
            "TLS key {} does not fit certificate {}",
            key.display(),
            cert.display()
        )
    })
}

/// Reloads `certs` on every SIGHUP until shutdown. Without TLS there is
/// nothing to reload, but SIGHUP is still caught (and logged), so that a
/// `systemctl reload` never stops the server. The handler is installed
/// when this is called, not when the task first runs: a SIGHUP right
/// after `banter ready` must not find the default action (exit).
pub fn reload_on_sighup(
    certs: Option<Arc<Certs>>,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()> {
    let hup = signal(SignalKind::hangup());
    async move { reload_loop(hup, certs, shutdown).await }
}

async fn reload_loop(
    hup: std::io::Result<tokio::signal::unix::Signal>,
    certs: Option<Arc<Certs>>,
    shutdown: CancellationToken,
) {
    let mut hup = match hup {
        Ok(hup) => hup,
        Err(e) => {
            warn!("cannot watch SIGHUP, so TLS certificates will not be reloaded: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            got = hup.recv() => if got.is_none() { return },
        }
        let Some(certs) = &certs else {
            info!("SIGHUP: no TLS certificate to reload");
            continue;
        };
        match certs.reload() {
            Ok(()) => info!(
                cert = %certs.cert.display(),
                "SIGHUP: reloaded the TLS certificate; new connections use it"
            ),
            Err(e) => warn!("SIGHUP: TLS certificate not reloaded, keeping the old one: {e:#}"),
        }
    }
}
