//! Server TLS settings: the certificate chain and key (PEM, read with
//! `rustls::pki_types::pem::PemObject`), `--client-ca` for mTLS, session
//! tickets, and reloading the pair on SIGHUP.
//!
//! The ticket key and the session cache outlive a reload, so a client that
//! resumes after a SIGHUP still resumes.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{
    ProducesTickets, ServerConnection, StoresServerSessions, WebPkiClientVerifier,
};
use rustls::{RootCertStore, ServerConfig};

use super::TlsSession;
use crate::error::{Error, Result};

/// Where the server's TLS material comes from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// With a CA, clients must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
}

/// The live server config, swapped whole on reload: connections already
/// made keep the `Arc` they started with.
pub struct ServerTls {
    files: TlsFiles,
    config: Arc<ServerConfig>,
    ticketer: Arc<dyn ProducesTickets>,
    cache: Arc<dyn StoresServerSessions>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish()
    }
}

/// Names `path` in a PEM error: `certs/server.crt: No such file or directory`.
pub fn pem_error(path: &Path) -> impl Fn(pem::Error) -> Error + '_ {
    move |e| {
        let source = match e {
            pem::Error::Io(io) => io,
            pem::Error::NoItemsFound => io::Error::new(
                io::ErrorKind::InvalidData,
                "no PEM item of the expected kind",
            ),
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        };
        Error::File {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, what.to_string()),
    }
}

/// Every certificate in a PEM file, in order; at least one.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error(path))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(pem_error(path))?;
    if certs.is_empty() {
        return Err(invalid(path, "no certificate found"));
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, SEC1 or PKCS#1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::NoItemsFound => invalid(path, "no private key found"),
        e => pem_error(path)(e),
    })
}

/// A root store holding every certificate in `path`.
pub fn load_roots(path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(path)? {
        roots.add(c).map_err(|e| invalid(path, e))?;
    }
    Ok(roots)
}

impl ServerTls {
    /// Reads the files and builds the first config: TLS 1.3 and 1.2,
    /// the default (aws-lc-rs) provider, session tickets on.
    pub fn load(files: TlsFiles) -> Result<ServerTls> {
        let ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .map_err(|e| Error::Config(format!("TLS ticket key: {e}")))?;
        let cache: Arc<dyn StoresServerSessions> =
            rustls::server::ServerSessionMemoryCache::new(4096);
        let config = build(&files, &ticketer, &cache)?;
        Ok(ServerTls {
            files,
            config: Arc::new(config),
            ticketer,
            cache,
        })
    }

    /// Reads the files again. On success new connections get the new pair;
    /// on failure the old config stays and the error says why.
    pub fn reload(&mut self) -> Result<()> {
        let config = build(&self.files, &self.ticketer, &self.cache)?;
        self.config = Arc::new(config);
        Ok(())
    }

    /// A session for a newly accepted connection.
    pub fn accept(&self) -> std::result::Result<TlsSession, rustls::Error> {
        ServerConnection::new(self.config.clone()).map(TlsSession::new)
    }

    /// The files this config is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

fn build(
    files: &TlsFiles,
    ticketer: &Arc<dyn ProducesTickets>,
    cache: &Arc<dyn StoresServerSessions>,
) -> Result<ServerConfig> {
    let certs = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let builder = ServerConfig::builder();
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = Arc::new(load_roots(ca)?);
            let verifier = WebPkiClientVerifier::builder(roots)
                .build()
                .map_err(|e| invalid(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| invalid(&files.key, e))?;
    config.ticketer = ticketer.clone();
    config.session_storage = cache.clone();
    Ok(config)
}
