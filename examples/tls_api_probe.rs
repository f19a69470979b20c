//! Buffered or unbuffered rustls: a one-thread TLS echo server on either API,
//! to measure which costs the server less per byte and per message.
//!
//! ```text
//! cargo run --release --example tls_api_probe -- --api buffered|unbuffered \
//!     [--recv 16384] [--addr 127.0.0.1:0] [--cert certs/server.crt] [--key certs/server.key]
//! ```
//!
//! Same loop for both (edge-triggered epoll, `recv`/`send` from
//! `edgechat::sys`), same config as `edgechat serve --tls` (aws-lc-rs,
//! tickets, session cache); only the rustls calls differ, each with the
//! fewest copies its API allows:
//!
//! - `buffered` (`ServerConnection`): `read_tls` from the socket (rustls
//!   `recv`s into its own buffer, which grows 4 KiB at a time up to one
//!   record) → `process_new_packets` → `reader().read` into a scratch
//!   buffer → `writer().write` → `write_tls` (one `send` or `sendmsg` of
//!   the queued records).
//! - `unbuffered` (`UnbufferedServerConnection`): `recv` into the
//!   connection's own 256 KiB buffer, `--recv` bytes a call (16 KiB by
//!   default, as edgechat's read side; at most 64 KiB);
//!   `process_tls_records` decrypts there in place; each record's payload
//!   is copied to a scratch buffer
//!   (`ReadTraffic` borrows the connection, so nothing can be encrypted
//!   until it is dropped); `WriteTraffic::encrypt` writes the records into
//!   the connection's send buffer, sent with one `send`.
//!
//! What it answered, with rustls 0.23.46: switching edgechat to the
//! unbuffered API is not worth it yet. `ReadTraffic` still hands out a
//! `Vec` copy of each decrypted record (as the buffered reader does), and
//! `encrypt` seals each record in a fresh `Vec` before copying it into the
//! caller's buffer: per 16 KiB echoed, four copies against the buffered
//! API's three. Server user-space instructions per message under
//! callgrind, (Ir(2N) - Ir(N)) / N, medians of 3 runs:
//!
//! | | buffered | unbuffered | edgechat |
//! |---|---:|---:|---:|
//! | stream 16 KiB x 1, depth 4 | 140 487 | 154 821 | 151 884 |
//! | pingpong 64 B x 50 | 5 221 | 4 816 | 5 658 |
//!
//! Timed server CPU (medians of 20 rounds, same order): stream 900 / 852
//! / 839 us per MB, pingpong 6.01 / 5.98 / 6.10 us per message; identical
//! runs on this shared machine differ by about 3 %. Noise and commands:
//! benches/README.md, "Buffered or unbuffered rustls".
//!
//! Prints `listening on tls://ADDR` to stderr. Stops on SIGTERM.

use std::error::Error;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use edgechat::sys::epoll::{self, Epoll};
use edgechat::sys::{socket, would_block};
use edgechat::transport::config::{load_certs, load_key};
use edgechat::transport::tls;
use rustls::server::{ServerConnection, ServerSessionMemoryCache, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, UnbufferedStatus};
use rustls::ServerConfig;
use slab::Slab;

const LISTENER: u64 = u64::MAX;
/// The largest TLS record on the wire (16 KiB + header + expansion).
const MAX_RECORD: usize = 16 * 1024 + 5 + 256;
/// The most `--recv` may ask of one `recv`.
const MAX_RECV: usize = 64 * 1024;
/// What one `process` may find: a partial record, then one `recv`. Its
/// plaintext fits the scratch buffer (the buffered side's scratch too:
/// more than rustls's 64 KiB send limit).
const SCRATCH: usize = MAX_RECORD + MAX_RECV;
/// An unbuffered connection's receive buffer: big, so that moving a
/// partial record to the front is rare.
const IN: usize = 4 * MAX_RECV;
/// Its send buffer: the records of SCRATCH bytes of plaintext, or a
/// handshake flight.
const OUT: usize = SCRATCH + 8 * 1024;

