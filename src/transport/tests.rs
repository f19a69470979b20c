//! A server and a client [`TlsSession`] over a nonblocking socket pair:
//! the handshake, both read paths (split buffer and small buffer), the
//! output queue handed to rustls, and `close_notify`.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use super::{Input, TlsSession};
use crate::queue::OutQueue;

fn sessions() -> (TlsSession, TlsSession) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der: CertificateDer<'static> = cert.der().clone();
    let pkey: PrivateKeyDer<'static> = PrivatePkcs8KeyDer::from(key.serialize_der()).into();
    let server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], pkey)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(der).unwrap();
    let client = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    (
        TlsSession::new(ServerConnection::new(Arc::new(server)).unwrap()),
        TlsSession::new(ClientConnection::new(Arc::new(client), name).unwrap()),
    )
}

fn pair() -> (OwnedFd, OwnedFd) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a.into(), b.into())
}

/// One end: its session, socket, output queue and edge bit.
struct End {
    tls: TlsSession,
    fd: OwnedFd,
    out: OutQueue,
    got: Vec<u8>,
    ended: bool,
}

impl End {
    fn turn(&mut self, buf: &mut [u8]) {
        self.tls
            .flush(self.fd.as_fd(), &mut self.out, false)
            .unwrap();
        let mut readable = true;
        loop {
            match self
                .tls
                .read(self.fd.as_fd(), buf, &mut readable, false)
                .unwrap()
            {
                Input::Data(n) => self.got.extend_from_slice(&buf[..n]),
                Input::Nothing => break,
                Input::Eof => {
                    self.ended = true;
                    break;
                }
            }
        }
        self.tls
            .flush(self.fd.as_fd(), &mut self.out, false)
            .unwrap();
    }
}

/// A server end and a client end over a socket pair, the handshake done.
fn established(buf: &mut [u8]) -> (End, End) {
    let (server, client) = sessions();
    let (a, b) = pair();
    let end = |tls, fd| End {
        tls,
        fd,
        out: OutQueue::default(),
        got: Vec::new(),
        ended: false,
    };
    let (mut s, mut c) = (end(server, a), end(client, b));
    for _ in 0..100 {
        c.turn(buf);
        s.turn(buf);
    }
    assert!(!s.tls.handshaking() && !c.tls.handshaking());
    assert_eq!(s.tls.take_established(), Some(None));
    (s, c)
}

fn transfer(buf_size: usize) {
    let mut buf = vec![0u8; buf_size];
    let (mut s, mut c) = established(&mut buf);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    c.tls.write(&mut c.out, &data);
    for _ in 0..1000 {
        if s.got.len() == data.len() {
            break;
        }
        c.turn(&mut buf);
        s.turn(&mut buf);
    }
    assert!(s.got == data, "server got {} bytes", s.got.len());
    // The server answers, then closes with close_notify.
    s.out.push_copy(b"bye");
    let fd = s.fd.as_fd();
    s.tls.flush(fd, &mut s.out, true).unwrap();
    assert!(s.tls.closed());
    c.turn(&mut buf);
    assert_eq!(c.got, b"bye");
    assert!(c.ended, "close_notify seen");
}

#[test]
fn split_buffer_path_carries_bytes_exactly() {
    transfer(64 * 1024);
}

#[test]
fn small_buffer_path_carries_bytes_exactly() {
    transfer(1000);
}

/// A cut (`ERR slow-consumer`) on a socket with room: the last line, then
/// `close_notify`, both sent at once.
#[test]
fn send_last_ends_with_close_notify_when_the_socket_takes_it() {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut s, mut c) = established(&mut buf);
    s.tls.send_last(s.fd.as_fd(), b"ERR slow-consumer\n");
    assert!(s.tls.closed(), "close_notify queued and sent");
    c.turn(&mut buf);
    assert_eq!(c.got, b"ERR slow-consumer\n");
    assert!(c.ended, "close_notify seen after the line");
}

/// Before the handshake is done there is no session to end: nothing is
/// sent, not even the line.
#[test]
fn send_last_sends_nothing_during_the_handshake() {
    let (server, _client) = sessions();
    let (a, b) = pair();
    let mut s = server;
    s.send_last(a.as_fd(), b"ERR slow-consumer\n");
    assert!(!s.closed());
    let mut got = [0u8; 64];
    let n = crate::sys::socket::recv(b.as_fd(), &mut got);
    assert!(n.as_ref().is_err_and(crate::sys::would_block), "{n:?}");
}
