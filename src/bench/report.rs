//! The figures of one run, as a readable line or as one JSON object
//! (formatted by hand: a flat object of numbers and two strings).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use super::stats::Histogram;

/// A run's figures, as a readable summary or as one JSON object: every
/// `edgechat bench` mode's report is one.
pub trait Figures {
    /// The readable summary.
    fn summary(&self) -> String;
    /// One JSON object on one line.
    fn json(&self) -> String;
    /// Prints the figures as `--json` asks.
    fn print_as(&self, json: bool) {
        println!("{}", if json { self.json() } else { self.summary() });
    }
}

/// CPU and memory of the server and the generator over the measured window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Server CPU time (user + system), µs, if `--server-pid` was given.
    pub server_cpu_us: Option<u64>,
    /// Server resident memory at the end, KiB.
    pub server_rss_kib: Option<u64>,
    /// The generator's own CPU time, µs.
    pub gen_cpu_us: u64,
}

/// Everything `edgechat bench` reports.
#[derive(Debug, Clone)]
pub struct Report {
    pub mode: &'static str,
    /// Over TLS (`--tls`).
    pub tls: bool,
    pub addr: SocketAddr,
    pub conns: usize,
    pub size: usize,
    pub depth: usize,
    pub elapsed: Duration,
    pub msgs: u64,
    pub bytes: u64,
    pub mismatches: u64,
    pub failed: u64,
    /// Latency quantiles and mean, µs: p50, p99, p999, mean, max.
    pub latency_us: [f64; 5],
    pub usage: Usage,
    pub first_error: Option<String>,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// p50, p99, p999, mean and max of a histogram, in µs.
pub fn latency_us(h: &Histogram) -> [f64; 5] {
    [
        us(h.quantile(0.5)),
        us(h.quantile(0.99)),
        us(h.quantile(0.999)),
        us(h.mean()),
        us(h.max()),
    ]
}

impl Report {
    /// Mismatched echoes plus lost connections.
    pub fn errors(&self) -> u64 {
        self.mismatches + self.failed
    }

    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    fn msgs_per_sec(&self) -> f64 {
        self.msgs as f64 / self.secs()
    }

    /// Echoed bytes per second, in MB (10^6 bytes).
    fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / self.secs() / 1e6
    }

    /// CPU µs per echoed message, and CPU use in % of one core.
    fn cpu(&self, cpu_us: u64) -> (Option<f64>, f64) {
        let per_msg = (self.msgs > 0).then(|| cpu_us as f64 / self.msgs as f64);
        (per_msg, cpu_us as f64 / 1e4 / self.secs())
    }
}

impl Figures for Report {
    /// The human-readable summary, one line.
    fn summary(&self) -> String {
        let [p50, p99, p999, _, _] = self.latency_us;
        let over = if self.tls { " over TLS" } else { "" };
        let mut s = format!("{}{over} {} conns x {} B", self.mode, self.conns, self.size);
        if self.mode == "stream" {
            let _ = write!(s, " (depth {})", self.depth);
        }
        let _ = write!(
            s,
            ", {:.2} s: {:.0} msgs/s",
            self.secs(),
            self.msgs_per_sec()
        );
        if self.mode == "stream" {
            let _ = write!(s, ", {:.1} MB/s", self.mb_per_sec());
        }
        let _ = write!(s, ", p50 {p50:.0} us, p99 {p99:.0} us, p999 {p999:.0} us");
        if let Some(cpu) = self.usage.server_cpu_us {
            let (per_msg, pct) = self.cpu(cpu);
            let _ = write!(
                s,
                "; server cpu {:.2} us/msg ({pct:.0}%)",
                per_msg.unwrap_or(0.0)
            );
        }
        if let Some(rss) = self.usage.server_rss_kib {
            let _ = write!(s, ", rss {:.1} MiB", rss as f64 / 1024.0);
        }
        let (per_msg, pct) = self.cpu(self.usage.gen_cpu_us);
        let _ = write!(
            s,
            "; generator cpu {:.2} us/msg ({pct:.0}%)",
            per_msg.unwrap_or(0.0)
        );
        let _ = write!(s, "; {} errors", self.errors());
        if let Some(e) = &self.first_error {
            let _ = write!(s, " (first: {e})");
        }
        s
    }