#[derive(Clone, Copy, PartialEq)]
enum Api {
    Buffered,
    Unbuffered,
}

/// The command line.
struct Opts {
    api: Api,
    /// The most an unbuffered connection asks of one `recv`.
    recv: usize,
    addr: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
}

fn main() -> ExitCode {
    match args().map_err(Box::from).and_then(|opts| serve(&opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tls_api_probe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(opts: &Opts) -> Result<(), Box<dyn Error>> {
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(load_certs(&opts.cert)?, load_key(&opts.key)?)?;
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
    config.session_storage = ServerSessionMemoryCache::new(4096);
    let config = Arc::new(config);

    let listener = socket::listen_tcp(opts.addr, 1024, false)
        .map_err(|e| format!("listen on {}: {e}", opts.addr))?;
    let ep = Epoll::new()?;
    ep.add(listener.as_fd(), epoll::interest_read(), LISTENER)?;
    eprintln!(
        "listening on tls://{}",
        socket::local_addr(listener.as_fd())?
    );

    let mut conns: Slab<Conn> = Slab::new();
    let mut events = Epoll::events(256);
    let mut scratch = vec![0u8; SCRATCH];
    loop {
        let n = ep.wait(&mut events, None)?;
        for ev in &events[..n] {
            let token = epoll::token(ev);
            if token == LISTENER {
                accept_all(&listener, &ep, &mut conns, opts, &config);
                continue;
            }
            let key = token as usize;
            let Some(c) = conns.get_mut(key) else {
                continue;
            };
            if epoll::is_readable(ev) || epoll::is_read_closed(ev) || epoll::is_error(ev) {
                c.readable = true;
            }
            if epoll::is_read_closed(ev) {
                c.peer_fin = true;
            }
            if !matches!(c.pump(&mut scratch), Ok(Open)) {
                conns.remove(key); // drop closes the socket, which leaves the epoll set
            }
        }
    }
}

fn args() -> Result<Opts, String> {
    let usage = "usage: tls_api_probe --api buffered|unbuffered [--recv BYTES] \
                 [--addr ADDR] [--cert PEM] [--key PEM]";
    let mut api = None;
    let mut recv = "16384".to_string();
    let mut addr = "127.0.0.1:0".to_string();
    let mut cert = "certs/server.crt".to_string();
    let mut key = "certs/server.key".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value\n{usage}"))?;
        match flag.as_str() {
            "--api" => api = Some(value),
            "--recv" => recv = value,
            "--addr" => addr = value,
            "--cert" => cert = value,
            "--key" => key = value,
            _ => return Err(format!("unknown flag {flag}\n{usage}")),
        }
    }
    let api = match api.as_deref() {
        Some("buffered") => Api::Buffered,
        Some("unbuffered") => Api::Unbuffered,
        _ => return Err(usage.to_string()),
    };
    let recv = match recv.parse() {
        Ok(n) if (1..=MAX_RECV).contains(&n) => n,
        _ => return Err(format!("--recv {recv}: a byte count from 1 to {MAX_RECV}")),
    };
    let addr = addr.parse().map_err(|e| format!("--addr {addr}: {e}"))?;
    Ok(Opts {
        api,
        recv,
        addr,
        cert: cert.into(),
        key: key.into(),
    })
}

/// `accept4` until `EAGAIN`; each connection registered for both directions.
fn accept_all(
    listener: &OwnedFd,
    ep: &Epoll,
    conns: &mut Slab<Conn>,
    opts: &Opts,
    config: &Arc<ServerConfig>,
) {
    loop {
        let fd = match socket::accept(listener.as_fd()) {
            Ok((fd, _)) => fd,
            Err(e) if would_block(&e) => return,
            Err(e) => return eprintln!("accept4: {e}"),
        };
        let tls = match opts.api {
            Api::Buffered => ServerConnection::new(config.clone()).map(|c| Tls::Buffered(c.into())),
            Api::Unbuffered => UnbufferedServerConnection::new(config.clone())
                .map(|c| Tls::Unbuffered(Unbuffered::new(c, opts.recv).into())),
        };
        let tls = match tls {
            Ok(t) => t,
            Err(e) => return eprintln!("TLS session: {e}"),
        };
        let entry = conns.vacant_entry();
        let added = socket::set_nodelay(fd.as_fd())
            .and_then(|()| ep.add(fd.as_fd(), epoll::interest_all(), entry.key() as u64));
        if let Err(e) = added {
            return eprintln!("setsockopt/epoll_ctl: {e}");
        }
        entry.insert(Conn {
            fd,
            readable: true,
            peer_fin: false,
            tls,
        });
    }
}

/// One client.
struct Conn {
    fd: OwnedFd,
    /// No `EAGAIN` (or short read) since the last readable edge.
    readable: bool,
    peer_fin: bool,
    tls: Tls,
}

enum Tls {
    Buffered(Box<ServerConnection>),
    Unbuffered(Box<Unbuffered>),
}

/// Whether a connection lives on after a pump.
#[derive(PartialEq)]
enum Pumped {
    Open,
    Done,
}
use Pumped::{Done, Open};

impl Conn {
    /// Sends what is owed, then echoes what the socket has, until the
    /// socket is drained or full.
    fn pump(&mut self, scratch: &mut [u8]) -> io::Result<Pumped> {
        let mut sock = Sock {
            io: tls::Sock {
                fd: self.fd.as_fd(),
                short: false,
            },
            readable: &mut self.readable,
            peer_fin: self.peer_fin,
        };
        match &mut self.tls {
            Tls::Buffered(c) => pump_buffered(c, &mut sock, scratch),
            Tls::Unbuffered(u) => u.pump(&mut sock, scratch),
        }
    }
}

/// The socket: edgechat's own adapter ([`tls::Sock`]) for writes, and for
/// reads as well through this, where a short `recv` (or `EAGAIN`) clears
/// `readable`, as in edgechat, so no `recv` is spent on learning `EAGAIN`.
struct Sock<'a> {
    io: tls::Sock<'a>,
    readable: &'a mut bool,
    peer_fin: bool,
}

impl Read for Sock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.io.read(buf);
        match read {
            Ok(n) if n > 0 && (!self.io.short || self.peer_fin) => {}
            _ => *self.readable = false,
        }
        read
    }
}

