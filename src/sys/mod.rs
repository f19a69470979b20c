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

use nix::errno::Errno;

/// What a syscall returns, as [`cvt_r`] reads it: a value, or an error
/// whose `errno` may be `EINTR`.
///
/// Three shapes reach the kernel from here: nix's wrappers (`nix::Result`),
/// and raw `libc` calls returning `c_int` (a descriptor, `0`) or `ssize_t`
/// (a byte count), both `-1` with `errno` set on failure. The per-message
/// calls (`recv`, `send`, `sendmsg`, `recvfrom`) are raw: nix's `Errno`
/// conversion costs about twenty instructions per call.
pub trait SysResult {
    /// The value on success: a byte count is a `usize`.
    type Output;
    /// Failed with `EINTR`: nothing happened, call again.
    fn interrupted(&self) -> bool;
    /// The value, or `errno` as an `io::Error`.
    fn into_io(self) -> io::Result<Self::Output>;
}

impl<T> SysResult for nix::Result<T> {
    type Output = T;
    #[inline]
    fn interrupted(&self) -> bool {
        matches!(self, Err(Errno::EINTR))
    }
    #[inline]
    fn into_io(self) -> io::Result<T> {
        self.map_err(io::Error::from)
    }
}

/// `-1` and `errno`: `c_int` (a descriptor, or `0`) and `ssize_t` (a byte
/// count, given back as a `usize`).
macro_rules! raw_result {
    ($ty:ty => $out:ty) => {
        impl SysResult for $ty {
            type Output = $out;
            #[inline]
            fn interrupted(&self) -> bool {
                *self < 0 && Errno::last_raw() == libc::EINTR
            }
            #[inline]
            fn into_io(self) -> io::Result<$out> {
                if self < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(self as $out)
            }
        }
    };
}
raw_result!(libc::c_int => libc::c_int);
raw_result!(libc::ssize_t => usize);

/// Runs a syscall until it is not interrupted, and turns its result into an
/// `io::Result`.
///
/// This is the one place in the crate where `EINTR` is retried (Rust std
/// calls the same helper `cvt_r`): every call in `src/sys/` that can fail
/// with `EINTR` goes through it, whether nix wraps it or `libc` is called
/// raw. (Not `close(2)`: after `EINTR` the descriptor is already gone on
/// Linux, and a retry could close one opened meanwhile.)
///
/// The raw value is looked at first, and `errno` only after a `-1`, so a
/// call that succeeds costs one comparison here, as it would written by
/// hand: `recv` and `send` run once per echoed message.
#[inline]
pub fn cvt_r<R: SysResult>(mut f: impl FnMut() -> R) -> io::Result<R::Output> {
    loop {
        let r = f();
        if !r.interrupted() {
            return r.into_io();
        }
    }
}

/// True when an `io::Error` only means "not now" (`EAGAIN`/`EWOULDBLOCK`).
#[inline]
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw call failing with `errno` for the first `fails` tries, then
    /// returning `ok`; counts its calls.
    fn failing<R: Copy>(errno: Errno, fails: usize, err: R, ok: R) -> impl FnMut() -> (R, usize) {
        let mut calls = 0;
        move || {
            calls += 1;
            if calls <= fails {
                errno.set();
                (err, calls)
            } else {
                (ok, calls)
            }
        }
    }

    #[test]
    fn eintr_is_retried_for_every_return_shape() {
        let mut f = failing(Errno::EINTR, 2, -1 as libc::ssize_t, 5);
        let mut calls = 0;
        assert_eq!(
            cvt_r(|| {
                let (r, n) = f();
                calls = n;
                r
            })
            .unwrap(),
            5usize
        );
        assert_eq!(calls, 3);

        let mut f = failing(Errno::EINTR, 3, -1 as libc::c_int, 7);
        assert_eq!(
            cvt_r(|| {
                let (r, n) = f();
                calls = n;
                r
            })
            .unwrap(),
            7
        );
        assert_eq!(calls, 4);

        let mut tries = 0;
        let got = cvt_r(|| {
            tries += 1;
            if tries == 1 {
                Err(Errno::EINTR)
            } else {
                Ok("done")
            }
        });
        assert_eq!(got.unwrap(), "done");
        assert_eq!(tries, 2);
    }

    #[test]
    fn other_errors_are_returned_at_once() {
        let mut f = failing(Errno::EAGAIN, 1, -1 as libc::ssize_t, 5);
        let mut calls = 0;
        let err = cvt_r(|| {
            let (r, n) = f();
            calls = n;
            r
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(would_block(&err));
        assert_eq!(calls, 1);

        let mut f = failing(Errno::EBADF, 1, -1 as libc::c_int, 0);
        let err = cvt_r(|| f().0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));

        let err = cvt_r(|| Err::<(), _>(Errno::ECONNRESET)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }
}
