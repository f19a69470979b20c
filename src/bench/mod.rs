//! `edgechat bench`: a load generator for any TCP echo server (this one, or
//! another), in one thread over one epoll set.
//!
//! - `pingpong`: each connection has one `--size`-byte message in flight;
//!   when all of its echo is back (and matches what was sent), the next
//!   goes. Reports messages per second and round-trip latency.
//! - `stream`: each connection keeps `--depth` messages in flight
//!   (pipelined). Reports echoed MB/s (10^6 bytes), messages per second,
//!   and each message's latency from its send to its full echo.
//!
//! - `chat`: `--senders` and `--receivers` in one room of a chat server;
//!   each sender keeps `--depth` lines in flight, a line counting as
//!   delivered once every receiver has it. Reports delivered lines and
//!   deliveries (lines × receivers) per second, and each delivery's latency
//!   from the timestamp inside the line ([`chat`]). With `--proto redis`
//!   or `--proto nats` the same load runs on a Redis (RESP2) or NATS
//!   server's pub/sub instead: receivers subscribe to one channel
//!   (subject), senders publish the same lines to it and are not
//!   subscribed, and every check, figure and JSON key is the same
//!   ([`pubsub`]).
//! - `idle`: `--conns` connections held idle for `--secs`; reports how
//!   many were held and how long the server took to go quiet, and with
//!   `--server-pid` its RSS before, after, and per connection ([`idle`]).
//! - `handshake`: a new connection per handshake (`--conns` at a time),
//!   each sending one `--size` message and reading its echo before it
//!   closes; with `--resume`, resumed TLS handshakes. Reports handshakes
//!   per second, how many were resumed, connect-to-echo latency and the
//!   server's CPU per handshake ([`handshake`]).
//! - `chaos`: a soak of a chat server (plain `--addr`, and TLS
//!   `--tls-addr`): `--conns` clients misbehave at random (`--seed`) while
//!   `--checkers` well-behaved ones check that every line between them
//!   arrives once and in order; then the server must still answer, and
//!   give back every descriptor ([`chaos`]).
//!
//! `--tls` runs any mode over TLS (rustls client sessions driven like the
//! server's, [`link`]), trusting `--ca` and checking `--servername`; every
//! connection shares one client config, so tickets can resume sessions.
//! Handshakes happen before the measured window (except in `handshake`
//! mode, where they are what is measured).
//!
//! All connections are opened first; then a warm-up (`--warmup`, not
//! counted), then the measured window: `--secs`, or exactly `--count`
//! messages (no warm-up then, and not one message more is sent, so an
//! instruction count under callgrind is exact). Latencies go into a
//! histogram with fixed buckets (within 1.6 %); nothing is allocated per
//! message. While a run goes, every mode rewrites a progress line on
//! stderr once a second when stderr is a terminal ([`progress`]): messages,
//! deliveries, handshakes, connections or chaos actions so far, and the
//! rate over the last second.
//!
//! **Is the generator the bottleneck?** The report gives the generator's own
//! CPU time (from `/proc/self/stat`) per message and as a share of one
//! core, beside the server's (`--server-pid`). Pin the two to different
//! cores (`taskset -c 0` / `taskset -c 1`). If the generator is near 100 %
//! of its core while the server is not, the figures measure the generator:
//! add a second generator process or fewer, bigger messages before
//! drawing conclusions about the server. If the server's core is the busy
//! one, the figures are the server's. Expect the two to cost about the same
//! per message against an echo server: the generator makes the mirror image
//! of the server's syscalls (one `send`, one `recv`, a share of one
//! `epoll_wait`), and almost all of that time is in the kernel. When both
//! cores are full, the figure is a lower bound for the server.
//!
//! Any mismatched echo or lost connection is counted and reported, and
//! makes the exit status 1, as does a window in which nothing was echoed.

mod chaos;
mod chat;
mod chatline;
mod chatrun;
mod deframe;
mod greeting;
mod handshake;
mod idle;
mod lineconn;
mod link;
mod load;
mod nats;
mod pool;
mod proc;
mod progress;
mod pubsub;
mod report;
mod resp;
mod stats;
mod stream;
mod window;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::ValueEnum;

