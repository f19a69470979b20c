//! `edgechat bench --mode chaos`: a soak of a chat server. For `--secs`,
//! `--conns` chaos clients misbehave at random while `--checkers`
//! well-behaved clients check that the server loses nothing; then the
//! server must still answer and give back every descriptor.
//!
//! - Chaos clients ([`actor`]) each act on their own timer, every 0.1 to
//!   1.9 s, drawing from their own stream of `--seed` (so each client's
//!   choices repeat from run to run, whatever the timing): connect (plain
//!   to `--addr`; a third of them to `--tls-addr` when given, some of
//!   those with bytes that are not TLS or a ClientHello cut short), talk,
//!   `/nick`, `/join`, `/msg`, bursts, bad UTF-8, control characters,
//!   over-long lines, unknown commands, a line trickled and never finished
//!   (slowloris), reading slowly, not reading at all (until cut or until
//!   they give up), half-closing, resetting (`SO_LINGER` 0), `/quit`, or
//!   just closing; and reconnect. Whatever the server does to them (`ERR`,
//!   a cut, a reset) is counted, never fatal.
//! - Checkers ([`checker`]) join the room `den`, where chaos clients talk
//!   too, send numbered room lines and direct messages to each other, read
//!   promptly and answer `PING`. Every line between two checkers must
//!   arrive exactly once and in order ([`ledger`]), and no checker may be
//!   cut or sent an `ERR`.
//!
//! Afterwards every chaos client is closed, the checkers' last lines are
//! awaited and the checkers closed; the server's descriptor count
//! (`/proc/PID/fd`, `--server-pid`) must come back to what it was before
//! the run, and then a fresh client must get `PONG` for `/ping` (over TLS
//! too). RSS is read before, at the peak (`VmHWM`) and after. The run
//! fails (exit status 1) if a checker line was lost or out of order, a
//! checker was cut, a half-closed client was never closed, the server
//! stopped answering, or its descriptors did not come back. Start the
//! server with short deadlines (`--idle-timeout`, `--line-timeout`,
//! `--handshake-timeout`, `--linger-timeout`) and a small `--max-output`,
//! so the soak reaches them: `scripts/soak.sh` does.

mod actor;
mod checker;
mod ledger;
mod payload;
mod report;
mod rng;
mod server;
mod tally;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::link::Dialer;
use super::proc::{self, Pid};
use super::progress::Progress;
use super::report::Figures;
use super::BenchArgs;
use crate::error::{Context, Error, Result};
use crate::sys::epoll::{self, Epoll, Event};
use actor::{Actor, Ctx, TlsPort};
use checker::{Checkers, CHECKER, TICK};
use report::{ChaosReport, Checks, ServerUse};
use server::{probe, settle_fds};

/// After the run, how long the checkers' last lines may take to arrive.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);
const RECV_BUF: usize = 64 * 1024;

/// Every client of the soak and the loop that drives them.
struct Soak {
    ctx: Ctx,
    events: Vec<Event>,
    actors: Vec<Actor>,
    /// (wake, actor): an entry whose time is no longer its actor's is stale.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    checkers: Checkers,
    pid: Pid,
    fds_peak: u64,
    /// The longest the loop went between two `epoll_wait`s, and when the
    /// last one returned.
    max_turn: Duration,
    woke: Instant,
}

/// Checks the flags; chaos needs a chat server's pid and at least two
/// checkers.
fn validate(args: &BenchArgs) -> Result<u32> {
    let Some(pid) = args.server_pid else {
        return Err(Error::Config(
            "--mode chaos watches the server's descriptors and memory: give --server-pid".into(),
        ));
    };
    if args.tls.tls {
        return Err(Error::Config(
            "--mode chaos mixes plain and TLS clients: give the TLS listener as --tls-addr, not --tls"
                .into(),
        ));
    }
    if !(2..=1000).contains(&args.checkers) {
        return Err(Error::Config("--checkers must be 2 to 1000".into()));
    }
    Ok(pid)
}

