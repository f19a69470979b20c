//! `edgechat bench --mode idle`: what an idle connection (plain, or TLS
//! with its handshake done) costs the server in memory. Reads the server's
//! RSS, opens `--conns` connections, waits until the server has gone quiet
//! (nothing arrives for half a second: a chat server has sent every `HELLO`
//! and `JOIN`), holds them for `--secs`, then reads its RSS again. Whatever
//! arrives is read and dropped, so no kernel buffer fills and no output
//! piles up in the server.
//!
//! RSS per connection = (RSS after − RSS before) / connections. It is a
//! whole-process figure: the allocator's retained memory and page
//! granularity are in it, which is the point (it is what a machine pays).
//! Without `--server-pid` the run is the same and reports what it can see
//! from the client side: connections held, time to settle, and its own
//! CPU; the server's RSS and CPU are then `null`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::pool::Pool;
use super::proc::{self, Pid};
use super::progress::Progress;
use super::report::{json_string, num, Figures};
use super::BenchArgs;
use crate::error::{Error, Result};

/// The server is quiet once nothing has arrived for this long.
const QUIET: Duration = Duration::from_millis(500);
/// A server that is not quiet this long after the first connect fails the run.
const SETTLE_LIMIT: Duration = Duration::from_secs(600);

/// The figures of one idle run.
#[derive(Debug, Clone)]
pub struct IdleReport {
    pub addr: SocketAddr,
    pub conns: usize,
    /// From the first connect until the server went quiet.
    pub settled: Duration,
    pub held: Duration,
    /// Connections still open at the end of the hold.
    pub held_conns: usize,
    /// Connections whose `HELLO` arrived (chat servers; 0 for echo).
    pub hellos: usize,
    pub failed: u64,
    /// The server's RSS before and after, KiB (with `--server-pid`).
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// Server CPU time while connecting and holding, µs (with `--server-pid`).
    pub server_cpu_us: Option<u64>,
    /// This process's CPU time over the same span, µs.
    pub gen_cpu_us: u64,
    pub first_error: Option<String>,
}

impl IdleReport {
    /// Bytes of server RSS per connection (0 if it shrank), when measured.
    pub fn rss_per_conn(&self) -> Option<f64> {
        let (before, after) = (self.rss_before_kib?, self.rss_after_kib?);
        let grew = after.saturating_sub(before);
        Some(grew as f64 * 1024.0 / self.conns.max(1) as f64)
    }
}

impl Figures for IdleReport {
    fn summary(&self) -> String {
        let mut s = format!(
            "idle {} conns settled in {:.2} s, held {:.2} s: {} open at the end ({} HELLO); ",
            self.conns,
            self.settled.as_secs_f64(),
            self.held.as_secs_f64(),
            self.held_conns,
            self.hellos,
        );
        match (
            self.rss_before_kib,
            self.rss_after_kib,
            self.rss_per_conn(),
            self.server_cpu_us,
        ) {
            (Some(before), Some(after), Some(per), Some(cpu)) => {
                let _ = write!(
                    s,
                    "server rss {:.1} MiB -> {:.1} MiB, {per:.0} B per connection; \
                     server cpu {:.3} s; ",
                    before as f64 / 1024.0,
                    after as f64 / 1024.0,
                    cpu as f64 / 1e6,
                );
            }
            _ => s.push_str("server rss and cpu not measured (no --server-pid); "),
        }
        let _ = write!(
            s,
            "generator cpu {:.3} s; {} errors",
            self.gen_cpu_us as f64 / 1e6,
            self.failed
        );
        if let Some(e) = &self.first_error {
            let _ = write!(s, " (first: {e})");
        }
        s
    }

    fn json(&self) -> String {
        format!(
            "{{\"mode\":\"idle\",\"addr\":\"{}\",\"conns\":{},\"settle_secs\":{:.3},\"secs\":{:.3},\
             \"held_conns\":{},\"hellos\":{},\"errors\":{},\"failed_conns\":{},\"rss_before_kib\":{},\
             \"rss_after_kib\":{},\"rss_per_conn_bytes\":{},\"server_cpu_us\":{},\"gen_cpu_us\":{},\
             \"first_error\":{}}}",
            self.addr,
            self.conns,
            self.settled.as_secs_f64(),
            self.held.as_secs_f64(),
            self.held_conns,
            self.hellos,
            self.failed,
            self.failed,
            num(self.rss_before_kib.map(|v| v as f64), 0),
            num(self.rss_after_kib.map(|v| v as f64), 0),
            num(self.rss_per_conn(), 1),
            num(self.server_cpu_us.map(|v| v as f64), 0),
            self.gen_cpu_us,
            self.first_error
                .as_deref()
                .map_or("null".into(), json_string),
        )
    }
}

/// Progress lines come at least this often while nothing else happens.
const TICK: Duration = Duration::from_secs(1);

/// Connects, holds, measures and prints; fails if a connection was lost.
/// The server's RSS and CPU are read only with `--server-pid`.
pub fn run(args: &BenchArgs, secs: Duration) -> Result<()> {
    let pid = args.server_pid.map(Pid::Other);
    let cpu0 = pid.map(proc::cpu_micros).transpose()?;
    let rss_before_kib = pid.map(proc::rss_kib).transpose()?;
    let gen0 = proc::cpu_micros(Pid::Current)?;
    let t0 = Instant::now();
    let mut pool = Pool::connect(&super::dialer(args)?, args.conns())?;
    let mut progress = Progress::new("connections held");
    // Quiet, and with `--tls` every handshake done (a busy server may take
    // longer than QUIET to answer a ClientHello).
    loop {
        let busy = pool.drain(QUIET)? > 0 || pool.handshaking() > 0;
        progress.tick(Instant::now(), pool.live() as u64);
        if !busy {
            break;
        }
        if t0.elapsed() >= SETTLE_LIMIT {
            return Err(Error::Check(format!(
                "{} still sending after {} s",
                args.addr,
                SETTLE_LIMIT.as_secs()
            )));
        }
    }
    let settled = t0.elapsed() - QUIET;
    let start = Instant::now();
    let until = start + secs;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if left.is_zero() {
            break;
        }
        pool.drain(left.min(TICK))?;
        progress.tick(Instant::now(), pool.live() as u64);
    }
    drop(progress);
    let report = IdleReport {
        addr: args.addr,
        conns: args.conns(),
        settled,
        held: start.elapsed(),
        held_conns: pool.live(),
        hellos: pool.hellos(),
        failed: pool.failed,
        rss_before_kib,
        rss_after_kib: pid.map(proc::rss_kib).transpose()?,
        server_cpu_us: match (pid, cpu0) {
            (Some(pid), Some(cpu0)) => Some(proc::cpu_micros(pid)?.saturating_sub(cpu0)),
            _ => None,
        },
        gen_cpu_us: proc::cpu_micros(Pid::Current)?.saturating_sub(gen0),
        first_error: pool.first_error.take(),
    };
    report.print_as(args.json);
    if report.failed > 0 {
        return Err(Error::Check(format!(
            "{} connections lost while idle",
            report.failed
        )));
    }
    Ok(())
}