fn tls_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// The buffered API: `write_tls` what is owed, move plaintext from
/// `reader()` to `writer()`, and only then `read_tls` more.
fn pump_buffered(
    c: &mut ServerConnection,
    sock: &mut Sock<'_>,
    scratch: &mut [u8],
) -> io::Result<Pumped> {
    loop {
        while c.wants_write() {
            match c.write_tls(&mut sock.io) {
                Ok(_) => {}
                Err(e) if would_block(&e) => return Ok(Open),
                Err(e) => return Err(e),
            }
        }
        match c.reader().read(scratch) {
            Ok(0) => {
                // close_notify: answer it, best effort
                c.send_close_notify();
                let _ = c.write_tls(&mut sock.io);
                return Ok(Done);
            }
            // rustls takes up to 64 KiB when it owes nothing, as it does here
            Ok(n) => match c.writer().write(&scratch[..n])? {
                taken if taken == n => continue,
                _ => return Err(io::Error::other("rustls refused plaintext")),
            },
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(e),
        }
        if !*sock.readable {
            return Ok(Open);
        }
        match c.read_tls(sock) {
            Ok(0) => return Ok(Done),
            Ok(_) => {}
            Err(e) if would_block(&e) => return Ok(Open),
            Err(e) => return Err(e),
        }
        if let Err(e) = c.process_new_packets() {
            let _ = c.write_tls(&mut sock.io); // the alert
            return Err(tls_error(e));
        }
    }
}

/// The unbuffered API and the buffers it leaves to the caller.
struct Unbuffered {
    conn: UnbufferedServerConnection,
    /// Ciphertext received: `input[start..end]` is not processed yet.
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// The most one `recv` asks for.
    recv: usize,
    out: OutBuf,
    peer_closed: bool,
    closing: bool,
}

