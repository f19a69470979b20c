//! The load itself: every connection in one epoll set, driven by one
//! thread, so the generator costs about what one client costs the server
//! (an `epoll_wait` share, a `recv` and a `send` per message) and can keep
//! a single-threaded server busy from one core.
//!
//! Set-up, per connection: [`Dialer::dial`] (`socket` → `connect` →
//! `O_NONBLOCK` → `TCP_NODELAY`, and the ClientHello with `--tls`) →
//! `epoll_ctl(ADD, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)`. The clock
//! starts only once all are connected and every TLS handshake is done.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::link::Dialer;
use super::progress::Progress;
use super::stream::{Stream, Tally};
use crate::error::{Context, Error, Result};
use crate::sys::epoll::{self, Epoll, Event};

/// A run ends with an error if no message completes for this long.
const STALL: Duration = Duration::from_secs(10);
/// The shared receive buffer.
const RECV_BUF: usize = 64 * 1024;

/// Every connection and what they have achieved.
pub struct Load {
    epoll: Epoll,
    events: Vec<Event>,
    /// Indexed by epoll token; `None` once a connection has failed.
    streams: Vec<Option<Stream>>,
    live: usize,
    buf: Box<[u8]>,
    addr: SocketAddr,
    /// Messages that may still be started (`u64::MAX` without `--count`).
    budget: u64,
    /// Stop once this many messages are echoed (`--count`).
    target: Option<u64>,
    pub tally: Tally,
    /// Connections lost (reset, closed early, stalled, bad echo length).
    pub failed: u64,
    /// What went wrong first, for the report.
    pub first_error: Option<String>,
    /// An error that ends the run at once (a chat server's greeting).
    abort: Option<Error>,
}

impl Load {
    /// Opens `conns` connections with `dialer` and finishes their TLS
    /// handshakes. With `count`, no more than `count` messages are ever
    /// sent, and [`Load::run`] stops when all of them are echoed.
    pub fn connect(
        dialer: &Dialer,
        conns: usize,
        size: usize,
        depth: usize,
        count: Option<u64>,
    ) -> Result<Load> {
        let epoll = Epoll::new().sys("epoll_create1")?;
        let mut streams = Vec::with_capacity(conns);
        for i in 0..conns {
            let link = dialer.dial()?;
            epoll
                .add(link.fd.as_fd(), epoll::interest_all(), i as u64)
                .sys("epoll_ctl")?;
            streams.push(Some(Stream::new(link, i, size, depth)));
        }
        let mut load = Load {
            epoll,
            events: Epoll::events(conns.clamp(1, 1024)),
            streams,
            live: conns,
            buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            addr: dialer.addr,
            budget: count.unwrap_or(u64::MAX),
            target: count,
            tally: Tally::default(),
            failed: 0,
            first_error: None,
            abort: None,
        };
        load.handshake()?;
        Ok(load)
    }

    /// Drives every TLS handshake to its end, sending no message; fails if
    /// none finishes for [`STALL`] (plain connections have none).
    fn handshake(&mut self) -> Result<()> {
        let busy = |l: &Load| {
            l.streams
                .iter()
                .flatten()
                .filter(|s| s.link.handshaking())
                .count()
        };
        let (mut left, mut since) = (busy(self), Instant::now());
        while left > 0 {
            if since.elapsed() >= STALL {
                return Err(Error::Check(format!(
                    "{left} TLS handshakes with {} unfinished after {} s",
                    self.addr,
                    STALL.as_secs()
                )));
            }
            let n = self
                .epoll
                .wait(&mut self.events, Some(Duration::from_millis(100)))
                .sys("epoll_wait")?;
            for k in 0..n {
                let ev = self.events[k];
                let i = epoll::token(&ev) as usize;
                let Some(Some(s)) = self.streams.get_mut(i) else {
                    continue;
                };
                s.link.note(&ev);
                let step = s.recv_some(&mut self.buf, Instant::now(), &mut self.tally);
                let step = step.and_then(|open| match open {
                    true => s.link.send(&[]).map(drop),
                    false => Err(io::ErrorKind::UnexpectedEof.into()),
                });
                if let Err(source) = step {
                    if let Some(stop) = super::greeting::stop(&source, self.addr) {
                        return Err(stop);
                    }
                    let call = "TLS handshake";
                    let err = Error::Peer {
                        call,
                        addr: self.addr,
                        source,
                    };
                    self.fail(i, &format!("connection {i}: {err}"));
                }
            }
            let now_left = busy(self);
            if now_left < left {
                (left, since) = (now_left, Instant::now());
            }
            if self.live == 0 {
                return Err(Error::Check(format!(
                    "every connection failed its TLS handshake: {}",
                    self.first_error.as_deref().unwrap_or("?")
                )));
            }
        }
        Ok(())
    }