    /// One JSON object with every figure; absent figures are `null`.
    fn json(&self) -> String {
        let [p50, p99, p999, mean, max] = self.latency_us;
        let (server_per_msg, server_pct) = match self.usage.server_cpu_us {
            Some(cpu) => {
                let (per_msg, pct) = self.cpu(cpu);
                (per_msg, Some(pct))
            }
            None => (None, None),
        };
        let (gen_per_msg, gen_pct) = self.cpu(self.usage.gen_cpu_us);
        let mut s = String::with_capacity(512);
        let _ = write!(
            s,
            "{{\"mode\":\"{}\",\"addr\":\"{}\",\"conns\":{},\"size\":{},\"depth\":{},\
             \"secs\":{:.3},\"msgs\":{},\"bytes\":{},\"errors\":{},\"mismatches\":{},\
             \"failed_conns\":{},\"msgs_per_sec\":{:.1},\"mb_per_sec\":{:.3},\
             \"p50_us\":{p50:.1},\"p99_us\":{p99:.1},\"p999_us\":{p999:.1},\
             \"mean_us\":{mean:.1},\"max_us\":{max:.1},",
            self.mode,
            self.addr,
            self.conns,
            self.size,
            self.depth,
            self.secs(),
            self.msgs,
            self.bytes,
            self.errors(),
            self.mismatches,
            self.failed,
            self.msgs_per_sec(),
            self.mb_per_sec(),
        );
        let _ = write!(
            s,
            "\"server_cpu_us\":{},\"server_cpu_us_per_msg\":{},\"server_cpu_pct\":{},\
             \"server_rss_kib\":{},\"gen_cpu_us\":{},\"gen_cpu_us_per_msg\":{},\
             \"gen_cpu_pct\":{gen_pct:.1},\"first_error\":{}}}",
            num(self.usage.server_cpu_us.map(|v| v as f64), 0),
            num(server_per_msg, 3),
            num(server_pct, 1),
            num(self.usage.server_rss_kib.map(|v| v as f64), 0),
            self.usage.gen_cpu_us,
            num(gen_per_msg, 3),
            self.first_error
                .as_deref()
                .map_or("null".into(), json_string),
        );
        s
    }
}

/// A JSON number with `places` decimals, or `null`.
pub(super) fn num(v: Option<f64>, places: usize) -> String {
    v.map_or("null".into(), |v| format!("{v:.places$}"))
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
pub(super) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut h = Histogram::default();
        for ns in [100_000, 200_000, 300_000, 400_000] {
            h.record(ns);
        }
        Report {
            mode: "pingpong",
            tls: false,
            addr: "127.0.0.1:7000".parse().unwrap(),
            conns: 4,
            size: 64,
            depth: 1,
            elapsed: Duration::from_secs(2),
            msgs: 4,
            bytes: 256,
            mismatches: 0,
            failed: 0,
            latency_us: latency_us(&h),
            usage: Usage {
                server_cpu_us: Some(40),
                server_rss_kib: Some(2048),
                gen_cpu_us: 20,
            },
            first_error: None,
        }
    }

    #[test]
    fn summary_reads_like_the_docs() {
        let s = sample().summary();
        assert!(
            s.starts_with("pingpong 4 conns x 64 B, 2.00 s: 2 msgs/s, p50 200 us"),
            "{s}"
        );
        assert!(s.contains("server cpu 10.00 us/msg"), "{s}");
        assert!(s.contains("rss 2.0 MiB"), "{s}");
        assert!(s.contains("generator cpu 5.00 us/msg"), "{s}");
        assert!(s.ends_with("; 0 errors"), "{s}");
        let tls = Report {
            tls: true,
            ..sample()
        }
        .summary();
        assert!(tls.starts_with("pingpong over TLS 4 conns x 64 B"), "{tls}");
    }

    #[test]
    fn json_has_every_figure() {
        let j = sample().json();
        for part in [
            "{\"mode\":\"pingpong\"",
            "\"msgs\":4,",
            "\"errors\":0,",
            "\"msgs_per_sec\":2.0,",
            "\"server_cpu_us_per_msg\":10.000,",
            "\"server_rss_kib\":2048,",
            "\"first_error\":null}",
        ] {
            assert!(j.contains(part), "{part} missing from {j}");
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a \"b\" \\ \n"), "\"a \\\"b\\\" \\\\ \\u000a\"");
    }
}
