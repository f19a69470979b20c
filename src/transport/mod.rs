//! How bytes cross the wire: in the clear, or inside TLS.
//!
//! [`Transport`] is the one small interface a connection talks to, so echo
//! and chat never know which kind of client they serve:
//!
//! - read: [`Transport::read`] fills a buffer with what the client sent
//!   (plaintext, after decryption for TLS) and reports [`Input`];
//! - write: [`Transport::write`] sends or queues plaintext,
//!   [`Transport::flush`] sends what an [`OutQueue`] holds (encrypting it
//!   first for TLS) and [`Transport::wants_write`] says whether bytes are
//!   still owed;
//! - close: [`Transport::flush`] with `closing` set sends TLS `close_notify`
//!   after the last byte, before the reactor's `shutdown(SHUT_WR)`.
//!
//! A plain connection is one enum tag: the TLS state is boxed, so plain
//! clients stay as small and as fast as before TLS existed.
//!
//! - [`plain`]: `recv` and `send` straight on the socket.
//! - [`tls`]: a rustls connection pumped under edge-triggered epoll (its
//!   read side, one `recv` per 16 KiB of ciphertext, is in `tls_read.rs`);
//!   [`tls::Sock`], the socket as `Read`/`Write` for rustls, serves any
//!   other rustls connection too (`examples/tls_api_probe.rs`).
//! - [`config`]: server certificates, `--client-ca`, reload on SIGHUP.
//! - [`peer`]: a client certificate's name, reduced to a chat nick.
//! - [`client`]: the client side (config builders and a session over a
//!   nonblocking fd) for `edgechat client --tls` and `edgechat bench --tls`:
//!   build a config with [`client::config`], start a session with
//!   [`client::connect`], then drive it exactly as the server drives its
//!   connections: [`TlsSession::read`] when the fd is readable,
//!   [`TlsSession::write`] + [`TlsSession::flush`] to send.

pub mod client;
pub mod config;
pub mod peer;
pub mod plain;
pub mod tls;
mod tls_read;

#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::BorrowedFd;

pub use tls::TlsSession;

use crate::queue::{Flushed, OutQueue, Turn};

/// What one read brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// This many bytes of the client's stream are at the start of the buffer.
    Data(usize),
    /// Nothing more for now: wait for the next edge.
    Nothing,
    /// The client sends nothing more (FIN, or TLS `close_notify`).
    Eof,
}

/// Plain TCP, or TLS with its state boxed.
#[derive(Debug)]
pub enum Transport {
    Plain,
    Tls(Box<TlsSession>),
}

impl Transport {
    /// Reads what the client sent into `buf`. `readable` is the edge bit:
    /// cleared once the socket is known to be drained.
    #[inline]
    pub fn read(
        &mut self,
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
        readable: &mut bool,
        peer_fin: bool,
    ) -> io::Result<Input> {
        match self {
            Transport::Plain => plain::read(fd, buf, readable, peer_fin),
            Transport::Tls(t) => t.read(fd, buf, readable, peer_fin),
        }
    }

    /// Sends `data` now if nothing is owed ahead of it, and queues the rest
    /// in `out`. Order is kept.
    #[inline]
    pub fn write(
        &mut self,
        fd: BorrowedFd<'_>,
        out: &mut OutQueue,
        data: &[u8],
        writable: &mut bool,
    ) -> io::Result<()> {
        match self {
            Transport::Plain => plain::write(fd, out, data, writable),
            Transport::Tls(t) => {
                t.write(out, data);
                if *writable && t.flush(fd, out, false)? == Flushed::Blocked {
                    *writable = false;
                }
                Ok(())
            }
        }
    }

    /// Best effort, ahead of anything still queued in `out`: a last line
    /// before the server cuts a connection (`ERR slow-consumer`), and for
    /// TLS `close_notify` after it. Never waits for the socket. Only at a
    /// line boundary: once part of `out`'s front buffer has gone (to the
    /// socket, or into rustls), `data` would land inside that line, so
    /// nothing is sent (the close says enough).
    pub fn send_last(&mut self, fd: BorrowedFd<'_>, out: &OutQueue, data: &[u8]) {
        if out.partly_sent() {
            return;
        }
        match self {
            Transport::Plain => drop(crate::sys::socket::send(fd, data)),
            Transport::Tls(t) => t.send_last(fd, data),
        }
    }

    /// Sends what `out` holds. With `closing`, TLS adds `close_notify` once
    /// everything else is out.
    #[inline]
    pub fn flush(
        &mut self,
        fd: BorrowedFd<'_>,
        out: &mut OutQueue,
        turn: &Turn,
        closing: bool,
    ) -> io::Result<Flushed> {
        match self {
            Transport::Plain => out.flush(fd, turn),
            Transport::Tls(t) => t.flush_turn(fd, out, turn, closing),
        }
    }

    /// Bytes owed beyond the output queue (encrypted records not yet sent).
    #[inline]
    pub fn in_flight(&self) -> usize {
        match self {
            Transport::Plain => 0,
            Transport::Tls(t) => t.in_flight(),
        }
    }

    /// True while the transport itself still has bytes to send (a TLS
    /// handshake flight, an alert, `close_notify`).
    #[inline]
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(t) => t.wants_write(),
        }
    }

    /// Decrypted bytes wait inside the transport: invisible to epoll, so the
    /// connection must be read again without a new edge.
    #[inline]
    pub fn pending(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(t) => t.pending(),
        }
    }

    /// True when everything for a clean close has been sent.
    #[inline]
    pub fn closed(&self) -> bool {
        match self {
            Transport::Plain => true,
            Transport::Tls(t) => t.closed(),
        }
    }

    /// Plain TCP, no TLS.
    pub fn is_plain(&self) -> bool {
        matches!(self, Transport::Plain)
    }

    /// True while a TLS handshake is still going on.
    #[inline]
    pub fn handshaking(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(t) => t.handshaking(),
        }
    }

    /// Once, right after the TLS handshake completes: the client
    /// certificate's name, if it presented one (`Some(None)` if not).
    pub fn take_established(&mut self) -> Option<Option<String>> {
        match self {
            Transport::Plain => None,
            Transport::Tls(t) => t.take_established(),
        }
    }
}
