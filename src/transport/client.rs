//! The client side of TLS, for `edgechat client --tls` and `edgechat bench
//! --tls`: a config (trusted CA, optional client certificate for mTLS) and
//! a [`TlsSession`] over a nonblocking socket.
//!
//! A client drives the session exactly as the server does:
//!
//! ```text
//! let cfg = client::config(Path::new("certs/ca.crt"), None)?;
//! let mut tls = client::connect(cfg, "localhost")?;   // after connect(2)
//! tls.flush(fd, &mut out, false)?;                     // sends ClientHello
//! // on EPOLLIN:  tls.read(fd, &mut buf, &mut readable, false)?
//! // to send:     tls.write(&mut out, line); tls.flush(fd, &mut out, false)?
//! // to close:    tls.flush(fd, &mut out, true)?  (close_notify), then shutdown
//! ```
//!
//! Bytes written before the handshake finishes wait in `out` and go as
//! soon as it does (the next `flush` after a `read` that finished it).
//! Keeping one config for many connections lets rustls resume sessions
//! (tickets), which is what a `handshake` bench of resumed handshakes needs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::config::{load_certs, load_key, load_roots};
use super::TlsSession;
use crate::error::{Error, Result};

/// The flags that make a client speak TLS, shared by `edgechat client`
/// and `edgechat bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Speak TLS (e.g. to 127.0.0.1:7443).
    #[arg(long)]
    pub tls: bool,
    /// With TLS: the CA certificates to trust [default: certs/ca.crt, the
    /// development CA, where it is found in the working directory; else the
    /// system's roots, /etc/ssl/certs/ca-certificates.crt].
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// With TLS: the name the server's certificate must carry [default: the
    /// host name given, else the address's IP].
    #[arg(long, value_name = "NAME")]
    pub servername: Option<String>,
}

/// The development CA (`scripts/gen-certs.sh`), trusted without `--ca`
/// where it is found.
pub const DEV_CA: &str = "certs/ca.crt";
/// The system's trusted roots (Debian's and Ubuntu's `ca-certificates`;
/// Fedora links the same path), trusted without `--ca` when [`DEV_CA`] is
/// not found.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

impl TlsArgs {
    /// The name to check the certificate of the server at `addr` against.
    pub fn name_for(&self, addr: SocketAddr) -> String {
        self.servername
            .clone()
            .unwrap_or_else(|| addr.ip().to_string())
    }

    /// The roots to trust: `--ca`, else [`DEV_CA`] where it is found, else
    /// [`SYSTEM_ROOTS`]. Without `--ca`, says on stderr which it chose.
    pub fn roots(&self) -> Result<RootCertStore> {
        if let Some(ca) = &self.ca {
            return load_roots(ca);
        }
        if Path::new(DEV_CA).is_file() {
            eprintln!("edgechat: TLS: trusting the development CA {DEV_CA} (--ca PEM to choose)");
            return load_roots(Path::new(DEV_CA));
        }
        let system = Path::new(SYSTEM_ROOTS);
        if !system.is_file() {
            return Err(Error::Config(format!(
                "TLS: no CA to trust: neither {DEV_CA} nor {SYSTEM_ROOTS} (package \
                 ca-certificates) exists; give --ca PEM"
            )));
        }
        eprintln!("edgechat: TLS: trusting the system roots {SYSTEM_ROOTS} (--ca PEM to choose)");
        let mut roots = RootCertStore::empty();
        let (added, _unparsable) = roots.add_parsable_certificates(load_certs(system)?);
        if added == 0 {
            return Err(Error::Config(format!(
                "{SYSTEM_ROOTS}: no usable root certificate; give --ca PEM"
            )));
        }
        Ok(roots)
    }
}

/// A client config trusting the CA certificates in `ca`, presenting the
/// certificate and key in `identity` if given (mTLS).
pub fn config(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Arc<ClientConfig>> {
    config_with(load_roots(ca)?, identity)
}

/// A client config trusting `roots`, presenting the certificate and key in
/// `identity` if given (mTLS).
pub fn config_with(
    roots: RootCertStore,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| Error::Config(format!("{}: {e}", key.display())))?,
    };
    Ok(Arc::new(config))
}

/// A new session to `servername` (a DNS name or an IP address).
pub fn connect(config: Arc<ClientConfig>, servername: &str) -> Result<TlsSession> {
    let name = ServerName::try_from(servername.to_string())
        .map_err(|e| Error::Config(format!("--servername {servername}: {e}")))?;
    let conn = ClientConnection::new(config, name)
        .map_err(|e| Error::Config(format!("TLS client: {e}")))?;
    Ok(TlsSession::new(conn))
}