/// The TLS dialers (TLS, and plain to the same port) and a ClientHello to
/// cut short, when there is a TLS listener.
fn tls_side(args: &BenchArgs) -> Result<(Option<TlsPort>, Vec<u8>)> {
    let Some(addr) = args.tls_addr else {
        return Ok((None, Vec::new()));
    };
    let config = crate::transport::client::config_with(args.tls.roots()?, None)?;
    let name = args.tls.name_for(addr);
    let mut hello = Vec::new();
    let server_name = rustls::pki_types::ServerName::try_from(name.clone())
        .map_err(|e| Error::Config(format!("--servername {name}: {e}")))?;
    let mut client = rustls::ClientConnection::new(config.clone(), server_name)
        .map_err(|e| Error::Config(format!("TLS client: {e}")))?;
    while client.wants_write() {
        client.write_tls(&mut hello).sys("ClientHello")?;
    }
    let tls = Dialer {
        addr,
        tls: Some((config, name)),
    };
    let raw = Dialer::plain(addr);
    Ok((Some(TlsPort { tls, raw }), hello))
}

impl Soak {
    fn new(args: &BenchArgs, pid: Pid) -> Result<Soak> {
        let (tls, client_hello) = tls_side(args)?;
        let epoll = Epoll::new().sys("epoll_create1")?;
        let mut buf = vec![0u8; RECV_BUF].into_boxed_slice();
        let plain = Dialer::plain(args.addr);
        let checkers = Checkers::connect(
            args.checkers,
            &plain,
            tls.as_ref().map(|p| &p.tls),
            &epoll,
            &mut buf,
        )?;
        let now = Instant::now();
        let conns = args.conns();
        let actors: Vec<Actor> = (0..conns).map(|i| Actor::new(i, args.seed, now)).collect();
        let timers = actors
            .iter()
            .enumerate()
            .map(|(i, a)| Reverse((a.wake, i)))
            .collect();
        Ok(Soak {
            ctx: Ctx {
                epoll,
                buf,
                plain,
                tls,
                client_hello,
                tally: Default::default(),
                conns,
                checkers: args.checkers,
                now,
            },
            events: Epoll::events(1024),
            actors,
            timers,
            checkers,
            pid,
            fds_peak: 0,
            max_turn: Duration::ZERO,
            woke: now,
        })
    }

    /// Drives chaos and checkers until `until`, or until every checker is
    /// cut (nothing is left to check: the server is gone, or broken).
    fn run(&mut self, until: Instant) -> Result<()> {
        let mut tick = Instant::now();
        let mut sample = tick;
        let mut progress = Progress::new("actions");
        loop {
            let now = Instant::now();
            if now >= until || !self.checkers.any_alive() {
                return Ok(());
            }
            if now >= tick {
                self.checkers.tick();
                tick = (tick + TICK).max(now);
            }
            if now >= sample {
                if let Ok(n) = proc::fd_count(self.pid) {
                    self.fds_peak = self.fds_peak.max(n);
                }
                sample = now + Duration::from_secs(1);
            }
            self.ctx.now = now;
            self.expire(now);
            progress.tick(now, self.ctx.tally.total());
            let next = self.timers.peek().map_or(until, |Reverse((t, _))| *t);
            let wake = next.min(tick).min(sample).min(until);
            self.wait(wake.saturating_duration_since(Instant::now()), true)?;
        }
    }

