//! `edgechat bench --mode chat`: checks the flags, measures one window of
//! the chat load ([`super::chat`]) and reports it, as a readable line or as
//! one JSON object.
//!
//! A *delivery* is one line arriving at one receiver; a *line* is
//! delivered once every receiver has it (so deliveries = lines × receivers
//! when every line got through). The server's CPU time is given per
//! delivery: the unit of work a fan-out server does. Over Redis or NATS
//! (`--proto`) the figures and JSON keys are the same; `proto` says which.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use super::chat::{ChatLoad, Shape};
use super::chatline::MIN_SIZE;
use super::pubsub::Proto;
use super::report::{json_string, latency_us, num, Figures, Usage};
use super::BenchArgs;
use crate::error::{Error, Result};

/// The figures of one chat run.
#[derive(Debug, Clone)]
pub struct ChatReport {
    pub addr: SocketAddr,
    pub shape: Shape,
    pub elapsed: Duration,
    pub lines: u64,
    pub deliveries: u64,
    pub order_errors: u64,
    pub bad_lines: u64,
    pub failed: u64,
    /// Latency quantiles and mean, µs: p50, p99, p999, mean, max.
    pub latency_us: [f64; 5],
    pub usage: Usage,
    pub first_error: Option<String>,
}

fn shape(args: &BenchArgs) -> Result<Shape> {
    if args.senders == 0 || args.receivers == 0 {
        return Err(Error::Config(
            "--senders and --receivers must be at least 1".into(),
        ));
    }
    if args.senders > 99_999 {
        return Err(Error::Config("--senders must be at most 99999".into()));
    }
    if args.size < MIN_SIZE {
        return Err(Error::Config(format!(
            "--size must be at least {MIN_SIZE} in chat mode"
        )));
    }
    Ok(Shape {
        senders: args.senders,
        receivers: args.receivers,
        size: args.size,
        depth: args.depth.unwrap_or(1),
        proto: args.proto,
    })
}

/// Measures and prints; fails on any error or an empty window.
pub fn run(args: &BenchArgs, secs: Duration, warmup: Duration) -> Result<()> {
    let report = measure(args, shape(args)?, secs, warmup)?;
    report.print_as(args.json);
    if report.errors() > 0 {
        let first = report.first_error.as_deref().unwrap_or("none");
        return Err(Error::Check(format!(
            "{} errors: {} out of order, {} foreign lines, {} connections lost (first: {first})",
            report.errors(),
            report.order_errors,
            report.bad_lines,
            report.failed
        )));
    }
    if report.deliveries == 0 {
        return Err(Error::Check(format!(
            "no line was delivered by {} in the measured window",
            args.addr
        )));
    }
    Ok(())
}

fn measure(args: &BenchArgs, shape: Shape, secs: Duration, warmup: Duration) -> Result<ChatReport> {
    let mut load = ChatLoad::connect(&super::dialer(args)?, shape, args.count)?;
    let (elapsed, usage) = super::measure(&mut load, args, secs, warmup)?;
    let tally = load.tally();
    let (lines, deliveries) = (tally.lines, tally.deliveries);
    let (order_errors, bad_lines) = (tally.order_errors, tally.bad_lines);
    let latency_us = latency_us(&tally.latency);
    Ok(ChatReport {
        addr: args.addr,
        shape,
        elapsed,
        lines,
        deliveries,
        order_errors,
        bad_lines,
        failed: load.pool.failed,
        latency_us,
        usage,
        first_error: load.pool.first_error.take(),
    })
}

impl ChatReport {
    /// Order errors, foreign lines and lost connections.
    pub fn errors(&self) -> u64 {
        self.order_errors + self.bad_lines + self.failed
    }

    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    /// CPU µs per delivery, and CPU use in % of one core.
    fn cpu(&self, cpu_us: u64) -> (Option<f64>, f64) {
        let per = (self.deliveries > 0).then(|| cpu_us as f64 / self.deliveries as f64);
        (per, cpu_us as f64 / 1e4 / self.secs())
    }
}

