//! `epoll(7)`: one epoll instance, owned, with named event bits.
//!
//! The reactor registers every descriptor once, edge-triggered: each
//! connection for both directions (`EPOLLIN | EPOLLOUT | EPOLLRDHUP |
//! EPOLLET`, [`interest_all`]), listeners, UDP sockets and the signalfd for
//! reading ([`interest_read`]). So the steady state makes no `epoll_ctl`
//! calls at all: only `epoll_wait`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::epoll::{Epoll as NixEpoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::cvt_r;

/// One readiness report from `epoll_wait`: which source, and what happened.
pub type Event = EpollEvent;

/// The interest set used for every connection: both directions, peer
/// half-close, edge-triggered.
pub fn interest_all() -> EpollFlags {
    EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET
}

/// The interest set for listeners, UDP sockets and the signalfd: readable,
/// edge-triggered.
pub fn interest_read() -> EpollFlags {
    EpollFlags::EPOLLIN | EpollFlags::EPOLLET
}

/// The interest set for a descriptor the loop must not make nonblocking
/// (a terminal on stdin, shared with the shell): readable, level-triggered,
/// so it is reported at every wait while input is waiting and one blocking
/// `read` per report never blocks.
pub fn interest_read_level() -> EpollFlags {
    EpollFlags::EPOLLIN
}

/// Data (or a pending connection, or a signal) is waiting to be read.
#[inline]
pub fn is_readable(ev: &Event) -> bool {
    ev.events()
        .intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLPRI)
}

/// The send buffer has room again.
#[inline]
pub fn is_writable(ev: &Event) -> bool {
    ev.events().contains(EpollFlags::EPOLLOUT)
}

/// The peer sent FIN or called shutdown(SHUT_WR): reads will reach EOF.
#[inline]
pub fn is_read_closed(ev: &Event) -> bool {
    ev.events()
        .intersects(EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP)
}

/// The socket has a pending error (a reset, say) or both sides are closed.
#[inline]
pub fn is_error(ev: &Event) -> bool {
    ev.events().contains(EpollFlags::EPOLLERR)
}

/// The token the event was registered with.
#[inline]
pub fn token(ev: &Event) -> u64 {
    ev.data()
}

/// An epoll instance. `Drop` closes it.
pub struct Epoll(NixEpoll);

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> io::Result<Epoll> {
        cvt_r(|| NixEpoll::new(EpollCreateFlags::EPOLL_CLOEXEC)).map(Epoll)
    }

    /// `epoll_ctl(EPOLL_CTL_ADD)`: watch `fd` for `interest`, reporting `token`.
    pub fn add(&self, fd: BorrowedFd<'_>, interest: EpollFlags, token: u64) -> io::Result<()> {
        cvt_r(|| self.0.add(fd, EpollEvent::new(interest, token)))
    }

    /// `epoll_ctl(EPOLL_CTL_DEL)`: stop watching `fd`. Call before closing it.
    pub fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        cvt_r(|| self.0.delete(fd))
    }

    /// `epoll_wait`: fill `events`, waiting at most `timeout` (`None` = forever).
    /// Returns how many entries of `events` were filled.
    pub fn wait(&self, events: &mut [Event], timeout: Option<Duration>) -> io::Result<usize> {
        let ms = match timeout {
            None => EpollTimeout::NONE,
            // Round up so a deadline 0.4 ms away does not spin with timeout 0.
            Some(d) => {
                let ms = d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
                EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::NONE)
            }
        };
        cvt_r(|| self.0.wait(events, ms))
    }

    /// An empty event array for `wait`.
    pub fn events(capacity: usize) -> Vec<Event> {
        vec![EpollEvent::empty(); capacity]
    }
}

impl AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0 .0.as_fd()
    }
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.0 .0.as_raw_fd()
    }
}

impl From<Epoll> for OwnedFd {
    fn from(e: Epoll) -> OwnedFd {
        e.0 .0
    }
}