use crate::error::{Context, Error, Result};
use link::dialer;
use load::Load;
use proc::Pid;
pub use pubsub::Proto;
use report::{Figures, Report, Usage};

/// `edgechat bench --help`, after the flags: what `--mode chaos` does.
pub const CHAOS_HELP: &str = "\
Chaos mode (a soak of a chat server):
  edgechat bench --mode chaos --addr 127.0.0.1:7000 --tls-addr 127.0.0.1:7443 \\
      --conns 1000 --checkers 8 --secs 300 --seed 1 --server-pid PID

  --conns clients each act at random every 0.1 to 1.9 s, from their own
  stream of --seed: connect (plain; a third to --tls-addr, some of those
  with bytes that are not TLS or a ClientHello cut short), talk, /nick,
  /join, /msg, bursts, bad UTF-8, control characters, over-long lines,
  unknown commands, a line trickled and never finished, slow reads, no
  reads at all, half-close, reset (SO_LINGER 0), /quit, close; and
  reconnect. --checkers well-behaved clients send numbered lines to their
  room and to each other and check that every one arrives once and in
  order. Afterwards every client closes, the server's descriptors
  (/proc/PID/fd) must come back to their count before the run, and a
  fresh client must then get PONG for /ping. Reports actions by kind, ERR lines by code,
  lines checked, lost and out of order, checker latency, the server's fds
  and RSS (before, peak, after). Exit status 1 if a checker line was lost
  or out of order, a checker was cut, the server stopped answering, or its
  descriptors did not come back. Give the server short deadlines
  (--idle-timeout 3 --line-timeout 2 --handshake-timeout 2 --linger-timeout
  3) and a small --max-output so the soak reaches them: scripts/soak.sh.";

/// The latency histogram, public so other measurements can reuse it.
pub use stats::Histogram;

/// What the load looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    /// One message in flight per connection; latency-bound.
    Pingpong,
    /// `--depth` messages in flight per connection; throughput-bound.
    Stream,
    /// Chat fan-out: `--senders` lines relayed to `--receivers`.
    Chat,
    /// `--conns` idle connections: the server's memory per connection.
    Idle,
    /// A new connection (and TLS handshake) per echoed message.
    Handshake,
    /// A chat soak: `--conns` misbehaving clients, `--checkers` that
    /// count every line, then the server's descriptors and memory.
    Chaos,
}

impl BenchMode {
    fn name(self) -> &'static str {
        match self {
            BenchMode::Pingpong => "pingpong",
            BenchMode::Stream => "stream",
            BenchMode::Chat => "chat",
            BenchMode::Idle => "idle",
            BenchMode::Handshake => "handshake",
            BenchMode::Chaos => "chaos",
        }
    }
}

