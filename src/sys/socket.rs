//! `socket(2)` and friends: the C socket tutorial, one function per step.
//!
//! Server side: [`listen_tcp`] is `socket` → `setsockopt(SO_REUSEADDR)` →
//! `bind` → `listen`; [`accept`] is `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`.
//! Client side: [`connect_tcp`] is `socket` → `connect` (and
//! [`connect_tcp_nonblocking`] the same without waiting). Data moves with
//! [`recv`], [`send`] and [`send_vectored`], all with `MSG_NOSIGNAL` on the
//! sending side so a closed peer is an `EPIPE` error, never a `SIGPIPE`.

use std::io::{self, IoSlice};
use std::mem::{size_of, MaybeUninit};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::socket::{
    self as ns, sockopt, AddressFamily, Backlog, MsgFlags, SockFlag, SockType, SockaddrLike,
    SockaddrStorage,
};

use super::cvt_r;

fn family(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// `socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)`.
fn new_socket(addr: &SocketAddr, ty: SockType, nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = SockFlag::SOCK_CLOEXEC;
    if nonblocking {
        flags |= SockFlag::SOCK_NONBLOCK;
    }
    cvt_r(|| ns::socket(family(addr), ty, flags, None))
}

/// Opens a listening TCP socket, in the order the C tutorial teaches:
///
/// 1. `socket(AF_INET or AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)`
/// 2. `setsockopt(SO_REUSEADDR)`, so a restart does not wait out TIME_WAIT
///    (and `SO_REUSEPORT` when asked, so several processes share the port;
///    `IPV6_V6ONLY` on IPv6 so `[::]` and `0.0.0.0` can both be bound)
/// 3. `bind(addr)`
/// 4. `listen(backlog)`
pub fn listen_tcp(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<OwnedFd> {
    let fd = new_socket(&addr, SockType::Stream, true)?;
    cvt_r(|| ns::setsockopt(&fd, sockopt::ReuseAddr, &true))?;
    if reuse_port {
        cvt_r(|| ns::setsockopt(&fd, sockopt::ReusePort, &true))?;
    }
    if addr.is_ipv6() {
        cvt_r(|| ns::setsockopt(&fd, sockopt::Ipv6V6Only, &true))?;
    }
    cvt_r(|| ns::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)))?;
    let backlog = Backlog::new(backlog).unwrap_or(Backlog::MAXCONN);
    cvt_r(|| ns::listen(&fd, backlog))?;
    Ok(fd)
}

/// Opens a UDP socket: `socket(SOCK_DGRAM | SOCK_NONBLOCK)` → `bind(addr)`.
pub fn bind_udp(addr: SocketAddr) -> io::Result<OwnedFd> {
    let fd = new_socket(&addr, SockType::Datagram, true)?;
    if addr.is_ipv6() {
        cvt_r(|| ns::setsockopt(&fd, sockopt::Ipv6V6Only, &true))?;
    }
    cvt_r(|| ns::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)))?;
    Ok(fd)
}

/// Connects a TCP socket, the client half of the tutorial:
///
/// 1. `socket(AF_INET or AF_INET6, SOCK_STREAM | SOCK_CLOEXEC)`
/// 2. `connect(addr)` (blocking: the caller sets `O_NONBLOCK` afterwards
///    with [`set_nonblocking`] if it runs an event loop)
pub fn connect_tcp(addr: SocketAddr) -> io::Result<OwnedFd> {
    let fd = new_socket(&addr, SockType::Stream, false)?;
    cvt_r(|| ns::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)))?;
    Ok(fd)
}

/// Starts connecting a TCP socket without waiting for the handshake, for a
/// client that runs an event loop over many connections:
///
/// 1. `socket(AF_INET or AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)`
/// 2. `setsockopt(SO_RCVBUF)` when `rcvbuf` is given: before `connect`, so
///    the window advertised from the first segment on is that small
/// 3. `connect(addr)`: `EINPROGRESS` is the usual answer; the socket turns
///    writable once the handshake is over, and [`take_error`] then says
///    whether it succeeded
pub fn connect_tcp_nonblocking(addr: SocketAddr, rcvbuf: Option<usize>) -> io::Result<OwnedFd> {
    let fd = new_socket(&addr, SockType::Stream, true)?;
    if let Some(bytes) = rcvbuf {
        cvt_r(|| ns::setsockopt(&fd, sockopt::RcvBuf, &bytes))?;
    }
    match cvt_r(|| ns::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr))) {
        Ok(()) => Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(fd),
        Err(e) => Err(e),
    }
}

/// `getsockopt(SO_ERROR)`: the error pending on a socket, which also clears
/// it; after a nonblocking `connect`, how the handshake ended.
pub fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let errno = cvt_r(|| ns::getsockopt(&fd, sockopt::SocketError))?;
    Ok((errno != 0).then(|| io::Error::from_raw_os_error(errno)))
}

/// Sets `O_NONBLOCK` on a descriptor (`fcntl(F_SETFL)`).
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = cvt_r(|| fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    cvt_r(|| fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags))).map(drop)
}

