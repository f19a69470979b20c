//! Plain TCP: `recv` and `send` straight on the socket, with the short-read
//! rule that saves a syscall per wakeup.

use std::io;
use std::os::fd::BorrowedFd;

use super::Input;
use crate::queue::{Flushed, OutQueue, Turn};
use crate::sys::{socket, would_block};

/// One `recv`. A short read means the socket is drained (the next byte
/// brings a new edge), unless a FIN is pending: then read on to the 0.
#[inline]
pub fn read(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    readable: &mut bool,
    peer_fin: bool,
) -> io::Result<Input> {
    match socket::recv(fd, buf) {
        Ok(0) => {
            *readable = false;
            Ok(Input::Eof)
        }
        Ok(n) => {
            if n < buf.len() && !peer_fin {
                *readable = false;
            }
            Ok(Input::Data(n))
        }
        Err(e) if would_block(&e) => {
            *readable = false;
            Ok(Input::Nothing)
        }
        Err(e) => Err(e),
    }
}

/// Sends `data` at once if nothing is queued ahead of it; queues what the
/// socket did not take.
#[inline]
pub fn write(
    fd: BorrowedFd<'_>,
    out: &mut OutQueue,
    data: &[u8],
    writable: &mut bool,
) -> io::Result<()> {
    if out.is_empty() && *writable {
        match socket::send(fd, data) {
            Ok(n) if n == data.len() => Ok(()),
            sent => queue_rest(out, data, sent, writable),
        }
    } else {
        queue_then_flush(fd, out, data, writable)
    }
}

/// The socket took part of `data` (or none, or failed): keep the rest.
#[cold]
#[inline(never)]
fn queue_rest(
    out: &mut OutQueue,
    data: &[u8],
    sent: io::Result<usize>,
    writable: &mut bool,
) -> io::Result<()> {
    let n = match sent {
        Ok(n) => n,
        Err(e) if would_block(&e) => 0,
        Err(e) => return Err(e),
    };
    *writable = false;
    out.push_copy(&data[n..]);
    Ok(())
}

/// Bytes are already owed: `data` goes behind them, then a flush.
#[cold]
#[inline(never)]
fn queue_then_flush(
    fd: BorrowedFd<'_>,
    out: &mut OutQueue,
    data: &[u8],
    writable: &mut bool,
) -> io::Result<()> {
    out.push_copy(data);
    if *writable && out.flush(fd, &Turn::default())? == Flushed::Blocked {
        *writable = false;
    }
    Ok(())
}
