//! The syscall layer: the only module allowed to say `unsafe`.
//!
//! Each file is named after a man-page family (`socket(2)`, `epoll(7)`,
//! `signalfd(2)`, `daemon(7)`). Everything above this module sees
//! `io::Result` and owned descriptors (`OwnedFd`), never `-1` and `errno`.
#![allow(unsafe_code)]

pub mod daemon;
pub mod epoll;
pub mod limits;
pub mod notify;
pub mod pidfile;
pub mod signal;
pub mod socket;
pub mod stdio;
pub mod term;

use std::io;

/// Turns a nix result into an `io::Result`, retrying `EINTR`.
///
/// This is the one place in the crate where an interrupted syscall is
/// retried (Rust std calls the same helper `cvt_r`).
#[inline]
pub fn cvt_r<T>(mut f: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// True when an `io::Error` only means "not now" (`EAGAIN`/`EWOULDBLOCK`).
#[inline]
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}
