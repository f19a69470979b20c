//! The `tls` target: the server's TLS transport ([`Transport::Tls`], the
//! same pump the reactor drives) on one end of a nonblocking socket pair,
//! with the fuzzer on the other end, in one of two modes:
//!
//! - raw: the input's bytes are what a client sends, cut into writes at
//!   points the input decides (a captured ClientHello is among the seeds);
//! - client: a real rustls client (TLS 1.3 or 1.2 only, with or without a
//!   client certificate, resuming or not) handshakes and sends the input's
//!   plaintext, and its ciphertext is corrupted on the way as the input
//!   says: bytes flipped, inserted, deleted, or the stream cut short.
//!
//! What must hold, whatever the bytes: nothing panics or hangs; a failure
//! is an `InvalidData` error (a TLS error, whose alert the reactor drains
//! and sends); no plaintext before the handshake, and what arrives is
//! always a prefix of what the client sent (never altered bytes); the
//! certificate's nick is reported once and only for a verified client;
//! `read` never answers `Nothing` while it holds plaintext; the server
//! sends a bounded amount (no more than a handshake flight for raw bytes,
//! and the output queue stays within what was echoed). An untouched
//! stream must go through whole: handshake, every byte, the echo back,
//! EOF, `close_notify`, and a resumed handshake when a ticket was offered.
//!
//! Input: `[flags] [buffer] [cuts]`, then raw bytes, or `[n] n × [offset
//! lo, offset hi, kind, value] [repeat]` and the plaintext, sent `repeat +
//! 1` times, up to [`MAX_PLAINTEXT`] (see [`Flags`]).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};

use edgechat::queue::{OutQueue, Turn};
use edgechat::transport::config::{load_certs, load_key, load_roots, ServerTls, TlsFiles};
use edgechat::transport::{Input, Transport};
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind};

use crate::{Bytes, Rng};

/// The first input byte's bits.
pub struct Flags;

impl Flags {
    /// A rustls client talks (else the bytes are raw).
    pub const CLIENT: u8 = 1;
    /// The client shuts down its write side at the end.
    pub const EOF: u8 = 2;
    /// The client sends `close_notify` once its plaintext is out.
    pub const CLOSE_NOTIFY: u8 = 4;
    /// The server requires a client certificate (`--client-ca`).
    pub const MTLS: u8 = 8;
    /// The client presents `certs/client.crt` (named `alice`).
    pub const CLIENT_CERT: u8 = 16;
    /// The client offers TLS 1.2 only.
    pub const TLS12: u8 = 32;
    /// A clean handshake first, so the client resumes with its ticket.
    pub const RESUME: u8 = 64;
    /// The server echoes what it reads (as `--mode echo`).
    pub const ECHO: u8 = 128;
}

/// What a certificate in `certs/client.crt` reserves.
const ALICE: &str = "alice";
/// The server's read buffer, as the reactor's.
const REACTOR_BUF: usize = 64 * 1024;
/// Rounds of client → server → client before it counts as a hang.
const MAX_ROUNDS: usize = 100_000;
/// The most plaintext one client connection sends: enough for several
/// full reads of the reactor's buffer, so the split-buffer path fills up.
pub const MAX_PLAINTEXT: usize = 256 * 1024;
/// The most a server may send in answer to raw bytes: a handshake flight
/// (or two, after a HelloRetryRequest) and an alert.
const RAW_OUTPUT: usize = 16 * 1024;

struct Setup {
    plain: ServerTls,
    mtls: ServerTls,
    /// [TLS 1.3 and 1.2, TLS 1.2 only] × [no certificate, alice].
    clients: [Arc<ClientConfig>; 4],
}

fn cert(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../certs")
        .join(name)
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let files = |ca: bool| TlsFiles {
            cert: cert("server.crt"),
            key: cert("server.key"),
            client_ca: ca.then(|| cert("ca.crt")),
        };
        let roots = load_roots(&cert("ca.crt")).expect("certs/ca.crt");
        let client = |tls12: bool, alice: bool| {
            let builder = if tls12 {
                ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
            } else {
                ClientConfig::builder()
            }
            .with_root_certificates(roots.clone());
            let mut config = if alice {
                let chain = load_certs(&cert("client.crt")).expect("certs/client.crt");
                let key = load_key(&cert("client.key")).expect("certs/client.key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client pair")
            } else {
                builder.with_no_client_auth()
            };
            config.resumption = Resumption::disabled();
            Arc::new(config)
        };
        Setup {
            plain: ServerTls::load(files(false)).expect("server pair"),
            mtls: ServerTls::load(files(true)).expect("server pair"),
            clients: [
                client(false, false),
                client(false, true),
                client(true, false),
                client(true, true),
            ],
        }
    })
}

