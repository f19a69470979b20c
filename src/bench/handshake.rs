//! `edgechat bench --mode handshake`: connections that each live for one
//! message. A connection opens ([`Dialer::dial`]), does its TLS handshake
//! (full, or resumed with `--resume`), sends one `--size` message, reads
//! its echo (checked byte for byte), sends `close_notify` and closes; its
//! slot then opens the next. `--conns` slots run at once (1: strictly one
//! after another).
//!
//! With `--resume`, one priming connection runs first so the shared client
//! config holds a ticket; each later connection spends one and is sent new
//! ones before its echo. Whether a handshake really was resumed is asked of
//! rustls (`handshake_kind`) and counted, so a server that refuses tickets
//! shows up as `resumed 0`, not as a faster figure.
//!
//! Latency is from `socket()` to the last byte of the echo: the TCP
//! handshake, the TLS handshake and one round trip. The server's CPU time
//! is given per handshake. A full handshake costs the client more than the
//! server (it verifies a certificate chain): watch the generator's share
//! of its core.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::link::{Dialer, Link};
use super::progress::Progress;
use super::report::latency_us;
use super::stats::Histogram;
use super::{dialer, measure, BenchArgs, Window};
use crate::error::{Context, Error, Result};
use crate::sys::epoll::{self, Epoll};
use crate::transport::Input;

mod summary;
pub use summary::HandshakeReport;

/// A run ends with an error if no connection completes for this long.
const STALL: Duration = Duration::from_secs(10);
const RECV_BUF: usize = 64 * 1024;

/// What the measured window has seen.
#[derive(Debug, Default)]
pub struct HsTally {
    /// Connections that completed: handshake, echo, close.
    pub handshakes: u64,
    /// Of those, handshakes rustls reports as resumed.
    pub resumed: u64,
    /// Echoes that did not match (kept across [`HsTally::clear`]).
    pub mismatches: u64,
    /// Connections that failed (kept across [`HsTally::clear`]).
    pub failed: u64,
    /// `socket()` to the end of the echo, ns.
    pub latency: Histogram,
}

impl HsTally {
    fn clear(&mut self) {
        self.handshakes = 0;
        self.resumed = 0;
        self.latency.clear();
    }
}

/// One connection in its short life.
struct Short {
    link: Link,
    started: Instant,
    /// Message bytes taken by the transport / echoed back.
    sent: usize,
    got: usize,
    bad: bool,
}

/// The slots, each holding at most one connection.
struct Handshakes<'a> {
    dialer: &'a Dialer,
    epoll: Epoll,
    events: Vec<epoll::Event>,
    slots: Vec<Option<Short>>,
    /// Bumped per connection in a slot: token = slot | gen << 32.
    gens: Vec<u32>,
    msg: Box<[u8]>,
    buf: Box<[u8]>,
    /// Connections that may still be opened (`u64::MAX` without `--count`).
    budget: u64,
    tally: HsTally,
    first_error: Option<String>,
    /// An error that ends the run at once (a chat server's greeting).
    abort: Option<Error>,
}

