//! Peer for the TLS measurements: tokio-rustls echo on a `current_thread`
//! runtime, the shape of tokio-rustls's own server example: one task per
//! connection, `TlsAcceptor::accept`, then read / `write_all` with a 64 KiB
//! buffer. Same certificate, same crypto provider (rustls's default,
//! aws-lc-rs) and session tickets as edgechat, so the two pay the same
//! crypto and differ only in how they drive it.
//!
//! ```text
//! cargo run --release --example peer_tokio_rustls_echo -- 127.0.0.1:7444 [CERT KEY]
//! ```
//!
//! Prints `listening on tls://ADDR` to stderr.

use std::io;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7444".to_string());
    let cert = args
        .next()
        .unwrap_or_else(|| "certs/server.crt".to_string());
    let key = args
        .next()
        .unwrap_or_else(|| "certs/server.key".to_string());
    let certs = CertificateDer::pem_file_iter(&cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| io::Error::other(format!("{cert}: {e}")))?;
    let key =
        PrivateKeyDer::from_pem_file(&key).map_err(|e| io::Error::other(format!("{key}: {e}")))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(io::Error::other)?;
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(io::Error::other)?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on tls://{}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut stream) = acceptor.accept(socket).await else {
                return;
            };
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            let _ = stream.shutdown().await;
        });
    }
}
