//! `--log-level`: each level shows its own lines and the ones more severe,
//! and hides the rest. The server is started under `prlimit` with a low
//! descriptor limit, which makes it warn at start-up (`--max-clients`
//! lowered to fit); `listening on`, `serving as pid` and `shutdown
//! complete` are info lines. At `warn` no `listening on` line says where
//! the server listens, so its port is read from `/proc` instead.

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::*;

/// The port of the TCP socket `pid` listens on, from its descriptors
/// (`/proc/PID/fd`, `socket:[INODE]`) and its network namespace's socket
/// table (`/proc/PID/net/tcp`, state `0A` = LISTEN).
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| {
            let target = std::fs::read_link(e.ok()?.path()).ok()?;
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[3] != "0A" || !inodes.contains(f[9]) {
            return None;
        }
        u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()
    })
}

/// Runs an echo server at `--log-level level` until it has served one
/// client, stops it with SIGTERM, and returns everything it wrote to
/// stderr.
fn stderr_at(level: &str) -> String {
    let mut child = Command::new("prlimit")
        .args(["--nofile=64:64", "--", BIN, "serve", "--mode", "echo"])
        .args(["--tcp", "127.0.0.1:0", "--log-level", level])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn prlimit edgechat");
    let mut stderr = child.stderr.take().expect("stderr");
    let log = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let pid = child.id();
    let mut port = None;
    wait_until("the server listens", || {
        port = listening_port(pid);
        port.is_some()
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], port.expect("a port")));
    // Served: start-up, with its log lines, is over.
    assert_echo(&mut connect(addr), b"up");
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("kill(2) the server");
    let status = with_timeout("the server's exit", move || {
        child.wait().expect("waitpid(2)")
    });
    let log = log.join().expect("stderr reader");
    assert_eq!(status.code(), Some(0), "exit status; stderr:\n{log}");
    log
}

const WARNING: &str = " WARN --max-clients 10000 does not fit RLIMIT_NOFILE 64";
const INFO: [&str; 3] = [
    " INFO listening on tcp://127.0.0.1:",
    " INFO serving as pid ",
    " INFO shutdown complete",
];

#[test]
fn info_shows_info_and_warnings() {
    let log = stderr_at("info");
    assert!(log.contains(WARNING), "{log}");
    for line in INFO {
        assert!(log.contains(line), "no {line:?} at info:\n{log}");
    }
}

#[test]
fn warn_hides_info_lines() {
    let log = stderr_at("warn");
    assert!(log.contains(WARNING), "{log}");
    assert!(!log.contains("listening on"), "{log}");
    assert!(!log.contains(" INFO "), "{log}");
}

#[test]
fn error_hides_warnings_too() {
    let log = stderr_at("error");
    assert!(!log.contains(" WARN "), "{log}");
    assert!(!log.contains(" INFO "), "{log}");
}

/// At `error` an error line still shows: the log file's folder is renamed
/// away, so SIGHUP cannot reopen the log and says so (in the old file,
/// which the rename carried along), while the info line of the reload
/// that did happen stays hidden.
#[test]
fn error_shows_errors() {
    let base = std::env::temp_dir().join(format!("edgechat-loglevel-{}", std::process::id()));
    let (dir, moved) = (base.join("logs"), base.join("moved"));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut child = Command::new(BIN)
        .args(["serve", "--mode", "echo", "--tcp", "127.0.0.1:0"])
        .args(["--log-level", "error", "--log"])
        .arg(dir.join("edgechat.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn edgechat");
    let pid = child.id();
    wait_until("the server listens", || listening_port(pid).is_some());
    std::fs::rename(&dir, &moved).expect("rename the log folder");
    let server = Pid::from_raw(pid as i32);
    kill(server, Signal::SIGHUP).expect("kill(2) SIGHUP");
    let old = moved.join("edgechat.log");
    let mut log = String::new();
    wait_until("the error line", || {
        log = std::fs::read_to_string(&old).unwrap_or_default();
        log.contains(" ERROR SIGHUP: log not reopened")
    });
    kill(server, Signal::SIGTERM).expect("kill(2) SIGTERM");
    let status = with_timeout("the server's exit", move || {
        child.wait().expect("waitpid(2)")
    });
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(&old).expect("the old log");
    assert!(!log.contains(" INFO "), "{log}");
    assert!(!log.contains(" WARN "), "{log}");
    let _ = std::fs::remove_dir_all(&base);
}
