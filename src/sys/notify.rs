//! `sd_notify(3)` without libsystemd: when systemd starts the server with
//! `Type=notify`, it sets `NOTIFY_SOCKET` to a Unix datagram socket (a path,
//! or `@name` for the abstract namespace), and the server sends it one
//! datagram per state change: `READY=1` once serving, `RELOADING=1` and
//! then `READY=1` around a SIGHUP reload, `STOPPING=1` when a shutdown
//! begins. Without `NOTIFY_SOCKET` every call here does nothing.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The server is serving.
pub const READY: &str = "READY=1";
/// A shutdown has begun.
pub const STOPPING: &str = "STOPPING=1";

/// Sends `state` to `$NOTIFY_SOCKET`: `socket(AF_UNIX, SOCK_DGRAM)` →
/// `sendto`. Returns `false` when the variable is not set.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let bytes = target.as_encoded_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(&target)?,
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

/// `RELOADING=1` with `MONOTONIC_USEC=` (`clock_gettime(CLOCK_MONOTONIC)`),
/// as `Type=notify-reload` requires.
pub fn reloading() -> io::Result<bool> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a live timespec for the kernel to fill in.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let usec = now.tv_sec as i128 * 1_000_000 + now.tv_nsec as i128 / 1_000;
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"))
}