impl Handshakes<'_> {
    /// Opens a connection in slot `i` if the budget allows.
    fn open(&mut self, i: usize) -> Result<()> {
        if self.budget == 0 {
            return Ok(());
        }
        self.budget -= 1;
        let started = Instant::now();
        let link = self.dialer.dial()?;
        self.gens[i] = self.gens[i].wrapping_add(1);
        let token = i as u64 | u64::from(self.gens[i]) << 32;
        self.epoll
            .add(link.fd.as_fd(), epoll::interest_all(), token)
            .sys("epoll_ctl")?;
        self.slots[i] = Some(Short {
            link,
            started,
            sent: 0,
            got: 0,
            bad: false,
        });
        Ok(())
    }

    /// One turn for slot `i`: read, send the message once the handshake is
    /// done, and finish the connection once its echo is back. Returns true
    /// when the slot is free again.
    fn service(&mut self, i: usize) -> bool {
        let Some(Some(c)) = self.slots.get_mut(i) else {
            return false;
        };
        match step(c, &self.msg, &mut self.buf) {
            Ok(false) => false,
            Ok(true) => {
                let t = &mut self.tally;
                t.handshakes += 1;
                t.resumed += u64::from(c.link.tls().and_then(|s| s.resumed()) == Some(true));
                t.mismatches += u64::from(c.bad);
                t.latency.record(c.started.elapsed().as_nanos() as u64);
                c.link.close_notify();
                self.slots[i] = None; // close(2) takes it out of the epoll set
                true
            }
            Err(e) => {
                if let Some(stop) = super::greeting::stop(&e, self.dialer.addr) {
                    self.abort.get_or_insert(stop);
                }
                self.tally.failed += 1;
                let why = format!("{}: {e}", self.dialer.addr);
                self.first_error.get_or_insert(why);
                self.slots[i] = None;
                true
            }
        }
    }

    /// Runs until `until`, or until the budget is spent and every
    /// connection is done; fails if none completes for [`STALL`].
    fn run(&mut self, until: Option<Instant>) -> Result<()> {
        for i in 0..self.slots.len() {
            if self.slots[i].is_none() {
                self.open(i)?;
            }
        }
        let (mut last, mut since) = (self.tally.handshakes + self.tally.failed, Instant::now());
        let mut shown = Progress::new("handshakes");
        loop {
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) || self.slots.iter().all(Option::is_none) {
                return Ok(());
            }
            shown.tick(now, self.tally.handshakes);
            let done = self.tally.handshakes + self.tally.failed;
            if done != last {
                (last, since) = (done, now);
            } else if now >= since + STALL {
                return Err(Error::Check(format!(
                    "no connection to {} finished for {} s",
                    self.dialer.addr,
                    STALL.as_secs()
                )));
            }
            let wake = until.map_or(since + STALL, |u| u.min(since + STALL));
            let n = self
                .epoll
                .wait(&mut self.events, Some(wake.saturating_duration_since(now)))
                .sys("epoll_wait")?;
            for k in 0..n {
                let ev = self.events[k];
                let token = epoll::token(&ev);
                let i = (token & u64::from(u32::MAX)) as usize;
                let live = self.slots.get_mut(i).and_then(Option::as_mut);
                match live {
                    Some(c) if (token >> 32) as u32 == self.gens[i] => c.link.note(&ev),
                    _ => continue, // an event for a connection already closed
                }
                if self.service(i) {
                    if let Some(stop) = self.abort.take() {
                        return Err(stop);
                    }
                    self.open(i)?;
                }
            }
        }
    }
}

/// Reads what arrived, sends what is due; true once the echo is complete.
fn step(c: &mut Short, msg: &[u8], buf: &mut [u8]) -> std::io::Result<bool> {
    while c.link.readable || c.link.transport.pending() {
        match c.link.recv(buf)? {
            Input::Data(n) => {
                if c.got == 0 {
                    super::greeting::check(&buf[..n])?;
                }
                let want = &msg[c.got.min(msg.len())..];
                if n > want.len() || buf[..n] != want[..n] {
                    c.bad = true;
                }
                c.got += n;
            }
            Input::Nothing => break,
            Input::Eof => return Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
    if c.got >= msg.len() {
        return Ok(true);
    }
    // Before the handshake ends this only sends what TLS owes.
    let rest = if c.link.handshaking() {
        &[][..]
    } else {
        &msg[c.sent..]
    };
    c.sent += c.link.send(rest)?;
    Ok(false)
}

/// Primes (with `--resume`), warms up, measures one window and reports.
pub fn run(args: &BenchArgs, secs: Duration, warmup: Duration) -> Result<()> {
    let dialer = dialer(args)?;
    let mut hs = Handshakes {
        dialer: &dialer,
        epoll: Epoll::new().sys("epoll_create1")?,
        events: Epoll::events(args.conns().clamp(1, 1024)),
        slots: (0..args.conns()).map(|_| None).collect(),
        gens: vec![0; args.conns()],
        msg: (0..args.size).map(|i| b'a' + (i % 26) as u8).collect(),
        buf: vec![0u8; RECV_BUF].into_boxed_slice(),
        budget: 1,
        tally: HsTally::default(),
        first_error: None,
        abort: None,
    };
    if args.resume {
        hs.slots.truncate(1);
        hs.run(None)?; // one full handshake: its tickets prime the cache
        hs.slots = (0..args.conns()).map(|_| None).collect();
    }
    hs.budget = args.count.unwrap_or(u64::MAX);
    let (elapsed, usage) = measure(&mut hs, args, secs, warmup)?;
    let report = HandshakeReport {
        addr: args.addr,
        conns: args.conns(),
        tls: args.tls.tls,
        resume: args.resume,
        elapsed,
        handshakes: hs.tally.handshakes,
        resumed: hs.tally.resumed,
        mismatches: hs.tally.mismatches,
        failed: hs.tally.failed,
        latency_us: latency_us(&hs.tally.latency),
        server_cpu_us: usage.server_cpu_us,
        gen_cpu_us: usage.gen_cpu_us,
        first_error: hs.first_error.take(),
    };
    report.print(args.json)
}

impl Window for Handshakes<'_> {
    fn run_until(&mut self, until: Option<Instant>) -> Result<()> {
        self.run(until)
    }
    fn forget(&mut self) {
        self.tally.clear();
    }
}
