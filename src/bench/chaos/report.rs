//! The figures of one chaos soak: a readable summary of a few lines, or
//! one JSON object (flat: numbers, one boolean, a few strings), and the
//! list of what failed.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use super::tally::{Kind, Tally, ERR_CODES};
use crate::bench::report::{json_string, Figures};

/// What the checkers found.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    pub checkers: usize,
    /// Lines the checkers sent (a room line once, not once per receiver).
    pub sent: u64,
    /// Lines that arrived in order.
    pub checked: u64,
    pub lost: u64,
    pub out_of_order: u64,
    /// Checker lines that came from the wrong nick or the wrong stream.
    pub forged: u64,
    /// Checkers the server disconnected.
    pub cut: u64,
    /// `ERR` lines sent to checkers.
    pub errors: u64,
    /// Lines from chaos clients the checkers read.
    pub foreign: u64,
    /// From send to receipt, µs: p50, p99, p999, mean, max.
    pub latency_us: [f64; 5],
    pub first_error: Option<String>,
}

/// The server's descriptors and memory: before, at the peak, after.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerUse {
    pub fds_before: u64,
    pub fds_peak: u64,
    /// `None` if they could not be read (the server is gone).
    pub fds_after: Option<u64>,
    /// How long after the last client closed they took to come back.
    pub fds_settle: Duration,
    pub rss_before_kib: u64,
    /// `VmHWM`: the most the process ever had resident.
    pub rss_peak_kib: u64,
    pub rss_after_kib: Option<u64>,
    /// CPU time over the soak, µs.
    pub cpu_us: u64,
}

/// Everything a chaos soak reports.
#[derive(Debug, Clone)]
pub struct ChaosReport {
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub conns: usize,
    pub seed: u64,
    pub elapsed: Duration,
    pub tally: Tally,
    pub checks: Checks,
    /// A fresh client got `PONG` for its `/ping` (over TLS too, with a TLS
    /// listener); otherwise why not.
    pub alive: Result<(), String>,
    pub server: ServerUse,
    /// The generator's own CPU time over the soak, µs, and the longest its
    /// loop went without waiting for events (a long one delays every
    /// client, checkers included).
    pub gen_cpu_us: u64,
    pub gen_max_turn: Duration,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn opt(v: Option<u64>) -> String {
    v.map_or("null".into(), |v| v.to_string())
}

impl ChaosReport {
    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Every reason the soak failed; empty if it passed.
    pub fn failures(&self) -> Vec<String> {
        let c = &self.checks;
        let mut f = Vec::new();
        let mut count = |n: u64, what: &str| {
            if n > 0 {
                f.push(format!("{n} {what}"));
            }
        };
        count(c.lost, "checker lines lost");
        count(c.out_of_order, "checker lines out of order");
        count(c.forged, "checker lines from the wrong sender");
        count(c.cut, "checkers cut by the server");
        count(c.errors, "ERR lines sent to checkers");
        count(
            self.tally.stalled_closes,
            "half-closed clients the server never closed",
        );
        if c.checked == 0 {
            f.push("no checker line arrived".into());
        }
        if let Err(why) = &self.alive {
            f.push(format!("server not answering: {why}"));
        }
        let s = &self.server;
        match s.fds_after {
            Some(after) if after <= s.fds_before => {}
            Some(after) => f.push(format!("server fds {} -> {after}: not back", s.fds_before)),
            None => f.push("server fds unreadable: is it gone?".into()),
        }
        f
    }

