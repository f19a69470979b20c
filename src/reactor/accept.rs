//! Listeners and `accept4`: open every listener in C order, accept until
//! `EAGAIN` (or the per-turn budget), refuse clients over `--max-clients`
//! or `--max-per-ip`,
//! and survive `EMFILE` with the reserve descriptor.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use super::sources::Admit;
use super::{conn_token, Listener, Reactor, FIXED, GEN_MASK, LISTENER_KIND, UDP_KIND};
use crate::config::Config;
use crate::conn::Conn;
use crate::error::{Context, Error, Result};
use crate::sys::epoll::{self, Epoll};
use crate::sys::{limits, socket, would_block};
use crate::transport::Transport;

/// Connections accepted per listener per turn (a new chat client's `JOIN`
/// waits for the turn's block, so accepting is cheap).
const ACCEPT_BUDGET: usize = 256;
/// Descriptors kept free for everything that is not a client.
const SPARE_FDS: u64 = 32;
/// What a chat client over `--max-clients` is told before the close.
const SERVER_FULL: &[u8] = b"ERR server-full\n";
/// What a TLS client over a limit is told: one plaintext alert record
/// (content type 21, TLS 1.2 record version, length 2: fatal,
/// `internal_error`), which any TLS client can read before a handshake.
const TLS_REFUSED: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50];

/// Raises `RLIMIT_NOFILE`, fits `--max-clients` under it, and opens every
/// TCP listener (`socket` → `setsockopt` → `bind` → `listen`) and UDP
/// socket (`socket` → `bind`), before any epoll instance exists, in the
/// order the tutorial teaches.
pub(super) fn open_listeners(mut cfg: Config) -> Result<(Config, Vec<Listener>, Vec<Listener>)> {
    let nofile = limits::raise_nofile().sys("setrlimit(RLIMIT_NOFILE)")?;
    let fixed = SPARE_FDS + (cfg.tcp.len() + cfg.tls.len() + cfg.udp.len()) as u64;
    let fits = nofile.saturating_sub(fixed).max(1) as usize;
    if cfg.max_clients > fits {
        log::warn!(
            "--max-clients {} does not fit RLIMIT_NOFILE {nofile}: lowered to {fits}",
            cfg.max_clients
        );
        cfg.max_clients = fits;
    }
    let plain = cfg.tcp.iter().map(|&want| ("tcp", want));
    let tls = cfg.tls.iter().map(|&want| ("tls", want));
    let tcp = plain
        .chain(tls)
        .map(|(scheme, want)| open(scheme, want, &cfg))
        .collect::<Result<_>>()?;
    let udp = cfg
        .udp
        .iter()
        .map(|&want| open("udp", want, &cfg))
        .collect::<Result<_>>()?;
    Ok((cfg, tcp, udp))
}

fn open(scheme: &'static str, want: SocketAddr, cfg: &Config) -> Result<Listener> {
    let err = |source| Error::Listen {
        scheme,
        addr: want,
        source,
    };
    let fd = match scheme {
        "udp" => socket::bind_udp(want),
        _ => socket::listen_tcp(want, cfg.backlog, cfg.reuse_port),
    }
    .map_err(err)?;
    let addr = socket::local_addr(fd.as_fd()).map_err(err)?;
    Ok(Listener {
        fd,
        addr,
        scheme,
        tls: scheme == "tls",
    })
}

/// Registers every listener with `epoll` (`epoll_ctl(ADD)`), then logs
/// `listening on SCHEME://ADDR` for each: a line on stderr means serving.
pub(super) fn register_listeners(epoll: &Epoll, tcp: &[Listener], udp: &[Listener]) -> Result<()> {
    let tokens = tcp
        .iter()
        .enumerate()
        .map(|(i, l)| (l, FIXED | LISTENER_KIND | i as u64));
    let tokens = tokens.chain(
        udp.iter()
            .enumerate()
            .map(|(i, l)| (l, FIXED | UDP_KIND | i as u64)),
    );
    for (l, token) in tokens.clone() {
        epoll
            .add(l.fd.as_fd(), epoll::interest_read(), token)
            .sys("epoll_ctl")?;
    }
    for (l, _) in tokens {
        log::info!("listening on {}://{}", l.scheme, l.addr);
    }
    Ok(())
}

