//! The figures of one `handshake` run, as a readable line or as one JSON
//! object; the exit status says whether anything went wrong.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use super::super::report::{json_string, num, Figures};
use crate::error::{Error, Result};

/// Everything `edgechat bench --mode handshake` reports.
#[derive(Debug, Clone)]
pub struct HandshakeReport {
    pub addr: SocketAddr,
    pub conns: usize,
    pub tls: bool,
    pub resume: bool,
    pub elapsed: Duration,
    pub handshakes: u64,
    pub resumed: u64,
    pub mismatches: u64,
    pub failed: u64,
    /// Latency quantiles and mean, µs: p50, p99, p999, mean, max.
    pub latency_us: [f64; 5],
    pub server_cpu_us: Option<u64>,
    pub gen_cpu_us: u64,
    pub first_error: Option<String>,
}

impl HandshakeReport {
    /// Mismatched echoes plus failed connections.
    pub fn errors(&self) -> u64 {
        self.mismatches + self.failed
    }

    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    /// CPU µs per handshake, and CPU use in % of one core.
    fn cpu(&self, cpu_us: u64) -> (Option<f64>, f64) {
        let per = (self.handshakes > 0).then(|| cpu_us as f64 / self.handshakes as f64);
        (per, cpu_us as f64 / 1e4 / self.secs())
    }

    fn kind(&self) -> &'static str {
        match (self.tls, self.resume) {
            (false, _) => "plain",
            (true, false) => "full",
            (true, true) => "resumed",
        }
    }
}

impl Figures for HandshakeReport {
    /// The human-readable summary, one line.
    fn summary(&self) -> String {
        let [p50, p99, p999, _, _] = self.latency_us;
        let mut s = format!(
            "handshake ({}{}) {} at a time, {:.2} s: {} handshakes, {:.0}/s, {} resumed, \
             p50 {p50:.0} us, p99 {p99:.0} us, p999 {p999:.0} us",
            if self.tls { "TLS, " } else { "" },
            self.kind(),
            self.conns,
            self.secs(),
            self.handshakes,
            self.handshakes as f64 / self.secs(),
            self.resumed,
        );
        if let Some(cpu) = self.server_cpu_us {
            let (per, pct) = self.cpu(cpu);
            let per = per.unwrap_or(0.0);
            let _ = write!(s, "; server cpu {per:.1} us/handshake ({pct:.0}%)");
        }
        let (per, pct) = self.cpu(self.gen_cpu_us);
        let per = per.unwrap_or(0.0);
        let _ = write!(s, "; generator cpu {per:.1} us/handshake ({pct:.0}%)");
        let _ = write!(s, "; {} errors", self.errors());
        if let Some(e) = &self.first_error {
            let _ = write!(s, " (first: {e})");
        }
        s
    }

    /// One JSON object with every figure; absent figures are `null`.
    fn json(&self) -> String {
        let [p50, p99, p999, mean, max] = self.latency_us;
        let (server_per, server_pct) = match self.server_cpu_us {
            Some(cpu) => {
                let (per, pct) = self.cpu(cpu);
                (per, Some(pct))
            }
            None => (None, None),
        };
        let (gen_per, gen_pct) = self.cpu(self.gen_cpu_us);
        format!(
            "{{\"mode\":\"handshake\",\"kind\":\"{}\",\"addr\":\"{}\",\"conns\":{},\
             \"secs\":{:.3},\"handshakes\":{},\"resumed\":{},\"errors\":{},\
             \"mismatches\":{},\"failed_conns\":{},\"handshakes_per_sec\":{:.1},\
             \"p50_us\":{p50:.1},\"p99_us\":{p99:.1},\"p999_us\":{p999:.1},\
             \"mean_us\":{mean:.1},\"max_us\":{max:.1},\"server_cpu_us\":{},\
             \"server_cpu_us_per_handshake\":{},\"server_cpu_pct\":{},\"gen_cpu_us\":{},\
             \"gen_cpu_us_per_handshake\":{},\"gen_cpu_pct\":{gen_pct:.1},\"first_error\":{}}}",
            self.kind(),
            self.addr,
            self.conns,
            self.secs(),
            self.handshakes,
            self.resumed,
            self.errors(),
            self.mismatches,
            self.failed,
            self.handshakes as f64 / self.secs(),
            num(self.server_cpu_us.map(|v| v as f64), 0),
            num(server_per, 2),
            num(server_pct, 1),
            self.gen_cpu_us,
            num(gen_per, 2),
            self.first_error
                .as_deref()
                .map_or("null".into(), json_string),
        )
    }
}

impl HandshakeReport {
    /// Prints the report; fails on any error, an empty window, or (with
    /// `--resume`) no handshake resumed at all.
    pub fn print(&self, json: bool) -> Result<()> {
        self.print_as(json);
        if self.errors() > 0 {
            return Err(Error::Check(format!(
                "{} errors: {} mismatched echoes, {} connections failed",
                self.errors(),
                self.mismatches,
                self.failed
            )));
        }
        if self.handshakes == 0 {
            return Err(Error::Check(format!(
                "no connection to {} completed in the measured window",
                self.addr
            )));
        }
        if self.resume && self.resumed == 0 {
            return Err(Error::Check(format!(
                "--resume: {} refused every session ticket",
                self.addr
            )));
        }
        Ok(())
    }
}
