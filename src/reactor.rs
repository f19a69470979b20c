//! The event loop: one thread, one epoll set, edge-triggered.
//!
//! ```text
//! loop {
//!     epoll_wait(timeout = 0 if the ready list has work, else the next deadline)
//!     for each event: find its source by token, act until EAGAIN or budget
//!     for each source on the ready list: one more budgeted turn
//! }
//! ```
//!
//! Every descriptor is registered once (`EPOLLIN | EPOLLOUT | EPOLLRDHUP |
//! EPOLLET`); the steady state makes no `epoll_ctl` calls. A connection that
//! used up its budget while data is still waiting goes on the ready list, so
//! one busy client cannot starve the others. An error on a connection closes
//! that connection only.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use slab::Slab;

use crate::config::Config;
use crate::conn::{Conn, Phase};
use crate::echo;
use crate::error::{Context, Error, Result};
use crate::sys::epoll::{self, Epoll, Event};
use crate::sys::limits::{self, ReserveFd};
use crate::sys::signal::Signals;
use crate::sys::{socket, would_block};

/// The shared read buffer: one per server, not one per connection.
const READ_BUF: usize = 64 * 1024;
/// Events taken from the kernel per `epoll_wait`.
const EVENTS: usize = 1024;
/// Connections accepted per listener per turn.
const ACCEPT_BUDGET: usize = 256;
/// Descriptors kept free for everything that is not a client.
const SPARE_FDS: u64 = 32;

/// Tokens with this bit are fixed sources (signals, listeners, UDP);
/// without it, the low 32 bits are a slab key and the next 31 a generation.
const FIXED: u64 = 1 << 63;
const SIGNAL_TOKEN: u64 = FIXED;
const LISTENER_KIND: u64 = 1 << 32;
const UDP_KIND: u64 = 2 << 32;

fn conn_token(key: usize, gen: u32) -> u64 {
    (u64::from(gen) << 32) | key as u64
}

/// A listening TCP socket or a bound UDP socket, and the address it is
/// really bound to.
struct Listener {
    fd: OwnedFd,
    addr: SocketAddr,
}

impl Listener {
    /// `socket` → `setsockopt` → `bind` → `listen` on `want`.
    fn tcp(want: SocketAddr, cfg: &Config) -> Result<Listener> {
        let err = |source| Error::Listen {
            scheme: "tcp",
            addr: want,
            source,
        };
        let fd = socket::listen_tcp(want, cfg.backlog, cfg.reuse_port).map_err(err)?;
        let addr = socket::local_addr(fd.as_fd()).map_err(err)?;
        Ok(Listener { fd, addr })
    }

    /// `socket` → `bind` on `want`, for UDP echo.
    fn udp(want: SocketAddr) -> Result<Listener> {
        let err = |source| Error::Listen {
            scheme: "udp",
            addr: want,
            source,
        };
        let fd = socket::bind_udp(want).map_err(err)?;
        let addr = socket::local_addr(fd.as_fd()).map_err(err)?;
        Ok(Listener { fd, addr })
    }
}

/// The server: every descriptor it owns, and the loop that drives them.
pub struct Reactor {
    epoll: Epoll,
    events: Vec<Event>,
    signals: Signals,
    listeners: Vec<Listener>,
    udp: Vec<Listener>,
    conns: Slab<Conn>,
    /// Tokens of sources with work left over from an earlier turn.
    ready: VecDeque<u64>,
    buf: Box<[u8]>,
    reserve: ReserveFd,
    next_gen: u32,
    cfg: Config,
    /// Set once a shutdown has begun: when it must be over.
    deadline: Option<Instant>,
    stop_now: bool,
}

