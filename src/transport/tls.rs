//! One TLS session (rustls, buffered API) pumped by an edge-triggered loop.
//!
//! Reading (in `tls_read.rs`): `recv` → `read_tls` → `process_new_packets`
//! → drain the plaintext reader → `write_tls` whatever the handshake owes,
//! repeated until the socket is drained or the caller's buffer is nearly
//! full. Decrypted bytes rustls still holds are invisible to epoll, so
//! [`TlsSession::pending`] tells the reactor to come back without an edge.
//!
//! Writing: plaintext goes from the connection's output queue into rustls
//! only when rustls has sent everything it had (so at most one batch of
//! records is owed beyond the queue), then `write_tls` (one `sendmsg` of
//! many records) until `EAGAIN`.
//!
//! A TLS error writes the alert rustls produced and closes this connection
//! only. Closing sends `close_notify` after the last byte.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::BorrowedFd;

use rustls::Connection;

use super::peer;
use crate::queue::{Flushed, OutQueue, Turn};
use crate::sys::{socket, would_block};

/// Plaintext handed to rustls per batch: its own send limit is 64 KiB.
const BATCH: usize = 64 * 1024;
/// Buffers handed to rustls per vectored write.
const MAX_IOV: usize = 64;

/// A nonblocking socket as `io::Read`/`io::Write` for rustls (`read_tls`,
/// `write_tls`): `recv`, `send`, and `sendmsg` for several buffers. Errors
/// are the syscall's own, `EAGAIN` included (see [`would_block`]).
///
/// `short` tells an edge-triggered caller whether the last successful
/// `recv` filled less than it was given: the socket is then drained (unless
/// the peer has sent its FIN), so no `recv` need be spent on learning
/// `EAGAIN`.
pub struct Sock<'a> {
    /// The socket; it stays open and owned by the caller.
    pub fd: BorrowedFd<'a>,
    /// The last `recv` came back short. Set by every successful read.
    pub short: bool,
}

impl Read for Sock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = socket::recv(self.fd, buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

impl Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        socket::send(self.fd, buf)
    }
    /// rustls hands over every record it holds; one record (a pingpong
    /// echo) goes with `send`, which the kernel takes without importing a
    /// `msghdr` and an iovec array.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match bufs {
            [one] => socket::send(self.fd, one),
            _ => socket::send_vectored(self.fd, bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where a TLS session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsState {
    Handshaking,
    Open,
    /// `close_notify` is queued or sent.
    Closing,
}

impl std::fmt::Display for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsState::Handshaking => "HANDSHAKING",
            TlsState::Open => "OPEN",
            TlsState::Closing => "CLOSING",
        })
    }
}

/// A rustls connection (server or client side) and the little the loop
/// must remember about it.
#[derive(Debug)]
pub struct TlsSession {
    pub(super) conn: Connection,
    pub(super) state: TlsState,
    /// Decrypted bytes may be waiting in rustls.
    pub(super) pending: bool,
    /// Plaintext handed to rustls since it last had nothing to send.
    pub(super) in_flight: usize,
    /// The handshake finished and nobody has been told yet.
    pub(super) fresh: bool,
}

impl TlsSession {
    /// Wraps a new rustls connection (nothing has been exchanged yet).
    pub fn new(conn: impl Into<Connection>) -> TlsSession {
        TlsSession {
            conn: conn.into(),
            state: TlsState::Handshaking,
            pending: false,
            in_flight: 0,
            fresh: false,
        }
    }

    /// The session's state.
    pub fn state(&self) -> TlsState {
        self.state
    }

    /// True while the handshake is not finished.
    pub fn handshaking(&self) -> bool {
        self.state == TlsState::Handshaking
    }

    /// Decrypted bytes may be waiting: read again without a new edge.
    pub fn pending(&self) -> bool {
        self.pending
    }

    /// Plaintext bytes handed to rustls that may not be on the wire yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// True while rustls holds records to send.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// True once `close_notify` is queued and everything is sent.
    pub fn closed(&self) -> bool {
        self.state == TlsState::Closing && !self.conn.wants_write()
    }

    /// Once, after the handshake: the peer certificate's name as a nick.
    pub fn take_established(&mut self) -> Option<Option<String>> {
        if !std::mem::take(&mut self.fresh) {
            return None;
        }
        let certs = self.conn.peer_certificates();
        Some(certs.and_then(|c| c.first()).and_then(peer::nick_of))
    }