    /// Actions by kind, `name count` pairs.
    fn actions(&self) -> String {
        let pairs = Kind::ALL.iter().zip(self.tally.actions);
        let pairs = pairs.filter(|(_, n)| *n > 0);
        pairs
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `ERR` lines chaos clients received, by code.
    fn errs(&self) -> String {
        let names = ERR_CODES.iter().copied().chain(["other"]);
        let pairs = names.zip(self.tally.errs).filter(|(_, n)| *n > 0);
        pairs
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What the checkers counted, as (JSON key, words for the summary,
    /// count).
    fn checker_counts(&self) -> [(&'static str, &'static str, u64); 7] {
        let c = &self.checks;
        [
            ("checker_sent", "lines sent", c.sent),
            ("checked", "checked", c.checked),
            ("lost", "lost", c.lost),
            ("out_of_order", "out of order", c.out_of_order),
            ("forged", "forged", c.forged),
            ("checkers_cut", "cut", c.cut),
            ("checker_errors", "ERR", c.errors),
        ]
    }

    /// How connections ended and what was not done, as (JSON key, words
    /// for the summary, count): one list for both forms of the report.
    fn connections(&self) -> [(&'static str, &'static str, u64); 11] {
        let t = &self.tally;
        [
            ("server_closed", "ended by the server", t.server_closed),
            ("resets", "of them resets", t.resets),
            (
                "stalled_ended",
                "of them after slow or no reading",
                t.stalled_ended,
            ),
            ("before_hello", "of them before HELLO", t.before_hello),
            (
                "closes_done",
                "closes after a half-close or /quit",
                t.closes_done,
            ),
            ("stalled_closes", "of them stalled", t.stalled_closes),
            (
                "raw_closed",
                "non-TLS or cut handshakes closed",
                t.raw_closed,
            ),
            (
                "raw_open",
                "non-TLS or cut handshakes left open",
                t.raw_open,
            ),
            ("connect_failed", "connects failed", t.connect_failed),
            ("no_hello", "without HELLO", t.no_hello),
            ("dropped_lines", "lines not sent", t.dropped_lines),
        ]
    }
}

impl Figures for ChaosReport {
    /// The human-readable summary, a few lines.
    fn summary(&self) -> String {
        let (t, c, s) = (&self.tally, &self.checks, &self.server);
        let mut out = format!(
            "chaos {} clients + {} checkers on {}{}, seed {}, {:.1} s: {} actions ({:.0}/s)\n",
            self.conns,
            c.checkers,
            self.addr,
            self.tls_addr
                .map_or(String::new(), |a| format!(" and tls://{a}")),
            self.seed,
            self.secs(),
            t.total(),
            t.total() as f64 / self.secs(),
        );
        let _ = writeln!(out, "  actions: {}", self.actions());
        let _ = writeln!(out, "  server said: {}", self.errs());
        let _ = write!(out, "  connections:");
        for (i, (_, label, n)) in self.connections().iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(out, "{sep}{n} {label}");
        }
        let _ = writeln!(out, "; {:.1} MB read", t.bytes_read as f64 / 1e6);
        let _ = write!(out, "  checkers:");
        for (i, (_, label, n)) in self.checker_counts().iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(out, "{sep}{n} {label}");
        }
        let _ = writeln!(
            out,
            "; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            c.latency_us[0] / 1e3,
            c.latency_us[1] / 1e3,
            c.latency_us[4] / 1e3,
        );
        let _ = write!(
            out,
            "  server: {}, fds {} -> peak {} -> {} ({:.2} s after the last close), rss {:.1} MiB -> peak {:.1} MiB -> {} MiB, cpu {:.1} s",
            match &self.alive {
                Ok(()) => "alive (PONG)".to_string(),
                Err(why) => format!("NOT ANSWERING ({why})"),
            },
            s.fds_before,
            s.fds_peak,
            opt(s.fds_after),
            s.fds_settle.as_secs_f64(),
            mib(s.rss_before_kib),
            mib(s.rss_peak_kib),
            s.rss_after_kib.map_or("?".into(), |k| format!("{:.1}", mib(k))),
            s.cpu_us as f64 / 1e6,
        );
        let _ = write!(
            out,
            "\n  generator: cpu {:.1} s ({:.0}% of a core), longest turn {:.1} ms",
            self.gen_cpu_us as f64 / 1e6,
            self.gen_cpu_us as f64 / 1e4 / self.secs(),
            self.gen_max_turn.as_secs_f64() * 1e3,
        );
        for e in [&c.first_error, &t.first_error].into_iter().flatten() {
            let _ = write!(out, "\n  first: {e}");
        }
        out
    }

    /// One JSON object with every figure.
    fn json(&self) -> String {
        let (t, c, s) = (&self.tally, &self.checks, &self.server);
        let mut o = format!(
            "{{\"mode\":\"chaos\",\"addr\":\"{}\",\"tls_addr\":{},\"conns\":{},\"checkers\":{},\
             \"seed\":{},\"secs\":{:.3},\"actions\":{},\"actions_per_sec\":{:.1},",
            self.addr,
            self.tls_addr.map_or("null".into(), |a| format!("\"{a}\"")),
            self.conns,
            c.checkers,
            self.seed,
            self.secs(),
            t.total(),
            t.total() as f64 / self.secs(),
        );
        for (k, n) in Kind::ALL.iter().zip(t.actions) {
            let _ = write!(o, "\"act_{}\":{n},", k.name());
        }
        let names = ERR_CODES.iter().copied().chain(["other"]);
        for (code, n) in names.zip(t.errs) {
            let _ = write!(o, "\"err_{}\":{n},", code.replace('-', "_"));
        }
        for (key, _, n) in self.connections() {
            let _ = write!(o, "\"{key}\":{n},");
        }
        let _ = write!(o, "\"bytes_read\":{},", t.bytes_read);
        for (key, _, n) in self.checker_counts() {
            let _ = write!(o, "\"{key}\":{n},");
        }
        let _ = write!(
            o,
            "\"foreign\":{},\"checker_p50_us\":{:.0},\"checker_p99_us\":{:.0},\"checker_max_us\":{:.0},",
            c.foreign,
            c.latency_us[0],
            c.latency_us[1],
            c.latency_us[4],
        );
        let _ = write!(
            o,
            "\"server_alive\":{},\"fds_before\":{},\"fds_peak\":{},\"fds_after\":{},\"fds_settle_ms\":{},\
             \"rss_before_kib\":{},\"rss_peak_kib\":{},\"rss_after_kib\":{},\"server_cpu_us\":{},\
             \"gen_cpu_us\":{},\"gen_max_turn_ms\":{:.1},\"failures\":{},\"first_error\":{}}}",
            self.alive.is_ok(),
            s.fds_before,
            s.fds_peak,
            opt(s.fds_after),
            s.fds_settle.as_millis(),
            s.rss_before_kib,
            s.rss_peak_kib,
            opt(s.rss_after_kib),
            s.cpu_us,
            self.gen_cpu_us,
            self.gen_max_turn.as_secs_f64() * 1e3,
            self.failures().len(),
            c.first_error
                .as_ref()
                .or(t.first_error.as_ref())
                .or(self.alive.as_ref().err())
                .map_or("null".into(), |e| json_string(e)),
        );
        o
    }
}