impl Reactor {
    /// Opens every listener, in the tutorial's order (`socket` →
    /// `setsockopt` → `bind` → `listen`), then a new epoll instance and the
    /// signalfd, and registers them all (`epoll_create1` → `epoll_ctl`).
    /// Once everything is ready, logs `listening on tcp://ADDR` (or
    /// `udp://`) for each listener.
    pub fn bind(mut cfg: Config) -> Result<Reactor> {
        let nofile = limits::raise_nofile().sys("setrlimit(RLIMIT_NOFILE)")?;
        let fits =
            nofile.saturating_sub(SPARE_FDS + (cfg.tcp.len() + cfg.udp.len()) as u64) as usize;
        if cfg.max_clients > fits {
            log::warn!(
                "--max-clients {} does not fit RLIMIT_NOFILE {nofile}: lowered to {fits}",
                cfg.max_clients
            );
            cfg.max_clients = fits.max(1);
        }
        let listeners: Vec<Listener> = cfg
            .tcp
            .iter()
            .map(|&want| Listener::tcp(want, &cfg))
            .collect::<Result<_>>()?;
        let udp: Vec<Listener> = cfg
            .udp
            .iter()
            .map(|&want| Listener::udp(want))
            .collect::<Result<_>>()?;
        let epoll = Epoll::new().sys("epoll_create1")?;
        let signals = Signals::new().sys("signalfd")?;
        epoll
            .add(signals.as_fd(), epoll::interest_read(), SIGNAL_TOKEN)
            .sys("epoll_ctl")?;
        for (i, l) in listeners.iter().enumerate() {
            let token = FIXED | LISTENER_KIND | i as u64;
            epoll
                .add(l.fd.as_fd(), epoll::interest_read(), token)
                .sys("epoll_ctl")?;
        }
        for (i, u) in udp.iter().enumerate() {
            let token = FIXED | UDP_KIND | i as u64;
            epoll
                .add(u.fd.as_fd(), epoll::interest_read(), token)
                .sys("epoll_ctl")?;
        }
        let reserve = ReserveFd::new().sys("open /dev/null")?;
        for l in &listeners {
            log::info!("listening on tcp://{}", l.addr);
        }
        for u in &udp {
            log::info!("listening on udp://{}", u.addr);
        }
        Ok(Reactor {
            epoll,
            events: Epoll::events(EVENTS),
            signals,
            listeners,
            udp,
            conns: Slab::new(),
            ready: VecDeque::new(),
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            reserve,
            next_gen: 0,
            cfg,
            deadline: None,
            stop_now: false,
        })
    }

