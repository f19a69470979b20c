//! What `/proc` says about a process: CPU time used (`/proc/PID/stat`,
//! fields 14 and 15, `utime` and `stime`, in clock ticks), resident memory
//! now and at its peak (`/proc/PID/status`, the `VmRSS:` and `VmHWM:`
//! lines) and open descriptors (the entries of `/proc/PID/fd`). The parsers
//! are pure and tested in-file; the readers only add the file name to
//! errors.

use std::path::PathBuf;

use crate::error::{Context, Error, Result};
use crate::sys::stdio;

/// Which process to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    /// The load generator itself (`/proc/self`).
    Current,
    /// Another process, the server.
    Other(u32),
}

impl Pid {
    fn path(self, file: &str) -> PathBuf {
        match self {
            Pid::Current => PathBuf::from(format!("/proc/self/{file}")),
            Pid::Other(pid) => PathBuf::from(format!("/proc/{pid}/{file}")),
        }
    }
}

fn read(path: PathBuf) -> Result<String> {
    std::fs::read_to_string(&path).map_err(|source| Error::File { path, source })
}

/// CPU time (user + system) the process has used so far, in microseconds.
pub fn cpu_micros(pid: Pid) -> Result<u64> {
    let path = pid.path("stat");
    let text = read(path.clone())?;
    let ticks = parse_cpu_ticks(&text).ok_or_else(|| Error::File {
        path,
        source: std::io::Error::other("no utime/stime fields"),
    })?;
    let hz = stdio::clock_ticks_per_sec().sys("sysconf(_SC_CLK_TCK)")?;
    Ok(ticks * 1_000_000 / hz)
}

/// Resident memory of the process, in KiB.
pub fn rss_kib(pid: Pid) -> Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// The most resident memory the process has had so far (its high-water
/// mark), in KiB.
pub fn peak_rss_kib(pid: Pid) -> Result<u64> {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: Pid, key: &str) -> Result<u64> {
    let path = pid.path("status");
    let text = read(path.clone())?;
    parse_status_kib(&text, key).ok_or_else(|| Error::File {
        path,
        source: std::io::Error::other(format!("no {key} line")),
    })
}

/// How many descriptors the process holds: the entries of `/proc/PID/fd`.
pub fn fd_count(pid: Pid) -> Result<u64> {
    let path = pid.path("fd");
    let dir = std::fs::read_dir(&path).map_err(|source| Error::File {
        path: path.clone(),
        source,
    })?;
    Ok(dir.filter(|e| e.is_ok()).count() as u64)
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name
/// (field 2) is in parentheses and may hold spaces or `)`, so fields are
/// counted from the last `)`: after it come field 3 (state), ..., 14
/// (utime), 15 (stime).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `KEY   1234 kB` line of `/proc/PID/status` (`VmRSS:`, `VmHWM:`), in KiB.
fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_count_fields_from_the_last_paren() {
        let stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 120 0 0 0 \
                    17 5 0 0 20 0 1 0 123 4567 89 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(22));
        assert_eq!(parse_cpu_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn vm_rss_reads_the_kib_figure() {
        let status = "Name:\tedgechat\nVmPeak:\t  9000 kB\nVmHWM:\t    4096 kB\n\
                      VmRSS:\t    3172 kB\nThreads:\t1\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(3172));
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(4096));
        assert_eq!(parse_status_kib("Name:\tkthreadd\n", "VmRSS:"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(rss_kib(Pid::Current).unwrap() > 0);
        assert!(peak_rss_kib(Pid::Current).unwrap() > 0);
        assert!(
            fd_count(Pid::Current).unwrap() >= 3,
            "stdin, stdout, stderr at least"
        );
        cpu_micros(Pid::Current).unwrap();
    }
}
