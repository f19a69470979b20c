//! Many line-based client connections in one epoll set, for the chat and
//! idle modes: connecting them (draining what the server sends meanwhile),
//! reading whole lines ([`LineConn`]), and noticing each one's `HELLO`.
//!
//! Set-up, per connection: [`Dialer::dial`] (`socket` → `connect` →
//! `O_NONBLOCK` → `TCP_NODELAY`, and the ClientHello with `--tls`) →
//! `epoll_ctl(ADD, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)`. Every
//! connection is read until `EAGAIN` whenever it has data (which also
//! drives its TLS handshake), so no kernel buffer fills and the server
//! never sees a slow consumer. A connection that owes the server a
//! greeting (`--proto redis`, `nats`: its `SUBSCRIBE`, `CONNECT` ...) sends
//! it once connected, and its readiness counts as its `HELLO`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

pub use super::lineconn::LineConn;
use super::link::{Dialer, Link};
use super::progress::Progress;
use crate::error::{Context, Error, Result};
use crate::sys::epoll::{self, Epoll, Event};

/// The shared receive buffer.
const RECV_BUF: usize = 64 * 1024;
/// Connections opened between two passes that drain what has arrived.
const DRAIN_EVERY: usize = 32;
/// Set-up fails if no connection makes progress for this long.
pub const STALL: Duration = Duration::from_secs(10);

/// Every connection, indexed by epoll token; `None` once one has failed.
pub struct Pool {
    epoll: Epoll,
    events: Vec<Event>,
    pub conns: Vec<Option<LineConn>>,
    buf: Box<[u8]>,
    pub addr: SocketAddr,
    /// Connections lost (reset, closed by the server, a bad line).
    pub failed: u64,
    /// What went wrong first, for the report.
    pub first_error: Option<String>,
}

impl Pool {
    /// Opens `n` connections with `dialer`, draining what arrives as it
    /// goes, with a progress line on a terminal.
    pub fn connect(dialer: &Dialer, n: usize) -> Result<Pool> {
        Pool::connect_with(dialer, n, |_, link| LineConn::new(link))
    }

    /// The same, each connection made of its link by `conn(i, link)`, and
    /// what it owes the server sent at once.
    pub fn connect_with(
        dialer: &Dialer,
        n: usize,
        mut conn: impl FnMut(usize, Link) -> LineConn,
    ) -> Result<Pool> {
        let mut progress = Progress::new("connected");
        let mut pool = Pool {
            epoll: Epoll::new().sys("epoll_create1")?,
            events: Epoll::events(n.clamp(1, 1024)),
            conns: Vec::with_capacity(n),
            buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            addr: dialer.addr,
            failed: 0,
            first_error: None,
        };
        for i in 0..n {
            let link = dialer.dial()?;
            pool.epoll
                .add(link.fd.as_fd(), epoll::interest_all(), i as u64)
                .sys("epoll_ctl")?;
            pool.conns.push(Some(conn(i, link)));
            pool.flush(i);
            if i % DRAIN_EVERY == DRAIN_EVERY - 1 {
                pool.drain(Duration::ZERO)?;
                progress.tick(Instant::now(), i as u64 + 1);
            }
        }
        Ok(pool)
    }

    /// Connections still open (not failed).
    pub fn live(&self) -> usize {
        self.conns.iter().flatten().count()
    }

    /// Connections still in their TLS handshake.
    pub fn handshaking(&self) -> usize {
        let conns = self.conns.iter().flatten();
        conns.filter(|c| c.link.handshaking()).count()
    }

    /// Connections that have had their `HELLO`.
    pub fn hellos(&self) -> usize {
        self.conns.iter().flatten().filter(|c| c.hello).count()
    }

    /// Waits up to `timeout` for events, notes each in its connection, and
    /// returns how many there are: [`Pool::conn_of`] names them.
    pub fn wait(&mut self, timeout: Duration) -> Result<usize> {
        let n = self
            .epoll
            .wait(&mut self.events, Some(timeout))
            .sys("epoll_wait")?;
        for k in 0..n {
            let ev = self.events[k];
            if let Some(Some(c)) = self.conns.get_mut(epoll::token(&ev) as usize) {
                c.link.note(&ev);
            }
        }
        Ok(n)
    }

    /// The connection event `k` of the last [`Pool::wait`] is about.
    pub fn conn_of(&self, k: usize) -> usize {
        epoll::token(&self.events[k]) as usize
    }

    /// Reads connection `i`, every line to `f`. A connection that fails or
    /// is closed is dropped and counted; returns false then.
    pub fn read(&mut self, i: usize, mut f: impl FnMut(&[u8])) -> bool {
        let Some(Some(c)) = self.conns.get_mut(i) else {
            return false;
        };
        let read = c.read_lines(&mut self.buf, &mut f);
        // TLS: a handshake flight the socket did not take at once.
        let read = match read {
            Ok(true) if c.link.transport.wants_write() => c.link.send(&[]).map(|_| true),
            other => other,
        };
        let source = match read {
            Ok(true) => return true,
            Ok(false) => io::ErrorKind::UnexpectedEof.into(),
            Err(e) => e,
        };
        let err = Error::Peer {
            call: "recv",
            addr: self.addr,
            source,
        };
        self.fail(i, &format!("connection {i}: {err}"));
        false
    }

    /// Sends what connection `i` owes the server ([`LineConn::owed`]), as
    /// far as the socket takes it. A connection that fails is dropped and
    /// counted.
    pub fn flush(&mut self, i: usize) {
        let Some(Some(c)) = self.conns.get_mut(i) else {
            return;
        };
        if let Err(source) = c.flush_owed() {
            let err = Error::Peer {
                call: "send",
                addr: self.addr,
                source,
            };
            self.fail(i, &format!("connection {i}: {err}"));
        }
    }

    /// One wait of at most `timeout`, reading (and ignoring) every line,
    /// and sending what each connection owes. Returns how many connections
    /// had an event.
    pub fn drain(&mut self, timeout: Duration) -> Result<usize> {
        let n = self.wait(timeout)?;
        for k in 0..n {
            let i = self.conn_of(k);
            if self.read(i, |_| {}) {
                self.flush(i);
            }
        }
        Ok(n)
    }

    /// Drains until every connection has had its `HELLO`; fails if none
    /// arrives for [`STALL`].
    pub fn await_hellos(&mut self) -> Result<()> {
        let (mut last, mut since) = (0, Instant::now());
        loop {
            let have = self.hellos();
            if have == self.conns.len() || self.failed > 0 {
                return Ok(());
            }
            if have != last {
                (last, since) = (have, Instant::now());
            } else if since.elapsed() >= STALL {
                let sign = self.conns.iter().flatten().next().map(|c| c.proto());
                return Err(Error::Check(format!(
                    "{} of {} connections had no {} from {} within {} s",
                    self.conns.len() - have,
                    self.conns.len(),
                    sign.unwrap_or_default().ready_sign(),
                    self.addr,
                    STALL.as_secs()
                )));
            }
            self.drain(Duration::from_millis(100))?;
        }
    }

    /// Closes one connection (`EPOLL_CTL_DEL`, then close) and counts it.
    pub fn fail(&mut self, i: usize, why: &str) {
        if let Some(c) = self.conns.get_mut(i).and_then(Option::take) {
            let _ = self.epoll.delete(c.link.fd.as_fd());
            self.failed += 1;
            self.first_error.get_or_insert_with(|| why.to_owned());
        }
    }
}
