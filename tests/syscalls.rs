//! The server makes its syscalls in the socket tutorial's order, as
//! `strace` shows them: `scripts/trace-syscalls.sh` runs it under strace and
//! prints each traced call's name at its first appearance.

mod common;

use std::process::Command;

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
