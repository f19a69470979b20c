//! Certificates for the TLS tests, made with `rcgen` into a fresh
//! directory: a CA, a server pair for `localhost` and `127.0.0.1`, and
//! client pairs for mTLS.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A CA and the server pair it signed, as files in `dir`.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: CertifiedIssuer<'static, KeyPair>,
    pub ca_crt: PathBuf,
    pub server_crt: PathBuf,
    pub server_key: PathBuf,
}

/// A client identity: certificate and key, as DER for rustls.
pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Pki {
    /// A new CA (named `ca_name`) and server pair in a fresh directory.
    pub fn new(ca_name: &str) -> Pki {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("edgechat-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, ca_name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        let ca_crt = dir.join("ca.crt");
        std::fs::write(&ca_crt, ca.pem()).expect("write");
        let mut pki = Pki {
            server_crt: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            dir,
            ca,
            ca_crt,
        };
        pki.write_server("localhost");
        pki
    }

    /// (Re)writes the server pair, with `cn` as its common name.
    pub fn write_server(&mut self, cn: &str) -> CertificateDer<'static> {
        let (crt, key) = self.leaf(&["localhost", "127.0.0.1"], cn);
        std::fs::write(&self.server_crt, crt.pem()).expect("write");
        std::fs::write(&self.server_key, key.serialize_pem()).expect("write");
        crt.der().clone()
    }

    fn leaf(&self, sans: &[&str], cn: &str) -> (rcgen::Certificate, KeyPair) {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("key");
        let crt = params.signed_by(&key, &self.ca).expect("sign");
        (crt, key)
    }

    /// A client identity signed by this CA: `sans` as DNS names, `cn` as
    /// the common name.
    pub fn client(&self, sans: &[&str], cn: &str) -> Identity {
        let (crt, key) = self.leaf(sans, cn);
        Identity {
            cert: crt.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }

    /// A client identity written as PEM files `NAME.crt` and `NAME.key` in
    /// this PKI's directory, for clients that read files.
    pub fn write_client(&self, name: &str, sans: &[&str], cn: &str) -> (PathBuf, PathBuf) {
        let (crt, key) = self.leaf(sans, cn);
        let (crt_path, key_path) = (
            self.path(&format!("{name}.crt")),
            self.path(&format!("{name}.key")),
        );
        std::fs::write(&crt_path, crt.pem()).expect("write");
        std::fs::write(&key_path, key.serialize_pem()).expect("write");
        (crt_path, key_path)
    }

    /// A file in this PKI's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A rustls client config trusting this CA, any TLS version.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.config_with(None, None)
    }

    /// A rustls client config trusting this CA, limited to `version` if
    /// given, presenting `id` if given.
    pub fn config_with(
        &self,
        version: Option<&'static rustls::SupportedProtocolVersion>,
        id: Option<&Identity>,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("root");
        let builder = match version {
            Some(v) => ClientConfig::builder_with_protocol_versions(&[v]),
            None => ClientConfig::builder(),
        }
        .with_root_certificates(roots);
        let config = match id {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(vec![id.cert.clone()], id.key.clone_key())
                .expect("client cert"),
        };
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `text` to `path`.
pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}