/// `edgechat bench` flags.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_arg("servername", |a| a.help(
    "With TLS (--tls, or chaos's --tls-addr): the name the server's certificate \
     must carry [default: the address's IP]"
)))]
pub struct BenchArgs {
    /// Server address (echo; chat for `--mode chat` and `--mode chaos`):
    /// 127.0.0.1:7000, [::1]:7000, or a host name (the first of its
    /// addresses that accepts a connection).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7000",
          value_parser = crate::addr::connect_one)]
    pub addr: SocketAddr,
    /// Load shape.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = BenchMode::Pingpong)]
    pub mode: BenchMode,
    /// Connections, all driven by one thread (pingpong, stream, idle,
    /// handshake: default 50; chaos: misbehaving clients, default 1000).
    #[arg(long, value_name = "N")]
    pub conns: Option<usize>,
    /// Chat mode: the server's protocol: our chat room, Redis pub/sub or
    /// NATS.
    ///
    /// `edgechat`: one room of our chat server. `redis` (RESP2): receivers
    /// SUBSCRIBE to one channel (ready at the confirmation) and senders
    /// PUBLISH to it, reading the replies. `nats`: every client CONNECTs
    /// with echo off; receivers SUB to one subject (ready at the PONG to
    /// their PING) and senders PUB to it. Senders are not subscribed. Same
    /// lines, checks, figures and JSON keys in all three; redis and nats
    /// are plain TCP (no --tls).
    #[arg(long, value_enum, default_value_t = Proto::Edgechat)]
    pub proto: Proto,
    /// Chat mode: clients that only receive.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub receivers: usize,
    /// Chat mode: clients that send lines (edgechat: and drop what they
    /// receive; redis, nats: they only publish).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub senders: usize,
    /// Bytes per message (chat: per line, `\n` included, at least 49).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: usize,
    /// Seconds measured (after the warm-up).
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub secs: f64,
    /// Stop after exactly this many messages echoed (chat: lines delivered)
    /// in total, instead of after --secs; no warm-up, and no message beyond
    /// this is sent.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Messages in flight per connection (stream, default 16) or lines in
    /// flight per sender (chat, default 1).
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    /// Seconds of load before the measured window, not counted.
    #[arg(long, value_name = "S", default_value_t = 0.5)]
    pub warmup: f64,
    /// The server's process id: report its CPU time per message and RSS
    /// (idle mode: its RSS per connection).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Print one JSON object with every figure instead of the summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: crate::transport::client::TlsArgs,
    /// Handshake mode: resume sessions (a ticket from one priming
    /// handshake, then from each connection); without it every handshake
    /// is full.
    #[arg(long, requires = "tls")]
    pub resume: bool,
    /// Chaos mode: the chat server's TLS listener (same server as --addr);
    /// a third of the chaos clients and half the checkers go there, with
    /// --ca and --servername as for --tls.
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::connect_one)]
    pub tls_addr: Option<SocketAddr>,
    /// Chaos mode: well-behaved clients that check every line they are sent.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub checkers: usize,
    /// Chaos mode: seeds every client's choices, so a run can be repeated.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
}

impl BenchArgs {
    /// `--conns`, or the mode's default.
    pub fn conns(&self) -> usize {
        match (self.conns, self.mode) {
            (Some(n), _) => n,
            (None, BenchMode::Chaos) => 1000,
            (None, _) => 50,
        }
    }
}

/// Checks the flags and turns seconds into durations.
fn durations(a: &BenchArgs) -> Result<(Duration, Duration)> {
    let secs = |flag: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .map_err(|_| Error::Config(format!("{flag} must be a number of seconds >= 0")))
    };
    if a.conns() == 0 || a.size == 0 || a.depth == Some(0) {
        return Err(Error::Config(
            "--conns, --size and --depth must be at least 1".into(),
        ));
    }
    if a.resume && a.mode != BenchMode::Handshake {
        return Err(Error::Config("--resume is for --mode handshake".into()));
    }
    if a.tls_addr.is_some() && a.mode != BenchMode::Chaos {
        return Err(Error::Config(
            "--tls-addr is for --mode chaos (other modes: --tls --addr)".into(),
        ));
    }
    if a.proto != Proto::Edgechat {
        let proto = a.proto.name();
        if a.mode != BenchMode::Chat {
            return Err(Error::Config(format!(
                "--proto {proto} is for --mode chat (--mode {} loads edgechat's own protocol)",
                a.mode.name()
            )));
        }
        if a.tls.tls {
            return Err(Error::Config(format!(
                "--proto {proto} runs over plain TCP: --tls is for --proto edgechat"
            )));
        }
    }
    if a.count == Some(0) {
        return Err(Error::Config("--count must be at least 1".into()));
    }
    let run = secs("--secs", a.secs)?;
    if run.is_zero() && a.count.is_none() {
        return Err(Error::Config("--secs must be more than 0".into()));
    }
    Ok((run, secs("--warmup", a.warmup)?))
}

