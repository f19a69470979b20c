//! `read(2)` and `write(2)` on any descriptor, for the client's stdin and
//! stdout, plus `sysconf(_SC_CLK_TCK)`, the unit of the CPU times in
//! `/proc/PID/stat`.
//!
//! The standard library's `Stdin` keeps its own buffer, which would hide
//! bytes from an event loop that asks the kernel "is there more?"; these
//! wrappers go straight to the descriptor.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt_r;

/// `read(fd, buf)`: `Ok(0)` is end of file.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    cvt_r(|| nix::unistd::read(fd.as_raw_fd(), buf))
}

/// `write(fd, buf)` until every byte is written (blocking descriptors only:
/// on a nonblocking one a full buffer comes back as `WouldBlock`).
pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = cvt_r(|| nix::unistd::write(fd, buf))?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
    }
    Ok(())
}

/// `sysconf(_SC_CLK_TCK)`: clock ticks per second, the unit of `utime` and
/// `stime` in `/proc/PID/stat` (100 on every common Linux).
pub fn clock_ticks_per_sec() -> io::Result<u64> {
    // SAFETY: sysconf only reads a configuration value; it takes no pointers.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        return Err(io::Error::other("sysconf(_SC_CLK_TCK): no value"));
    }
    Ok(ticks as u64)
}