    /// Fires every actor timer that is due.
    fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((at, i))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let a = &mut self.actors[i];
            if a.wake != at {
                continue; // stale: the actor moved its timer since
            }
            a.on_wake(&mut self.ctx);
            if a.wake <= now {
                a.wake = now + Duration::from_millis(10);
            }
            self.timers.push(Reverse((a.wake, i)));
        }
    }

    /// One `epoll_wait` of at most `timeout`, every event handed to its
    /// client (to chaos clients only while `chaos` is on).
    fn wait(&mut self, timeout: Duration, chaos: bool) -> Result<()> {
        self.max_turn = self.max_turn.max(self.woke.elapsed());
        let n = self
            .ctx
            .epoll
            .wait(&mut self.events, Some(timeout))
            .sys("epoll_wait")?;
        self.ctx.now = Instant::now();
        self.woke = self.ctx.now;
        for ev in &self.events[..n] {
            let token = epoll::token(ev);
            if token & CHECKER != 0 {
                self.checkers.on_event(ev, &mut self.ctx.buf);
                continue;
            }
            let i = (token & 0xffff_ffff) as usize;
            match self.actors.get_mut(i) {
                Some(a) if chaos && a.token() == token => {
                    let before = a.wake;
                    a.on_event(&mut self.ctx, ev);
                    if a.wake != before {
                        self.timers.push(Reverse((a.wake, i)));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Closes every chaos client, then waits until every line between the
    /// checkers has arrived (or [`DRAIN_LIMIT`]).
    fn finish(&mut self) -> Result<Checks> {
        for a in &mut self.actors {
            a.stop();
        }
        let deadline = Instant::now() + DRAIN_LIMIT;
        self.checkers.flush_all(&mut self.ctx.buf);
        loop {
            let alive = self.checkers.alive();
            let done = self.checkers.ledger.missing(&alive) == 0 && self.checkers.flushed();
            let left = deadline.saturating_duration_since(Instant::now());
            if done || left.is_zero() {
                break;
            }
            self.wait(left.min(Duration::from_millis(50)), false)?;
            self.checkers.flush_all(&mut self.ctx.buf);
        }
        let c = &self.checkers;
        let alive = c.alive();
        Ok(Checks {
            checkers: alive.len(),
            sent: c.ledger.sent(),
            checked: c.ledger.checked,
            lost: c.ledger.lost(&alive),
            out_of_order: c.ledger.out_of_order,
            forged: c.ledger.forged,
            cut: c.cut,
            errors: c.errors,
            foreign: c.foreign,
            latency_us: super::report::latency_us(&c.ledger.latency),
            first_error: c.first_error.clone(),
        })
    }
}

/// Runs the soak, prints its report, and fails if the server lost
/// anything, stopped answering, or kept descriptors.
pub fn run(args: &BenchArgs, secs: Duration) -> Result<()> {
    let pid = Pid::Other(validate(args)?);
    let fds_before = proc::fd_count(pid)?;
    let rss_before_kib = proc::rss_kib(pid)?;
    let cpu0 = proc::cpu_micros(pid)?;
    let gen0 = proc::cpu_micros(Pid::Current)?;
    let mut soak = Soak::new(args, pid)?;
    let start = Instant::now();
    soak.run(start + secs)?;
    let elapsed = start.elapsed();
    let checks = soak.finish()?;
    let fds_peak = soak.fds_peak.max(fds_before);
    let gen_cpu_us = proc::cpu_micros(Pid::Current)?.saturating_sub(gen0);
    let gen_max_turn = soak.max_turn;
    let (tally, plain, tls) = (
        soak.ctx.tally.clone(),
        soak.ctx.plain.clone(),
        soak.ctx.tls.clone(),
    );
    // Closes the checkers, then lets the server settle before the probe:
    // a server still at --max-clients would turn it away.
    drop(soak);
    let (fds_after, fds_settle) = settle_fds(pid, fds_before);
    let alive = probe(&plain).and_then(|()| tls.as_ref().map_or(Ok(()), |p| probe(&p.tls)));
    let server = ServerUse {
        fds_before,
        fds_peak,
        fds_after,
        fds_settle,
        rss_before_kib,
        rss_peak_kib: proc::peak_rss_kib(pid).unwrap_or(0),
        rss_after_kib: proc::rss_kib(pid).ok(),
        cpu_us: proc::cpu_micros(pid).map_or(0, |c| c.saturating_sub(cpu0)),
    };
    let report = ChaosReport {
        addr: args.addr,
        tls_addr: args.tls_addr,
        conns: args.conns(),
        seed: args.seed,
        elapsed,
        tally,
        checks,
        alive,
        server,
        gen_cpu_us,
        gen_max_turn,
    };
    report.print_as(args.json);
    let failures = report.failures();
    if failures.is_empty() {
        return Ok(());
    }
    Err(Error::Check(format!(
        "chaos soak failed: {}",
        failures.join("; ")
    )))
}