/// The server's end: the transport as the reactor holds it.
struct Server {
    fd: OwnedFd,
    tp: Transport,
    out: OutQueue,
    buf: Vec<u8>,
    echo: bool,
    peer_fin: bool,
    closing: bool,
    /// What `read` handed out, in order.
    got: Vec<u8>,
    eof: bool,
    established: Option<Option<String>>,
    failed: Option<io::Error>,
}

impl Server {
    fn new(fd: OwnedFd, mtls: bool, buf: usize, echo: bool) -> Server {
        let tls = if mtls { &setup().mtls } else { &setup().plain };
        Server {
            fd,
            tp: Transport::Tls(Box::new(tls.accept().expect("server session"))),
            out: OutQueue::default(),
            buf: vec![0; buf],
            echo,
            peer_fin: false,
            closing: false,
            got: Vec::new(),
            eof: false,
            established: None,
            failed: None,
        }
    }

    /// One turn, as the reactor takes it: flush, read while readable (or
    /// while plaintext is pending), flush; a failure ends the connection.
    fn turn(&mut self) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.try_turn() {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            self.failed = Some(e);
        }
    }

    fn try_turn(&mut self) -> io::Result<()> {
        let fd = self.fd.as_fd();
        self.tp
            .flush(fd, &mut self.out, &Turn::default(), self.closing)?;
        let (mut readable, mut writable) = (!self.eof, true);
        let (mut reads, start) = (0, self.got.len());
        while readable || (self.tp.pending() && !self.eof) {
            // Every read but the last of a turn hands out bytes.
            reads += 1;
            assert!(
                reads <= self.got.len() - start + 1,
                "a read that brings nothing"
            );
            let input = self
                .tp
                .read(fd, &mut self.buf, &mut readable, self.peer_fin)?;
            if let Some(nick) = self.tp.take_established() {
                assert!(self.established.is_none(), "established twice");
                self.established = Some(nick);
            }
            match input {
                Input::Data(n) => {
                    assert!(n > 0 && n <= self.buf.len());
                    assert!(!self.tp.handshaking(), "plaintext before the handshake");
                    assert!(self.established.is_some(), "plaintext before HELLO");
                    self.got.extend_from_slice(&self.buf[..n]);
                    if self.echo {
                        let data = &self.buf[..n];
                        self.tp.write(fd, &mut self.out, data, &mut writable)?;
                    }
                }
                Input::Nothing => {
                    assert!(!self.tp.pending(), "Nothing while plaintext is pending");
                    break;
                }
                Input::Eof => {
                    self.eof = true;
                    self.closing = true;
                    break;
                }
            }
        }
        self.tp
            .flush(fd, &mut self.out, &Turn::default(), self.closing)?;
        assert!(self.tp.in_flight() <= 64 * 1024 + self.buf.len());
        assert!(
            self.out.len() <= self.got.len(),
            "queue beyond what was echoed"
        );
        Ok(())
    }
}

/// Sends `wire[..n]` (as much as the socket takes) and drops it.
fn send_chunk(fd: &UnixStream, wire: &mut Vec<u8>, n: usize) -> bool {
    let n = n.clamp(1, wire.len());
    match (&*fd).write(&wire[..n]) {
        Ok(sent) => {
            wire.drain(..sent);
            sent > 0
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("write to the server: {e}"),
    }
}

/// Everything the server sent so far.
fn receive(fd: &UnixStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match (&*fd).read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return got,
            Err(e) => panic!("read from the server: {e}"),
        }
    }
}

/// A write size: a few bytes, a few records, or everything.
fn cut(rng: &mut Rng, left: usize) -> usize {
    match rng.below(4) {
        0 => 1 + rng.below(5),
        1 => 1 + rng.below(300),
        2 => 1 + rng.below(5000),
        _ => left,
    }
}

fn pair() -> (UnixStream, OwnedFd) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    (a, b.into())
}

/// The read buffer the second input byte picks: small ones take the
/// small-buffer path, 64 KiB and more the split-buffer one.
pub fn buffer_size(b: u8) -> usize {
    if b < 128 {
        usize::from(b) * 32 + 1
    } else if b == 128 {
        REACTOR_BUF
    } else {
        REACTOR_BUF + usize::from(b - 128) * 128
    }
}