impl Figures for ChatReport {
    /// The human-readable summary, one line.
    fn summary(&self) -> String {
        let [p50, p99, p999, _, _] = self.latency_us;
        let Shape {
            senders,
            receivers,
            size,
            depth,
            proto,
        } = self.shape;
        let over = match proto {
            Proto::Edgechat => String::new(),
            other => format!(" over {}", other.name()),
        };
        let mut s = format!(
            "chat{over} {senders} senders x {receivers} receivers x {size} B (depth {depth}), \
             {:.2} s: {:.0} lines/s, {:.0} deliveries/s, \
             p50 {p50:.0} us, p99 {p99:.0} us, p999 {p999:.0} us",
            self.secs(),
            self.lines as f64 / self.secs(),
            self.deliveries as f64 / self.secs(),
        );
        if let Some(cpu) = self.usage.server_cpu_us {
            let (per, pct) = self.cpu(cpu);
            let per = per.unwrap_or(0.0);
            let _ = write!(s, "; server cpu {per:.3} us/delivery ({pct:.0}%)");
        }
        if let Some(rss) = self.usage.server_rss_kib {
            let _ = write!(s, ", rss {:.1} MiB", rss as f64 / 1024.0);
        }
        let (per, pct) = self.cpu(self.usage.gen_cpu_us);
        let per = per.unwrap_or(0.0);
        let _ = write!(s, "; generator cpu {per:.3} us/delivery ({pct:.0}%)");
        let _ = write!(s, "; {} errors", self.errors());
        if let Some(e) = &self.first_error {
            let _ = write!(s, " (first: {e})");
        }
        s
    }

    /// One JSON object with every figure; absent figures are `null`.
    fn json(&self) -> String {
        let [p50, p99, p999, mean, max] = self.latency_us;
        let (server_per, server_pct) = match self.usage.server_cpu_us {
            Some(cpu) => {
                let (per, pct) = self.cpu(cpu);
                (per, Some(pct))
            }
            None => (None, None),
        };
        let (gen_per, gen_pct) = self.cpu(self.usage.gen_cpu_us);
        let mut s = String::with_capacity(640);
        let _ = write!(
            s,
            "{{\"mode\":\"chat\",\"proto\":\"{}\",\"addr\":\"{}\",\"senders\":{},\"receivers\":{},\
             \"size\":{},\"depth\":{},\"secs\":{:.3},\"lines\":{},\"deliveries\":{},\
             \"errors\":{},\"order_errors\":{},\"bad_lines\":{},\"failed_conns\":{},\
             \"lines_per_sec\":{:.1},\"deliveries_per_sec\":{:.1},\
             \"p50_us\":{p50:.1},\"p99_us\":{p99:.1},\"p999_us\":{p999:.1},\
             \"mean_us\":{mean:.1},\"max_us\":{max:.1},",
            self.shape.proto.name(),
            self.addr,
            self.shape.senders,
            self.shape.receivers,
            self.shape.size,
            self.shape.depth,
            self.secs(),
            self.lines,
            self.deliveries,
            self.errors(),
            self.order_errors,
            self.bad_lines,
            self.failed,
            self.lines as f64 / self.secs(),
            self.deliveries as f64 / self.secs(),
        );
        let _ = write!(
            s,
            "\"server_cpu_us\":{},\"server_cpu_us_per_delivery\":{},\"server_cpu_pct\":{},\
             \"server_rss_kib\":{},\"gen_cpu_us\":{},\"gen_cpu_us_per_delivery\":{},\
             \"gen_cpu_pct\":{gen_pct:.1},\"first_error\":{}}}",
            num(self.usage.server_cpu_us.map(|v| v as f64), 0),
            num(server_per, 4),
            num(server_pct, 1),
            num(self.usage.server_rss_kib.map(|v| v as f64), 0),
            self.usage.gen_cpu_us,
            num(gen_per, 4),
            self.first_error
                .as_deref()
                .map_or("null".into(), json_string),
        );
        s
    }
}