impl Unbuffered {
    fn new(conn: UnbufferedServerConnection, recv: usize) -> Unbuffered {
        Unbuffered {
            conn,
            input: vec![0; IN],
            start: 0,
            end: 0,
            recv,
            out: OutBuf {
                buf: vec![0; OUT],
                start: 0,
                end: 0,
            },
            peer_closed: false,
            closing: false,
        }
    }

    /// Process every whole record, send, receive; until drained or full.
    fn pump(&mut self, sock: &mut Sock<'_>, scratch: &mut [u8]) -> io::Result<Pumped> {
        loop {
            self.process(scratch)?;
            if !self.out.flush(sock.io.fd)? {
                return Ok(Open);
            }
            if self.closing {
                return Ok(Done);
            }
            if !*sock.readable {
                return Ok(Open);
            }
            if self.start == self.end {
                (self.start, self.end) = (0, 0);
            } else if IN - self.end < self.recv {
                // only a partial record is left: move it to the front
                self.input.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            }
            match sock.read(&mut self.input[self.end..self.end + self.recv]) {
                Ok(0) => return Ok(Done),
                Ok(n) => self.end += n,
                Err(e) if would_block(&e) => return Ok(Open),
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs the state machine over `input` until it needs more bytes:
    /// plaintext goes to `scratch`, and is encrypted into `out` as soon as
    /// rustls offers `WriteTraffic` (after the last whole record).
    fn process(&mut self, scratch: &mut [u8]) -> io::Result<()> {
        let mut plain = 0;
        loop {
            let UnbufferedStatus { mut discard, state } = self
                .conn
                .process_tls_records(&mut self.input[self.start..self.end]);
            // whether to ask rustls again before waiting for input
            let more = match state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_error)?;
                        discard += record.discard;
                        let payload = record.payload;
                        // at most SCRATCH bytes of records are new
                        let to = scratch
                            .get_mut(plain..plain + payload.len())
                            .ok_or_else(|| tls_error("plaintext overflows the scratch buffer"))?;
                        to.copy_from_slice(payload);
                        plain += payload.len();
                    }
                    true
                }
                ConnectionState::EncodeTlsData(mut data) => {
                    self.out.put(|buf| data.encode(buf))?;
                    true
                }
                // sent from `out`, in order, by the next flush
                ConnectionState::TransmitTlsData(data) => {
                    data.done();
                    true
                }
                ConnectionState::BlockedHandshake => false,
                ConnectionState::WriteTraffic(mut traffic) => {
                    if plain > 0 {
                        self.out
                            .put(|buf| traffic.encrypt(&scratch[..plain], buf))?;
                        plain = 0;
                    }
                    if self.peer_closed && !self.closing {
                        self.out.put(|buf| traffic.queue_close_notify(buf))?;
                        self.closing = true;
                    }
                    false
                }
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    true
                }
                ConnectionState::Closed => {
                    self.closing = true;
                    false
                }
                _ => return Err(tls_error("unexpected state (early data?)")),
            };
            self.start += discard;
            if !more {
                return Ok(());
            }
        }
    }
}

/// Ciphertext owed to the peer: `buf[start..end]`.
struct OutBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl OutBuf {
    /// Lets `write` fill the free tail. `out` is empty whenever new input
    /// is processed (nothing is received until it is sent), and at most
    /// SCRATCH bytes of input are new, so the tail is big enough.
    fn put<E: std::fmt::Display>(
        &mut self,
        write: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> io::Result<()> {
        self.end += write(&mut self.buf[self.end..]).map_err(tls_error)?;
        Ok(())
    }

    /// `send` until all is sent (true) or the socket is full (false).
    fn flush(&mut self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        while self.start < self.end {
            match socket::send(fd, &self.buf[self.start..self.end]) {
                Ok(n) => self.start += n,
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        (self.start, self.end) = (0, 0);
        Ok(true)
    }
}
