//! RFC 862 echo: every byte a client sends comes back, unchanged, in order.
//!
//! Stream echo writes straight back from the reactor's shared read buffer;
//! bytes are copied only when the socket does not take them all (over TLS,
//! the connection's transport encrypts them on the way out). UDP echo
//! sends each datagram back to its sender as one datagram, unless
//! [`crate::udp::Guard`] says it must not be answered.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use crate::conn::Conn;
use crate::sys::{socket, would_block};
use crate::transport::{plain, Input, Transport};
use crate::udp::Guard;

/// Bytes one connection may read per turn before the others get theirs
/// (epoll(7), "possible pitfalls": starvation).
pub const READ_BUDGET: usize = 256 * 1024;

/// Datagrams one UDP socket may echo per turn.
pub const DATAGRAM_BUDGET: usize = 64;

/// Reads what the client sent and sends it back, up to [`READ_BUDGET`].
///
/// Returns `true` when the socket may still hold data the client wants read
/// (the budget ran out first), so the reactor puts it on its ready list.
pub fn serve_stream(c: &mut Conn, buf: &mut [u8], max_output: usize) -> io::Result<bool> {
    if matches!(c.transport, Transport::Plain) {
        return serve_plain(c, buf, max_output);
    }
    let mut budget = READ_BUDGET;
    while c.wants_read(max_output) {
        if budget == 0 {
            return Ok(true);
        }
        let n = c.read(buf)?;
        // A TLS handshake round brings no data but is still work done.
        budget = budget.saturating_sub(n.max(1));
        if n > 0 {
            c.send_or_queue(&buf[..n])?;
        }
    }
    Ok(false)
}

/// Plain TCP, the hot path: `recv` into the shared buffer, `send` straight
/// back from it, no transport dispatch per call. After a short read the
/// socket is drained and the turn ends: the next byte brings a new edge.
#[inline]
fn serve_plain(c: &mut Conn, buf: &mut [u8], max_output: usize) -> io::Result<bool> {
    let mut budget = READ_BUDGET;
    while c.readable && !c.read_closed && c.out.len() <= max_output {
        if budget == 0 {
            return Ok(true);
        }
        let fd = c.fd.as_fd();
        match plain::read(fd, buf, &mut c.readable, c.peer_fin)? {
            Input::Data(n) => {
                budget = budget.saturating_sub(n);
                plain::write(fd, &mut c.out, &buf[..n], &mut c.writable)?;
                if !c.readable {
                    return Ok(false); // a short read drained the socket
                }
            }
            Input::Nothing => return Ok(false),
            Input::Eof => {
                c.read_closed = true;
                return Ok(false);
            }
        }
    }
    Ok(false)
}

/// Echoes up to [`DATAGRAM_BUDGET`] datagrams. Returns `true` when more may
/// be waiting. A datagram the kernel cannot send right now is dropped, as
/// UDP allows; it never blocks the loop.
///
/// `buf` is `--max-datagram` bytes long, and `recvfrom` (with `MSG_TRUNC`)
/// reports a longer datagram's real length. Before anything is sent back,
/// `guard` drops datagrams from service ports, the ones longer than `buf`,
/// and the ones over their source's rate ([`crate::udp`]). `now` is the
/// loop's clock for this turn.
pub fn serve_datagrams(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    guard: &mut Guard,
    now: Instant,
) -> io::Result<bool> {
    let now = guard.clock(now);
    for _ in 0..DATAGRAM_BUDGET {
        let (n, from) = match socket::recv_from(fd, buf) {
            Ok(got) => got,
            Err(e) if would_block(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        // AF_INET and AF_INET6 sockets only ever name IP sources.
        let Some(peer) = socket::datagram_peer(&from) else {
            continue;
        };
        if !guard.admit(peer, n, buf.len(), now) {
            continue;
        }
        // `admit` refused every datagram longer than `buf`.
        let Some(data) = buf.get(..n) else { continue };
        if let Err(e) = socket::send_to(fd, data, &from) {
            log::debug!("udp sendto {peer}: {e}");
        }
    }
    Ok(true)
}
