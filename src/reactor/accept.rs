//! Listeners and `accept4`: open every listener in C order, accept until
//! `EAGAIN` (or the per-turn budget), refuse clients over `--max-clients`,
//! and survive `EMFILE` with the reserve descriptor.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use super::{conn_token, Listener, Reactor, FIXED, GEN_MASK, LISTENER_KIND, UDP_KIND};
use crate::config::Config;
use crate::conn::Conn;
use crate::error::{Context, Error, Result};
use crate::sys::epoll::{self, Epoll};
use crate::sys::{limits, socket, would_block};
use crate::transport::Transport;

/// Connections accepted per listener per turn.
const ACCEPT_BUDGET: usize = 256;
/// Descriptors kept free for everything that is not a client.
const SPARE_FDS: u64 = 32;
/// What a chat client over `--max-clients` is told before the close.
const SERVER_FULL: &[u8] = b"ERR server-full\n";

/// Raises `RLIMIT_NOFILE`, fits `--max-clients` under it, and opens every
/// TCP and UDP listener, registered with `epoll`.
pub(super) fn open_listeners(
    epoll: &Epoll,
    mut cfg: Config,
) -> Result<(Config, Vec<Listener>, Vec<OwnedFd>)> {
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
    let mut listeners = Vec::new();
    let plain = cfg.tcp.iter().map(|&a| (a, false));
    let tls = cfg.tls.iter().map(|&a| (a, true));
    for (i, (want, tls)) in plain.chain(tls).enumerate() {
        let scheme = if tls { "tls" } else { "tcp" };
        let err = |source| Error::Listen {
            scheme,
            addr: want,
            source,
        };
        let fd = socket::listen_tcp(want, cfg.backlog, cfg.reuse_port).map_err(err)?;
        let addr = socket::local_addr(fd.as_fd()).map_err(err)?;
        let token = FIXED | LISTENER_KIND | i as u64;
        epoll
            .add(fd.as_fd(), epoll::interest_read(), token)
            .sys("epoll_ctl")?;
        log::info!("listening on {scheme}://{addr}");
        listeners.push(Listener { fd, addr, tls });
    }
    let mut udp = Vec::new();
    for (i, &want) in cfg.udp.iter().enumerate() {
        let err = |source| Error::Listen {
            scheme: "udp",
            addr: want,
            source,
        };
        let fd = socket::bind_udp(want).map_err(err)?;
        let addr = socket::local_addr(fd.as_fd()).map_err(err)?;
        let token = FIXED | UDP_KIND | i as u64;
        epoll
            .add(fd.as_fd(), epoll::interest_read(), token)
            .sys("epoll_ctl")?;
        log::info!("listening on udp://{addr}");
        udp.push(fd);
    }
    Ok((cfg, listeners, udp))
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
                    if self.conns.len() >= self.cfg.max_clients {
                        log::debug!("{peer:?}: over --max-clients, closed");
                        self.refuse(fd, tls);
                    } else if let Err(e) = self.register(fd, tls) {
                        log::warn!("register {peer:?}: {e}");
                    }
                }
                Err(e) if would_block(&e) => return,
                Err(e) if is_fd_exhaustion(&e) => {
                    log::warn!("accept: {e}: dropping one pending connection");
                    let fd = l.fd.as_fd();
                    drop(self.reserve.with_freed_slot(|| socket::accept(fd)));
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

    /// Closes a connection over `--max-clients`; plain chat clients hear
    /// why. Echo never injects bytes of its own, and a TLS client could not
    /// read plaintext.
    fn refuse(&mut self, fd: OwnedFd, tls: bool) {
        if self.chat.is_some() && !tls {
            let _ = socket::send(fd.as_fd(), SERVER_FULL);
            let _ = socket::shutdown_write(fd.as_fd());
        }
    }

    /// Adds an accepted socket to the slab and the epoll set. A plain chat
    /// client gets its `HELLO` now; a TLS one once its handshake is done,
    /// which must be within `--handshake-timeout`.
    fn register(&mut self, fd: OwnedFd, tls: bool) -> io::Result<()> {
        socket::set_nodelay(fd.as_fd())?;
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
            return Ok(());
        }
        if let Some(chat) = self.chat.as_deref_mut() {
            chat.open(key, self.now, &mut deliver!(self));
            self.arm(key);
        }
        Ok(())
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