/// `setsockopt(TCP_NODELAY)`: send small writes at once (no Nagle delay).
pub fn set_nodelay(fd: BorrowedFd<'_>) -> io::Result<()> {
    cvt_r(|| ns::setsockopt(&fd, sockopt::TcpNoDelay, &true))
}

/// `setsockopt(SO_RCVBUF)`: ask the kernel for a receive buffer of `bytes`.
pub fn set_recv_buffer(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    cvt_r(|| ns::setsockopt(&fd, sockopt::RcvBuf, &bytes))
}

/// `setsockopt(SO_SNDBUF)`: fix the send buffer at `bytes` (the kernel
/// doubles it for its bookkeeping) and turn off its autotuning, which
/// would otherwise grow it up to `net.ipv4.tcp_wmem`'s maximum.
pub fn set_send_buffer(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    cvt_r(|| ns::setsockopt(&fd, sockopt::SndBuf, &bytes))
}

/// `setsockopt(SO_LINGER, 0)`: the next `close` sends RST instead of FIN.
pub fn set_linger_zero(fd: BorrowedFd<'_>) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    cvt_r(|| ns::setsockopt(&fd, sockopt::Linger, &linger))
}

/// `getsockname`: the address a socket is bound to (the real port after
/// binding port 0).
pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    let ss: SockaddrStorage = cvt_r(|| ns::getsockname(fd.as_raw_fd()))?;
    to_socket_addr(&ss).ok_or_else(|| io::Error::other("getsockname: not an IP address"))
}

fn to_socket_addr(ss: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = ss.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    ss.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// `accept4(listener, SOCK_NONBLOCK | SOCK_CLOEXEC)`: the next pending
/// connection, already nonblocking, with the peer's address.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<(OwnedFd, Option<SocketAddr>)> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len: libc::socklen_t = 0;
    let fd = cvt_r(|| {
        len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `storage` is writable and `len` holds its size, as
        // accept4(2) requires; the kernel writes at most `len` bytes into it.
        unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                storage.as_mut_ptr().cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        }
    })?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the kernel filled `len` bytes of `storage` with a sockaddr.
    let ss = unsafe { SockaddrStorage::from_raw(storage.as_ptr().cast(), Some(len)) };
    Ok((owned, ss.as_ref().and_then(to_socket_addr)))
}

/// `recv(fd, buf, 0)`: `Ok(0)` is end of stream (the peer sent FIN).
#[inline]
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
    cvt_r(|| unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// `send(fd, buf, MSG_NOSIGNAL)`: may write fewer bytes than given.
#[inline]
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call.
    cvt_r(|| unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    })
}

/// `sendmsg(fd, iov, MSG_NOSIGNAL)`: `writev` with the no-SIGPIPE flag, so a
/// queue of buffers leaves in one syscall.
pub fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with `struct iovec` on Unix.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
    // SAFETY: `msg` points at `bufs`, which outlives the call; sendmsg only
    // reads from the iovecs.
    cvt_r(|| unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })
}

/// `ioctl(SIOCOUTQ)`: bytes in the socket's send queue that the peer has
/// not acknowledged yet. At 0, nothing sent can be lost any more, even if
/// the connection ends with an RST.
pub fn unacked(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ for sockets) writes one int through the
    // pointer, which points at `n`, alive for the call.
    cvt_r(|| unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut n) })?;
    Ok(n.max(0) as usize)
}

/// `shutdown(fd, SHUT_WR)`: send FIN after everything already written.
pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    cvt_r(|| ns::shutdown(fd.as_raw_fd(), ns::Shutdown::Write))
}

/// `recvfrom(fd, buf, MSG_TRUNC)`: one datagram and its sender.
///
/// With `MSG_TRUNC`, Linux returns the datagram's real length even when it
/// was longer than `buf` (udp(7)): a length over `buf.len()` means only the
/// first `buf.len()` bytes were kept, and the rest is lost.
#[inline]
pub fn recv_from(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, SockaddrStorage)> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes and `storage`
    // for `len` bytes, for the call; the kernel writes at most that much.
    let n = cvt_r(|| unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
            storage.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    // SAFETY: the kernel filled `len` bytes of `storage` with a sockaddr.
    let from = unsafe { SockaddrStorage::from_raw(storage.as_ptr().cast(), Some(len)) };
    let from = from.ok_or_else(|| io::Error::other("recvfrom: no source address"))?;
    Ok((n, from))
}

/// `sendto(MSG_NOSIGNAL)`: one datagram to `to`.
pub fn send_to(fd: BorrowedFd<'_>, buf: &[u8], to: &SockaddrStorage) -> io::Result<usize> {
    cvt_r(|| ns::sendto(fd.as_raw_fd(), buf, to, MsgFlags::MSG_NOSIGNAL))
}

/// The printable form of a datagram's source address.
pub fn datagram_peer(ss: &SockaddrStorage) -> Option<SocketAddr> {
    to_socket_addr(ss)
}