impl Reactor {
    /// Accepts pending connections until `EAGAIN` or the budget runs out.
    pub(super) fn accept_all(&mut self, index: usize) {
        for _ in 0..ACCEPT_BUDGET {
            let Some(l) = self.listeners.get(index) else {
                return;
            };
            match socket::accept(l.fd.as_fd()) {
                Ok((fd, peer)) => {
                    let tls = l.tls;
                    let admit = self.sources.check(peer, self.now);
                    if self.conns.len() >= self.cfg.max_clients {
                        log::debug!("{peer:?}: over --max-clients, closed");
                        self.refuse(fd, tls);
                    } else if admit == Admit::Full {
                        log::debug!("{peer:?}: over --max-per-ip or --max-conn-rate, closed");
                        self.refuse(fd, tls);
                    } else {
                        match self.register(fd, tls) {
                            Ok(key) => {
                                if let Admit::Counted(ip) = admit {
                                    self.sources.add(key, ip);
                                }
                            }
                            Err(e) => log::warn!("register {peer:?}: {e}"),
                        }
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
                        Ok(()) => {
                            if let Some(more) = self.emfile_log.allow(self.now) {
                                log::warn!(
                                    "accept: {e}: dropped a pending connection \
                                     ({more} more since the last such line)"
                                );
                            }
                        }
                        Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                        // accept4 fails with EMFILE before it looks at the
                        // queue: at the limit with nothing pending, stop
                        // until the next connection brings a new edge.
                        Err(_) => return,
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                Err(e) => {
                    log::error!("accept on {}: {e}", l.addr);
                    return;
                }
            }
        }
        self.ready.push_back(FIXED | LISTENER_KIND | index as u64);
    }

    /// Closes a connection over `--max-clients` or `--max-per-ip`, saying
    /// why where the client can read it: plain chat clients get
    /// `ERR server-full`, TLS clients a fatal `internal_error` alert (there
    /// is no session to carry a line, and a slot for a handshake is what
    /// the client cannot have). Echo never injects bytes of its own.
    fn refuse(&mut self, fd: OwnedFd, tls: bool) {
        let why = match (tls, self.chat.is_some()) {
            (true, _) => TLS_REFUSED,
            (false, true) => SERVER_FULL,
            (false, false) => return,
        };
        let _ = socket::send(fd.as_fd(), why);
        let _ = socket::shutdown_write(fd.as_fd());
    }

    /// Adds an accepted socket to the slab and the epoll set. A plain chat
    /// client gets its `HELLO` now; a TLS one once its handshake is done,
    /// which must be within `--handshake-timeout`.
    fn register(&mut self, fd: OwnedFd, tls: bool) -> io::Result<usize> {
        socket::set_nodelay(fd.as_fd())?;
        if let Some(bytes) = self.cfg.sndbuf {
            socket::set_send_buffer(fd.as_fd(), bytes)?;
        }
        let transport = match (tls, &self.tls) {
            (false, _) => Transport::Plain,
            (true, Some(t)) => Transport::Tls(Box::new(t.accept().map_err(io::Error::other)?)),
            (true, None) => return Err(io::Error::other("no TLS configuration")),
        };
        self.next_gen = self.next_gen.wrapping_add(1) & GEN_MASK;
        let gen = self.next_gen;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.epoll
            .add(fd.as_fd(), epoll::interest_all(), conn_token(key, gen))?;
        entry.insert(Conn::new(fd, gen, transport));
        if tls {
            self.arm_handshake(key);
            return Ok(key);
        }
        if let Some(chat) = self.chat.as_deref_mut() {
            chat.open(key, self.now, &mut deliver!(self));
            self.arm(key);
        }
        Ok(key)
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