    /// Hands `data` to rustls if nothing is queued ahead of it and rustls
    /// owes nothing; queues the rest in `out`.
    pub fn write(&mut self, out: &mut OutQueue, data: &[u8]) {
        let mut taken = 0;
        if out.is_empty() && !self.conn.wants_write() && self.state == TlsState::Open {
            taken = self.conn.writer().write(data).unwrap_or(0);
            self.in_flight += taken;
        }
        out.push_copy(&data[taken..]);
    }

    /// For a client that keeps its own unsent bytes (the load generator):
    /// sends what rustls owes, then, while the socket takes it all, hands
    /// rustls as much of `data` as it accepts and sends that. Returns the
    /// plaintext bytes taken (0 before the handshake ends); clears
    /// `writable` when the socket is full. Nothing is copied into a queue.
    pub fn send_some(
        &mut self,
        fd: BorrowedFd<'_>,
        data: &[u8],
        writable: &mut bool,
    ) -> io::Result<usize> {
        let mut taken = 0;
        while *writable {
            if self.write_tls(fd)? == Flushed::Blocked {
                *writable = false;
                break;
            }
            if taken == data.len() || self.state != TlsState::Open {
                break;
            }
            match self.conn.writer().write(&data[taken..])? {
                0 => break,
                n => taken += n,
            }
        }
        Ok(taken)
    }

    /// Whether the handshake resumed an earlier session (`None` until it
    /// is done).
    pub fn resumed(&self) -> Option<bool> {
        let kind = self.conn.handshake_kind()?;
        Some(kind == rustls::HandshakeKind::Resumed)
    }

    /// Best effort, never waiting, right before the connection is closed:
    /// `data` goes to rustls after the records it already holds (never
    /// mid-record), then `close_notify` if rustls took all of `data` (a
    /// clean end must not hide a missing last line), and out as far as the
    /// socket takes them now.
    pub fn send_last(&mut self, fd: BorrowedFd<'_>, data: &[u8]) {
        if self.state == TlsState::Open {
            // The whole line goes into one record or none: rustls would
            // otherwise take only what fits under its buffer limit, which
            // a slow consumer has usually reached. (The connection closes
            // next, so the limit no longer matters.)
            self.conn.set_buffer_limit(None);
            if matches!(self.conn.writer().write(data), Ok(n) if n == data.len()) {
                self.conn.send_close_notify();
                self.state = TlsState::Closing;
            }
            let _ = self.write_tls(fd);
        }
    }

    /// Sends what rustls owes, then moves `out` into rustls a batch at a
    /// time and sends that, until done or `EAGAIN`. With `closing`, queues
    /// `close_notify` once `out` is empty.
    pub fn flush(
        &mut self,
        fd: BorrowedFd<'_>,
        out: &mut OutQueue,
        closing: bool,
    ) -> io::Result<Flushed> {
        self.flush_turn(fd, out, &Turn::default(), closing)
    }

    /// [`TlsSession::flush`] for a server queue that may owe lines of the
    /// reactor's current `turn` (see `crate::queue`).
    pub fn flush_turn(
        &mut self,
        fd: BorrowedFd<'_>,
        out: &mut OutQueue,
        turn: &Turn,
        closing: bool,
    ) -> io::Result<Flushed> {
        loop {
            if self.write_tls(fd)? == Flushed::Blocked {
                return Ok(Flushed::Blocked);
            }
            if out.is_empty() || self.state != TlsState::Open {
                break;
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = out.slices(turn, &mut iov, BATCH);
            let fed = self.conn.writer().write_vectored(&iov[..n])?;
            if fed == 0 {
                break;
            }
            out.consume(fed, turn);
            self.in_flight += fed;
        }
        if closing && out.is_empty() && self.state != TlsState::Closing {
            self.conn.send_close_notify();
            self.state = TlsState::Closing;
            return self.write_tls(fd);
        }
        Ok(Flushed::All)
    }

    /// `write_tls` until rustls owes nothing or the socket is full.
    pub(super) fn write_tls(&mut self, fd: BorrowedFd<'_>) -> io::Result<Flushed> {
        let mut sock = Sock { fd, short: false };
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut sock) {
                Ok(_) => {}
                Err(e) if would_block(&e) => return Ok(Flushed::Blocked),
                Err(e) => return Err(e),
            }
        }
        self.in_flight = 0;
        Ok(Flushed::All)
    }
}