/// Runs one input (see the module doc).
pub fn run(data: &[u8]) {
    let mut input = Bytes(data);
    let flags = input.u8();
    let buf = buffer_size(input.u8());
    let rng = Rng::new(u64::from(input.u8()));
    if flags & Flags::CLIENT == 0 {
        raw(flags, buf, rng, input.0);
    } else {
        let n = usize::from(input.u8() & 7);
        let muts: Vec<Mutation> = (0..n)
            .map(|_| Mutation {
                at: usize::from(input.u8()) | usize::from(input.u8()) << 8,
                kind: input.u8() & 3,
                value: input.u8(),
            })
            .collect();
        let repeat = usize::from(input.u8()) + 1;
        let plaintext = input.0.repeat(repeat);
        let plaintext = &plaintext[..plaintext.len().min(MAX_PLAINTEXT)];
        client(flags, buf, rng, &muts, plaintext);
    }
}

/// Raw bytes from a client that is not one.
fn raw(flags: u8, buf: usize, mut rng: Rng, bytes: &[u8]) {
    let (client, fd) = pair();
    let mut server = Server::new(fd, flags & Flags::MTLS != 0, buf, true);
    let mut wire = bytes.to_vec();
    let mut answer = 0;
    while !wire.is_empty() && server.failed.is_none() {
        let n = cut(&mut rng, wire.len());
        send_chunk(&client, &mut wire, n);
        server.turn();
        answer += receive(&client).len();
    }
    if flags & Flags::EOF != 0 {
        client
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        server.peer_fin = true;
        server.turn();
        answer += receive(&client).len();
        assert!(server.eof || server.failed.is_some(), "EOF unseen");
    }
    assert!(server.got.is_empty(), "plaintext from raw bytes");
    assert!(server.established.is_none(), "a handshake from raw bytes");
    assert!(
        answer <= RAW_OUTPUT,
        "{answer} bytes in answer to raw bytes"
    );
}

/// One change to the client's ciphertext, at `at` in the stream.
#[derive(Debug, Clone, Copy)]
pub struct Mutation {
    pub at: usize,
    /// 0 flip bits (xor `value`), 1 insert `value` before, 2 delete, 3 cut
    /// the stream there.
    pub kind: u8,
    pub value: u8,
}

/// The client → server byte stream, with the mutations applied.
struct Tamper<'a> {
    muts: &'a [Mutation],
    /// Bytes the client produced so far.
    at: usize,
    cut: bool,
    touched: bool,
}

impl Tamper<'_> {
    fn pass(&mut self, fresh: &[u8], wire: &mut Vec<u8>) {
        for &b in fresh {
            let mut b = Some(b);
            for m in self.muts.iter().filter(|m| m.at == self.at) {
                self.touched = true;
                match m.kind {
                    0 => b = b.map(|b| b ^ m.value.max(1)),
                    1 => wire.push(m.value),
                    2 => b = None,
                    _ => self.cut = true,
                }
            }
            self.at += 1;
            if self.cut {
                return;
            }
            wire.extend(b);
        }
    }
}

/// What one client connection ended with.
struct Outcome {
    resumed: bool,
}

/// A rustls client's connection, tampered with, to a fresh server session.
fn client(flags: u8, buf: usize, rng: Rng, muts: &[Mutation], plaintext: &[u8]) {
    let s = setup();
    let mut config = (*s.clients[usize::from(flags & Flags::CLIENT_CERT != 0)
        + 2 * usize::from(flags & Flags::TLS12 != 0)])
    .clone();
    let resume = flags & Flags::RESUME != 0;
    if resume {
        config.resumption = Resumption::in_memory_sessions(4);
    }
    let config = Arc::new(config);
    if resume {
        let clean = Flags::CLIENT | Flags::EOF | Flags::CLOSE_NOTIFY;
        connection(
            flags & !(Flags::EOF | Flags::CLOSE_NOTIFY | Flags::ECHO) | clean,
            buf,
            Rng::new(0),
            &[],
            b"",
            &config,
        );
    }
    let outcome = connection(flags, buf, rng, muts, plaintext, &config);
    if let Some(o) = outcome {
        let mtls_refused = flags & Flags::MTLS != 0 && flags & Flags::CLIENT_CERT == 0;
        if resume && !mtls_refused {
            assert!(o.resumed, "a ticket was offered and not used");
        }
    }
}

