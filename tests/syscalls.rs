//! The server makes its syscalls in the socket tutorial's order, as
//! `strace` shows them: `scripts/trace-syscalls.sh` runs it under strace and
//! prints each traced call's name at its first appearance.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::*;

/// The tutorial's order; the trace must hold it as a subsequence.
const ORDER: [&str; 8] = [
    "socket",
    "setsockopt",
    "bind",
    "listen",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "accept4",
];

fn strace_installed() -> bool {
    Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn syscalls_follow_the_socket_tutorial_order() {
    assert!(
        strace_installed(),
        "strace is not installed: install it (apt-get install -y strace) to run this test"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/trace-syscalls.sh");
    let out = with_timeout("trace-syscalls.sh", move || {
        Command::new("bash").arg(script).arg(BIN).output().unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "trace-syscalls.sh failed ({}):\n{stderr}",
        out.status
    );
    let names: Vec<&str> = stdout.lines().map(str::trim).collect();
    let mut want = ORDER.iter().peekable();
    for name in &names {
        if want.peek() == Some(&name) {
            want.next();
        }
    }
    assert!(
        want.peek().is_none(),
        "syscalls in order of first use were {names:?}; expected {ORDER:?} in that order \
         (missing from {:?} on)",
        want.peek().unwrap()
    );
}

/// The server under `strace -f -e trace=CALLS -o TRACE`, and the address
/// it listens on. Stop it with [`stop_traced`].
fn traced(calls: &str, trace: &std::path::Path, args: &[&str]) -> (Child, SocketAddr) {
    let mut strace = Command::new("strace")
        .args(["-f", "-e", &format!("trace={calls}"), "-o"])
        .arg(trace)
        .arg(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strace");
    let mut lines = BufReader::new(strace.stderr.take().expect("stderr")).lines();
    let addr = with_timeout("the listening line", move || loop {
        let line = lines.next().expect("a log line").expect("stderr");
        if let Some((_, a)) = line.split_once("listening on tcp://") {
            break a.trim().parse().expect("address");
        }
    });
    (strace, addr)
}

/// SIGTERM to the traced server, then the trace once strace has exited.
fn stop_traced(mut strace: Child, trace: &std::path::Path) -> String {
    let pid = strace.id();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .expect("strace's children");
    let server: i32 = children.trim().parse().expect("the server's pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill(2)");
    let status = with_timeout("strace's exit", move || strace.wait().expect("wait"));
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(trace).expect("the trace");
    let _ = std::fs::remove_file(trace);
    text
}

fn trace_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("edgechat-{name}-{}.trace", std::process::id()))
}

/// A new connection costs no `recv` until the kernel says it is readable:
/// registering a socket with epoll reports data that arrived before the
/// accept, so no read is tried on speculation. Under `strace`, clients
/// that connect and leave without a byte, and clients that send one
/// message, make the server see no `recvfrom` that fails with `EAGAIN`
/// (a speculative first read cost one per connection).
#[test]
fn a_new_connection_costs_no_speculative_read() {
    const QUIET: usize = 20;
    assert!(strace_installed(), "strace is not installed");
    let trace = trace_file("recv");
    let (strace, addr) = traced(
        "recvfrom",
        &trace,
        &["serve", "--mode", "echo", "--tcp", "127.0.0.1:0"],
    );
    // The quiet clients stay until the server has accepted them (it has
    // served a client that came after them), then leave.
    let quiet: Vec<_> = (0..QUIET).map(|_| connect(addr)).collect();
    for _ in 0..QUIET {
        assert_echo(&mut connect(addr), b"one message");
    }
    drop(quiet);
    assert_echo(&mut connect(addr), b"served");
    let text = stop_traced(strace, &trace);
    let reads = text.matches("recvfrom(").count();
    let eagain = text.lines().filter(|l| l.contains("EAGAIN")).count();
    assert!(
        reads >= 2 * QUIET,
        "too few reads traced ({reads}):\n{text}"
    );
    assert!(
        eagain < QUIET,
        "{eagain} reads came back EAGAIN for {QUIET} quiet clients:\n{text}"
    );
}

/// One send per receiver per turn, whatever the burst: a sender's 256
/// lines, written at once, reach each of the room's receivers in at most
/// two `send`/`sendmsg` calls (one, unless the lines arrived in two
/// reads), counted under `strace`.
#[test]
fn a_receiver_owed_256_lines_in_a_turn_gets_them_in_one_send() {
    const RECEIVERS: usize = 4;
    const LINES: usize = 256;
    assert!(strace_installed(), "strace is not installed");
    let trace = trace_file("send");
    let (strace, addr) = traced(
        "sendto,sendmsg",
        &trace,
        &["serve", "--tcp", "127.0.0.1:0", "--idle-timeout", "0"],
    );
    let mut receivers: Vec<_> = (0..RECEIVERS)
        .map(|_| BufReader::new(connect(addr)))
        .collect();
    let mut sender = connect(addr);
    // Everyone has everyone's JOIN: the room is complete.
    let mut hello = String::new();
    BufReader::new(&sender)
        .read_line(&mut hello)
        .expect("HELLO");
    for (i, r) in receivers.iter_mut().enumerate() {
        for _ in 0..RECEIVERS - i + 1 {
            let mut line = String::new();
            r.read_line(&mut line).expect("HELLO or JOIN");
        }
    }
    let burst: String = (0..LINES).map(|i| format!("burst line {i:03}\n")).collect();
    sender.write_all(burst.as_bytes()).expect("the burst");
    for r in &mut receivers {
        for i in 0..LINES {
            let mut line = String::new();
            r.read_line(&mut line).expect("a burst line");
            assert!(line.ends_with(&format!("burst line {i:03}\n")), "{line:?}");
        }
    }
    let text = stop_traced(strace, &trace);
    let sends = text
        .lines()
        .filter(|l| l.contains("MSG guest") && (l.contains("sendto(") || l.contains("sendmsg(")))
        .count();
    assert!(
        sends <= 2 * RECEIVERS,
        "{sends} sends of the burst for {RECEIVERS} receivers:\n{text}"
    );
    assert!(
        sends >= RECEIVERS,
        "the burst's sends were not traced:\n{text}"
    );
}
