//! The read side of a [`TlsSession`]: ciphertext in, plaintext out, with
//! nothing stranded.
//!
//! With a buffer of at least [`BIG`] bytes, the caller's buffer is split:
//! its tail takes one `recv` of up to 16 KiB of ciphertext, which is fed to
//! rustls (`read_tls` from the slice → `process_new_packets` → drain the
//! plaintext reader into the head) until every byte is consumed. That is
//! one `recv` per 16 KiB instead of one per 4 KiB (rustls reads 4 KiB at a
//! time from a socket). The head always has room for what the fed bytes
//! can decrypt to, so no ciphertext outlives the call. With a smaller
//! buffer, rustls reads from the socket itself.
//!
//! Decrypted bytes still held by rustls when the head is full set
//! `pending`: epoll cannot see them, so the reactor reads again without an
//! edge.

use std::io::{self, Read};
use std::os::fd::BorrowedFd;

use super::tls::{Sock, TlsSession, TlsState};
use super::Input;
use crate::sys::{socket, would_block};

/// Ciphertext taken per `recv`.
const RAW: usize = 16 * 1024;
/// The most ciphertext rustls may hold back as a partial record: its
/// plaintext can appear along with the next bytes fed.
const PARTIAL: usize = 16 * 1024 + 2048 + 5;
/// Buffers this big get the split-buffer path.
pub const BIG: usize = 64 * 1024;
/// The smallest `recv` worth making.
const MIN_READ: usize = 4096;

impl TlsSession {
    /// Reads and decrypts what the peer sent into `buf`, as much as fits.
    /// `readable` is cleared once the socket is known to be drained.
    pub fn read(
        &mut self,
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
        readable: &mut bool,
        peer_fin: bool,
    ) -> io::Result<Input> {
        if buf.len() < BIG {
            return self.read_small(fd, buf, readable, peer_fin);
        }
        let (out, raw) = buf.split_at_mut(buf.len() - RAW);
        let mut filled = 0;
        loop {
            if self.drain(out, &mut filled)? {
                return Ok(self.end(filled));
            }
            let room = out.len() - filled;
            if !*readable || self.pending || room < PARTIAL + MIN_READ {
                return Ok(data_or_nothing(filled));
            }
            let want = raw.len().min(room - PARTIAL);
            let n = match socket::recv(fd, &mut raw[..want]) {
                Ok(n) => n,
                Err(e) if would_block(&e) => {
                    *readable = false;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if n < want && !peer_fin {
                *readable = false; // a short read drained the socket
            }
            if n == 0 {
                *readable = false;
                self.conn.read_tls(&mut io::empty())?; // rustls learns of the EOF
                self.process(fd)?;
                continue;
            }
            if self.feed(fd, &raw[..n], out, &mut filled)? {
                return Ok(self.end(filled));
            }
            self.write_tls(fd)?; // handshake flights, tickets, key updates
        }
    }

    /// Feeds ciphertext to rustls in the steps it takes, draining the
    /// plaintext after each. Returns `true` if the stream ended.
    fn feed(
        &mut self,
        fd: BorrowedFd<'_>,
        mut rest: &[u8],
        out: &mut [u8],
        filled: &mut usize,
    ) -> io::Result<bool> {
        while !rest.is_empty() {
            if self.conn.read_tls(&mut rest)? == 0 {
                return Ok(true); // close_notify came before these bytes
            }
            self.process(fd)?;
            if self.drain(out, filled)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Moves decrypted bytes into `out[filled..]`. Returns `true` if the
    /// stream ended (`close_notify`, or EOF without it).
    fn drain(&mut self, out: &mut [u8], filled: &mut usize) -> io::Result<bool> {
        while *filled < out.len() {
            match self.conn.reader().read(&mut out[*filled..]) {
                Ok(0) => return Ok(true),
                Ok(n) => *filled += n,
                Err(e) if would_block(&e) => {
                    self.pending = false;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
                Err(e) => return Err(e),
            }
        }
        self.pending = true; // `out` is full: more may wait in rustls
        Ok(false)
    }

    /// `process_new_packets`; on a TLS error, sends the alert rustls queued
    /// and fails. Notes the end of the handshake.
    fn process(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        if let Err(err) = self.conn.process_new_packets() {
            let _ = self.write_tls(fd);
            return Err(io::Error::new(io::ErrorKind::InvalidData, err));
        }
        if self.state == TlsState::Handshaking && !self.conn.is_handshaking() {
            self.state = TlsState::Open;
            self.fresh = true;
        }
        Ok(())
    }

    /// The small-buffer path: rustls reads 4 KiB at a time from the socket.
    fn read_small(
        &mut self,
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
        readable: &mut bool,
        peer_fin: bool,
    ) -> io::Result<Input> {
        let mut filled = 0;
        loop {
            if self.drain(buf, &mut filled)? {
                return Ok(self.end(filled));
            }
            if !*readable || self.pending {
                return Ok(data_or_nothing(filled));
            }
            let mut sock = Sock { fd, short: false };
            match self.conn.read_tls(&mut sock) {
                Ok(0) => *readable = false,
                Ok(_) if sock.short && !peer_fin => *readable = false,
                Ok(_) => {}
                Err(e) if would_block(&e) => *readable = false,
                Err(e) => return Err(e),
            }
            self.process(fd)?;
            self.write_tls(fd)?;
        }
    }

    /// The end of the stream, after any bytes already read: those first,
    /// and `pending` so the next read comes back for the end.
    fn end(&mut self, filled: usize) -> Input {
        if filled == 0 {
            return Input::Eof;
        }
        self.pending = true;
        Input::Data(filled)
    }
}

fn data_or_nothing(filled: usize) -> Input {
    if filled > 0 {
        Input::Data(filled)
    } else {
        Input::Nothing
    }
}