/// Drives one connection; returns its outcome if nothing was tampered with.
fn connection(
    flags: u8,
    buf: usize,
    mut rng: Rng,
    muts: &[Mutation],
    plaintext: &[u8],
    config: &Arc<ClientConfig>,
) -> Option<Outcome> {
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = ClientConnection::new(config.clone(), name).expect("client session");
    let mut fed = 0;
    let (client, fd) = pair();
    let mtls = flags & Flags::MTLS != 0;
    let mut server = Server::new(fd, mtls, buf, flags & Flags::ECHO != 0);
    let mut tamper = Tamper {
        muts,
        at: 0,
        cut: false,
        touched: false,
    };
    let (mut wire, mut fresh) = (Vec::new(), Vec::new());
    let (mut client_failed, mut echo, mut closed_by_server) = (false, Vec::new(), false);
    let (mut notified, mut shut, mut answer) = (false, false, 0);
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < MAX_ROUNDS, "the connection never settles");
        let mut progress = false;
        if !client_failed && !tamper.cut {
            let all_fed = fed == plaintext.len();
            if flags & Flags::CLOSE_NOTIFY != 0 && !notified && !tls.is_handshaking() && all_fed {
                tls.send_close_notify();
                notified = true;
            }
            // As much as rustls buffers (64 KiB); the rest when it drains.
            fed += tls.writer().write(&plaintext[fed..]).expect("buffered");
            fresh.clear();
            while tls.wants_write() {
                tls.write_tls(&mut fresh).expect("to a Vec");
            }
            tamper.pass(&fresh, &mut wire);
        }
        if !wire.is_empty() {
            let n = cut(&mut rng, wire.len());
            progress |= send_chunk(&client, &mut wire, n);
        } else if flags & Flags::EOF != 0
            && !shut
            && (tamper.cut || notified || (!tls.is_handshaking() && fed == plaintext.len()))
        {
            client
                .shutdown(std::net::Shutdown::Write)
                .expect("shutdown");
            server.peer_fin = true;
            shut = true;
            progress = true;
        }
        server.turn();
        assert!(
            plaintext.starts_with(&server.got),
            "altered plaintext arrived"
        );
        let back = receive(&client);
        answer += back.len();
        progress |= !back.is_empty();
        if !back.is_empty() && !client_failed {
            let mut rest = &back[..];
            while !rest.is_empty() && !client_failed {
                client_failed |= tls.read_tls(&mut rest).is_err();
                client_failed |= tls.process_new_packets().is_err();
                loop {
                    let mut b = [0u8; 4096];
                    match tls.reader().read(&mut b) {
                        Ok(0) => {
                            closed_by_server = true;
                            break;
                        }
                        Ok(n) => echo.extend_from_slice(&b[..n]),
                        Err(_) => break,
                    }
                }
            }
        }
        if !progress {
            break;
        }
    }
    assert!(
        server.got.starts_with(&echo),
        "the echo is not what was sent"
    );
    assert!(
        answer <= 2 * RAW_OUTPUT + 64 * server.got.len(),
        "{answer} bytes out for {} in",
        server.got.len()
    );
    if let Some(nick) = &server.established {
        let want = mtls.then(|| ALICE.to_string());
        assert_eq!(nick, &want, "the peer's nick");
    }
    if mtls && flags & Flags::CLIENT_CERT == 0 {
        assert!(
            server.established.is_none(),
            "mTLS let a client without a certificate in"
        );
        return None;
    }
    if tamper.touched {
        return None;
    }
    // Untouched: everything must have gone through.
    if let Some(e) = &server.failed {
        panic!("a clean connection failed: {e}");
    }
    assert!(!client_failed, "the client failed on a clean connection");
    assert!(server.established.is_some(), "the handshake did not finish");
    assert_eq!(server.got, plaintext, "bytes lost");
    if flags & Flags::ECHO != 0 {
        assert_eq!(echo, plaintext, "echo lost");
    }
    if flags & (Flags::EOF | Flags::CLOSE_NOTIFY) != 0 {
        assert!(server.eof, "the end of the stream was not seen");
        assert!(server.tp.closed(), "close_notify was not sent");
        assert!(closed_by_server, "the client did not get close_notify");
    }
    Some(Outcome {
        resumed: tls.handshake_kind() == Some(HandshakeKind::Resumed),
    })
}

/// The first flight of a real rustls client (TLS 1.3 and 1.2, or 1.2
/// only): its ClientHello, as a raw seed.
pub fn client_hello(tls12: bool) -> Vec<u8> {
    let config = setup().clients[2 * usize::from(tls12)].clone();
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = ClientConnection::new(config, name).expect("client session");
    let mut hello = Vec::new();
    while tls.wants_write() {
        tls.write_tls(&mut hello).expect("to a Vec");
    }
    hello
}

/// The input [`run`] reads as a rustls client's connection.
pub fn client_input(
    flags: u8,
    buf: u8,
    cuts: u8,
    muts: &[Mutation],
    repeat: u8,
    plaintext: &[u8],
) -> Vec<u8> {
    let mut v = vec![flags | Flags::CLIENT, buf, cuts, muts.len() as u8];
    for m in muts {
        v.extend([m.at as u8, (m.at >> 8) as u8, m.kind, m.value]);
    }
    v.push(repeat);
    v.extend_from_slice(plaintext);
    v
}