    /// The addresses the TCP listeners are bound to.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.addr).collect()
    }

    /// Runs until a graceful shutdown finishes (or a second signal cuts it).
    pub fn run(mut self) -> Result<()> {
        loop {
            let timeout = if self.ready.is_empty() {
                self.deadline
                    .map(|d| d.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            let n = self
                .epoll
                .wait(&mut self.events, timeout)
                .sys("epoll_wait")?;
            for i in 0..n {
                let ev = self.events[i];
                self.dispatch(&ev);
            }
            self.run_ready();
            if self.stop_now {
                log::warn!(
                    "second signal: exiting with {} connections open",
                    self.conns.len()
                );
                return Ok(());
            }
            if let Some(deadline) = self.deadline {
                if self.conns.is_empty() {
                    log::info!("shutdown complete");
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    log::warn!("shutdown timeout: closing {} connections", self.conns.len());
                    return Ok(());
                }
            }
        }
    }

    /// Routes one event to its source.
    fn dispatch(&mut self, ev: &Event) {
        let token = epoll::token(ev);
        if token & FIXED != 0 {
            return self.fixed(token);
        }
        let key = (token & 0xffff_ffff) as usize;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if conn_token(key, c.gen) != token {
            return; // an event for a connection that has since been replaced
        }
        if epoll::is_readable(ev) || epoll::is_read_closed(ev) || epoll::is_error(ev) {
            c.readable = true;
        }
        if epoll::is_read_closed(ev) {
            c.peer_fin = true;
        }
        if epoll::is_writable(ev) || epoll::is_error(ev) {
            c.writable = true;
        }
        self.service(key);
    }

    fn fixed(&mut self, token: u64) {
        let index = (token & 0xffff_ffff) as usize;
        match token & !FIXED & !0xffff_ffff {
            0 => self.on_signals(),
            LISTENER_KIND => self.accept_all(index),
            UDP_KIND => self.serve_udp(index),
            _ => {}
        }
    }

    /// Gives each source on the ready list one more turn. Sources that still
    /// have work go to the back, for the next round.
    fn run_ready(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(token) = self.ready.pop_front() else {
                break;
            };
            if token & FIXED != 0 {
                self.fixed(token);
                continue;
            }
            let key = (token & 0xffff_ffff) as usize;
            match self.conns.get_mut(key) {
                Some(c) if conn_token(key, c.gen) == token => {
                    c.queued = false;
                    self.service(key);
                }
                _ => {}
            }
        }
    }

    /// One budgeted turn for a connection: flush what is owed, read and echo,
    /// then close it, requeue it, or leave it for the next edge.
    fn service(&mut self, key: usize) {
        let max_output = self.cfg.max_output;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let turn = c.flush().and_then(|()| match c.phase {
            Phase::Open => echo::serve_stream(c, &mut self.buf, max_output),
            Phase::Closing => Ok(false),
        });
        let more = match turn {
            Ok(more) => more,
            Err(e) => {
                log::debug!("connection {key}: {e}");
                return self.close(key);
            }
        };
        if c.read_closed {
            c.phase = Phase::Closing;
        }
        if c.is_done() {
            self.finish(key);
        } else if more && !c.queued {
            c.queued = true;
            self.ready.push_back(conn_token(key, c.gen));
        }
    }

    /// Ends a connection that owes nothing: FIN after the last byte, then close.
    fn finish(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key) {
            let _ = socket::shutdown_write(c.fd.as_fd());
            if !c.read_closed {
                // Unread bytes at close(2) turn the FIN into an RST, which can
                // destroy data still in flight: drain them first.
                while let Ok(n) = socket::recv(c.fd.as_fd(), &mut self.buf) {
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        self.close(key);
    }

    /// Closes a connection: `EPOLL_CTL_DEL`, then drop (which closes the fd).
    fn close(&mut self, key: usize) {
        if let Some(c) = self.conns.try_remove(key) {
            let _ = self.epoll.delete(c.fd.as_fd());
        }
    }

    /// Accepts pending connections until `EAGAIN` or the budget runs out.
    fn accept_all(&mut self, index: usize) {
        for _ in 0..ACCEPT_BUDGET {
            let Some(l) = self.listeners.get(index) else {
                return;
            };
            match socket::accept(l.fd.as_fd()) {
                Ok((fd, peer)) => {
                    if self.conns.len() >= self.cfg.max_clients {
                        log::debug!("{peer:?}: over --max-clients, closed");
                        continue; // dropping `fd` closes it
                    }
                    if let Err(e) = self.register(fd) {
                        log::warn!("register {peer:?}: {e}");
                    }
                }
                Err(e) if would_block(&e) => return,
                Err(e) if is_fd_exhaustion(&e) => {
                    let fd = l.fd.as_fd();
                    // Accept and close inside the closure, so the slot is
                    // free again when the spare is reopened.
                    match self
                        .reserve
                        .with_freed_slot(|| socket::accept(fd).map(drop))
                    {
                        Ok(()) => log::warn!("accept: {e}: dropped one pending connection"),
                        Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                        // accept4 fails with EMFILE before it looks at the
                        // queue: at the limit with nothing pending, stop
                        // until the next connection brings a new edge.
                        Err(_) => return,
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                Err(e) => {
                    log::error!("accept on tcp://{}: {e}", l.addr);
                    return;
                }
            }
        }
        self.ready.push_back(FIXED | LISTENER_KIND | index as u64);
    }

    /// Adds an accepted socket to the slab and the epoll set.
    fn register(&mut self, fd: OwnedFd) -> io::Result<()> {
        socket::set_nodelay(fd.as_fd())?;
        self.next_gen = self.next_gen.wrapping_add(1) & 0x7fff_ffff;
        let gen = self.next_gen;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.epoll
            .add(fd.as_fd(), epoll::interest_all(), conn_token(key, gen))?;
        entry.insert(Conn::new(fd, gen));
        Ok(())
    }

    fn serve_udp(&mut self, index: usize) {
        let Some(u) = self.udp.get(index) else {
            return;
        };
        match echo::serve_datagrams(u.fd.as_fd(), &mut self.buf) {
            Ok(true) => self.ready.push_back(FIXED | UDP_KIND | index as u64),
            Ok(false) => {}
            Err(e) => log::warn!("udp recvfrom: {e}"),
        }
    }

    fn on_signals(&mut self) {
        loop {
            match self.signals.pending() {
                Ok(Some(Signal::SIGINT | Signal::SIGTERM)) => self.begin_shutdown(),
                Ok(Some(Signal::SIGUSR1)) => log::info!("stats: clients={}", self.conns.len()),
                Ok(Some(s)) => log::info!("{s}: nothing to do"),
                Ok(None) => return,
                Err(e) => {
                    log::error!("read signalfd: {e}");
                    return;
                }
            }
        }
    }

    /// Stops accepting, and lets every connection finish what it owes
    /// within `--shutdown-timeout`. A second call means exit now.
    fn begin_shutdown(&mut self) {
        if self.deadline.is_some() {
            self.stop_now = true;
            return;
        }
        log::info!("shutting down: {} connections to flush", self.conns.len());
        self.deadline = Some(Instant::now() + self.cfg.shutdown_timeout);
        for l in self.listeners.drain(..) {
            let _ = self.epoll.delete(l.fd.as_fd());
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(c) = self.conns.get_mut(key) {
                c.phase = Phase::Closing;
            }
            self.service(key);
        }
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
