//! One load-generator connection on the wire, plain or TLS: the socket, its
//! transport, and the edge-triggered readiness remembered between events.
//!
//! Set-up ([`Dialer::dial`]): `socket` → `connect` (blocking; loopback
//! answers at once) → `fcntl(O_NONBLOCK)` → `setsockopt(TCP_NODELAY)`, and
//! with `--tls` a rustls client session whose ClientHello goes out at once.
//! Every TLS connection of a run shares one `Arc<ClientConfig>`, so a
//! session ticket one connection received can resume another.
//!
//! Reading is [`Transport::read`], the server's own pump; sending takes what
//! the socket (or rustls, which encrypts straight into its record buffer)
//! accepts and leaves the rest with the caller, so nothing is copied into a
//! queue and nothing is allocated per message by this code.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::ClientConfig;

use super::{BenchArgs, BenchMode};
use crate::error::{Context, Error, Result};
use crate::queue::OutQueue;
use crate::sys::epoll::{self, Event};
use crate::sys::{socket, would_block};
use crate::transport::{client, Input, TlsSession, Transport};

/// How to open a connection: where, and with which TLS client config.
#[derive(Clone)]
pub struct Dialer {
    pub addr: SocketAddr,
    /// The shared client config and the name to verify, with `--tls`.
    pub tls: Option<(Arc<ClientConfig>, String)>,
}

impl Dialer {
    /// A plain dialer.
    pub fn plain(addr: SocketAddr) -> Dialer {
        Dialer { addr, tls: None }
    }

    /// Opens one connection; with TLS, its ClientHello is sent.
    pub fn dial(&self) -> Result<Link> {
        let addr = self.addr;
        let fd = socket::connect_tcp(addr).map_err(|source| Error::Connect { addr, source })?;
        socket::set_nonblocking(fd.as_fd()).sys("fcntl(O_NONBLOCK)")?;
        self.wrap(fd)
    }

    /// Makes a [`Link`] of a connected nonblocking socket (one that
    /// [`socket::connect_tcp_nonblocking`] opened, once it is writable):
    /// `setsockopt(TCP_NODELAY)`, and with TLS a session whose ClientHello
    /// goes out at once.
    pub fn wrap(&self, fd: OwnedFd) -> Result<Link> {
        let addr = self.addr;
        socket::set_nodelay(fd.as_fd()).sys("setsockopt(TCP_NODELAY)")?;
        let transport = match &self.tls {
            None => Transport::Plain,
            Some((config, name)) => {
                Transport::Tls(Box::new(client::connect(config.clone(), name)?))
            }
        };
        let mut link = Link {
            fd,
            transport,
            readable: true,
            writable: true,
            peer_fin: false,
        };
        if let Transport::Tls(t) = &mut link.transport {
            t.flush(link.fd.as_fd(), &mut OutQueue::default(), false)
                .map_err(|source| Error::Peer {
                    call: "send",
                    addr,
                    source,
                })?;
        }
        Ok(link)
    }
}

/// How to open connections as the flags say: plain, or TLS with one client
/// config for the whole run. Resumption is off only for full handshakes in
/// `handshake` mode.
pub fn dialer(args: &BenchArgs) -> Result<Dialer> {
    if !args.tls.tls {
        return Ok(Dialer::plain(args.addr));
    }
    let mut config = crate::transport::client::config_with(args.tls.roots()?, None)?;
    if args.mode == BenchMode::Handshake && !args.resume {
        let mut full = (*config).clone();
        full.resumption = Resumption::disabled();
        config = Arc::new(full);
    }
    let name = args.tls.name_for(args.addr);
    Ok(Dialer {
        addr: args.addr,
        tls: Some((config, name)),
    })
}

/// A connected socket and its transport.
pub struct Link {
    pub fd: OwnedFd,
    pub transport: Transport,
    pub readable: bool,
    /// The send buffer had room at the last write.
    pub writable: bool,
    pub peer_fin: bool,
}

impl Link {
    /// Remembers what an edge-triggered event reported.
    pub fn note(&mut self, ev: &Event) {
        if epoll::is_readable(ev) || epoll::is_read_closed(ev) || epoll::is_error(ev) {
            self.readable = true;
        }
        if epoll::is_read_closed(ev) || epoll::is_error(ev) {
            self.peer_fin = true;
        }
        if epoll::is_writable(ev) || epoll::is_error(ev) {
            self.writable = true;
        }
    }

    /// The TLS session, if this is a TLS link.
    pub fn tls(&self) -> Option<&TlsSession> {
        match &self.transport {
            Transport::Plain => None,
            Transport::Tls(t) => Some(t),
        }
    }

    /// True while a TLS handshake is going on.
    pub fn handshaking(&self) -> bool {
        self.transport.handshaking()
    }

    /// One read of what the server sent (plaintext, decrypted for TLS).
    /// Call again while it returns [`Input::Data`].
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<Input> {
        let fd = self.fd.as_fd();
        self.transport
            .read(fd, buf, &mut self.readable, self.peer_fin)
    }

    /// The next bytes the server sent, while there may be any: a short read
    /// empties the socket (the next arrival is a new edge), and TLS may hold
    /// decrypted bytes epoll cannot see. [`Input::Nothing`]: drained for now.
    #[inline]
    pub fn next_input(&mut self, buf: &mut [u8]) -> io::Result<Input> {
        if !self.readable && !self.transport.pending() {
            return Ok(Input::Nothing);
        }
        self.recv(buf)
    }

    /// Sends what the socket takes of `data` (TLS: first whatever records
    /// are owed) and returns how many bytes of `data` were taken; clears
    /// `writable` once the socket is full. Call again on `EPOLLOUT` even
    /// with nothing new: TLS may still owe records.
    #[inline]
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.writable {
            return Ok(0);
        }
        match &mut self.transport {
            Transport::Tls(t) => t.send_some(self.fd.as_fd(), data, &mut self.writable),
            Transport::Plain if data.is_empty() => Ok(0),
            Transport::Plain => match socket::send(self.fd.as_fd(), data) {
                Ok(n) => {
                    if n < data.len() {
                        self.writable = false;
                    }
                    Ok(n)
                }
                Err(e) if would_block(&e) => {
                    self.writable = false;
                    Ok(0)
                }
                Err(e) => Err(e),
            },
        }
    }

    /// TLS: queues `close_notify` and sends it (best effort). Plain: nothing.
    pub fn close_notify(&mut self) {
        if let Transport::Tls(t) = &mut self.transport {
            let _ = t.flush(self.fd.as_fd(), &mut OutQueue::default(), true);
        }
    }
}