/// A load that runs until a deadline (or its own `--count`), and can
/// forget what it counted (after the warm-up).
pub(super) trait Window {
    fn run_until(&mut self, until: Option<Instant>) -> Result<()>;
    fn forget(&mut self);
}

/// The warm-up (not counted), then the measured window (`--secs`, or up to
/// `--count`, which has no warm-up), with the server's and this process's
/// CPU read on either side of it and the server's RSS at its end.
pub(super) fn measure(
    load: &mut impl Window,
    args: &BenchArgs,
    secs: Duration,
    warmup: Duration,
) -> Result<(Duration, Usage)> {
    if args.count.is_none() && !warmup.is_zero() {
        load.run_until(Some(Instant::now() + warmup))?;
    }
    load.forget();
    let (server0, gen0) = cpu_now(args.server_pid)?;
    let start = Instant::now();
    load.run_until(args.count.is_none().then(|| start + secs))?;
    let elapsed = start.elapsed();
    let (server1, gen1) = cpu_now(args.server_pid)?;
    let usage = Usage {
        server_cpu_us: server0.zip(server1).map(|(a, b)| b.saturating_sub(a)),
        server_rss_kib: match args.server_pid {
            Some(pid) => Some(proc::rss_kib(Pid::Other(pid))?),
            None => None,
        },
        gen_cpu_us: gen1.saturating_sub(gen0),
    };
    Ok((elapsed, usage))
}

/// CPU used so far by the server (if known) and by this process, µs.
pub(super) fn cpu_now(server: Option<u32>) -> Result<(Option<u64>, u64)> {
    let server = match server {
        Some(pid) => Some(proc::cpu_micros(Pid::Other(pid))?),
        None => None,
    };
    Ok((server, proc::cpu_micros(Pid::Current)?))
}

/// Runs the load generator and prints its report.
pub fn run(args: &BenchArgs) -> Result<()> {
    // Thousands of connections need as many descriptors.
    crate::sys::limits::raise_nofile().sys("setrlimit(RLIMIT_NOFILE)")?;
    let (secs, warmup) = durations(args)?;
    if args.tls.tls && !args.json && matches!(args.mode, BenchMode::Chat | BenchMode::Idle) {
        println!(
            "over TLS to {} (servername {})",
            args.addr,
            args.tls.name_for(args.addr)
        );
    }
    match args.mode {
        BenchMode::Chat => return chatrun::run(args, secs, warmup),
        BenchMode::Idle => return idle::run(args, secs),
        BenchMode::Handshake => return handshake::run(args, secs, warmup),
        BenchMode::Chaos => return chaos::run(args, secs),
        BenchMode::Pingpong | BenchMode::Stream => {}
    }
    let report = echo_load(args)?;
    report.print_as(args.json);
    if report.errors() > 0 {
        return Err(Error::Check(format!(
            "{} errors: {} mismatched echoes, {} connections lost",
            report.errors(),
            report.mismatches,
            report.failed
        )));
    }
    if report.msgs == 0 {
        return Err(Error::Check(format!(
            "no message was echoed by {} in the measured window",
            args.addr
        )));
    }
    Ok(())
}

/// Connects an echo load (pingpong or stream), warms up, measures one window.
fn echo_load(args: &BenchArgs) -> Result<Report> {
    let (secs, warmup) = durations(args)?;
    let depth = match args.mode {
        BenchMode::Stream => args.depth.unwrap_or(16),
        _ => 1,
    };
    let dialer = dialer(args)?;
    let mut load = Load::connect(&dialer, args.conns(), args.size, depth, args.count)?;
    let (elapsed, usage) = measure(&mut load, args, secs, warmup)?;
    Ok(Report {
        mode: args.mode.name(),
        tls: args.tls.tls,
        addr: args.addr,
        conns: args.conns(),
        size: args.size,
        depth,
        elapsed,
        msgs: load.tally.msgs,
        bytes: load.tally.bytes,
        mismatches: load.tally.mismatches,
        failed: load.failed,
        latency_us: report::latency_us(&load.tally.latency),
        usage,
        first_error: load.first_error.take(),
    })
}