    /// Drives the load until `until` (or, with `--count`, until every
    /// message is echoed), or until every connection has failed.
    pub fn run(&mut self, until: Option<Instant>) -> Result<()> {
        for i in 0..self.streams.len() {
            self.service(i, None); // fill every window now, not at the first event
        }
        let mut last_msgs = self.tally.msgs;
        let mut last_progress = Instant::now();
        let mut shown = Progress::new("msgs");
        loop {
            // A chat server's greeting (found by any read, the first ones
            // included) ends the run at once.
            if let Some(stop) = self.abort.take() {
                return Err(stop);
            }
            if self.target.is_some_and(|t| self.tally.msgs >= t) || self.live == 0 {
                return Ok(());
            }
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) {
                return Ok(());
            }
            if self.tally.msgs != last_msgs {
                (last_msgs, last_progress) = (self.tally.msgs, now);
            }
            shown.tick(now, self.tally.msgs);
            let stall_at = last_progress + STALL;
            if now >= stall_at {
                self.fail_all("no echo for 10 s");
                return Ok(());
            }
            let wake = until.map_or(stall_at, |u| u.min(stall_at));
            let n = self
                .epoll
                .wait(&mut self.events, Some(wake - now))
                .sys("epoll_wait")?;
            for k in 0..n {
                let ev = self.events[k];
                self.service(epoll::token(&ev) as usize, Some(&ev));
            }
        }
    }

    /// One turn for a connection: read and check what came back, then
    /// refill its window.
    fn service(&mut self, i: usize, ev: Option<&Event>) {
        let Some(Some(s)) = self.streams.get_mut(i) else {
            return;
        };
        if let Some(ev) = ev {
            s.link.note(ev);
        }
        let now = Instant::now();
        let outcome = match s.recv_some(&mut self.buf, now, &mut self.tally) {
            Ok(true) => s.send_some(now, &mut self.budget).map_err(|e| ("send", e)),
            Ok(false) if s.in_flight() == 0 && self.budget == 0 => Ok(()),
            Ok(false) => Err(("recv", io::ErrorKind::UnexpectedEof.into())),
            Err(e) => Err(("recv", e)),
        };
        if let Err((call, source)) = outcome {
            if let Some(stop) = super::greeting::stop(&source, self.addr) {
                self.abort.get_or_insert(stop);
            }
            let err = Error::Peer {
                call,
                addr: self.addr,
                source,
            };
            self.fail(i, &format!("connection {i}: {err}"));
        }
    }

    /// Closes one connection (`EPOLL_CTL_DEL`, then close) and counts it.
    fn fail(&mut self, i: usize, why: &str) {
        if let Some(s) = self.streams.get_mut(i).and_then(Option::take) {
            let _ = self.epoll.delete(s.link.fd.as_fd());
            self.live -= 1;
            self.failed += 1;
            self.first_error.get_or_insert_with(|| why.to_owned());
        }
    }

    fn fail_all(&mut self, why: &str) {
        for i in 0..self.streams.len() {
            if self.streams[i].as_ref().is_some_and(|s| s.in_flight() > 0) {
                self.fail(i, why);
            }
        }
        self.live = 0;
    }
}

impl super::Window for Load {
    fn run_until(&mut self, until: Option<Instant>) -> Result<()> {
        self.run(until)
    }
    fn forget(&mut self) {
        self.tally.clear();
    }
}
