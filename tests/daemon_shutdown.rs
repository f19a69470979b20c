//! How a daemon ends, read from its exit status: this test process adopts
//! the daemons it starts (`PR_SET_CHILD_SUBREAPER`), so it can `waitpid`
//! them. A SIGTERM at start-up, as soon as the pidfile names the daemon;
//! `--shutdown-timeout` cutting a client that never reads; SIGINT as a
//! graceful shutdown, and a second SIGINT cutting a stuck one.

mod chatkit;
mod common;
mod daemonkit;
#[path = "daemonkit/stuck.rs"]
mod stuck;

use std::io::Read;
use std::time::Instant;

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use daemonkit::{
    adopt_daemons, daemon_args, edgechat, read_pid, reap, wait_until, Daemon, TempDir, WAIT,
};

fn log(d: &Daemon) -> String {
    std::fs::read_to_string(&d.log).unwrap_or_default()
}

/// The daemon exited with status 0 and removed its pidfile.
fn assert_clean_exit(d: &Daemon) {
    let status = reap(d.pid);
    assert_eq!(
        status,
        WaitStatus::Exited(Pid::from_raw(d.pid), 0),
        "{}",
        log(d)
    );
    assert!(!d.pidfile.exists(), "pidfile left behind");
}

/// A daemon in `dir` with `--sndbuf 4096`, `--shutdown-timeout SECS` and
/// a `--linger-timeout` no test waits for, and a client of it owed lines
/// it never reads (with the client that sent them): [`stuck::stuck_reader`].
fn stuck_daemon(dir: &TempDir, secs: &str) -> (Daemon, chatkit::Client, chatkit::Client) {
    let args = [
        "--sndbuf",
        "4096",
        "--shutdown-timeout",
        secs,
        "--linger-timeout",
        "600",
    ];
    let d = Daemon::start(dir, &args);
    let (stuck, writer) = stuck::stuck_reader(d.addr);
    (d, stuck, writer)
}

#[test]
fn shutdown_timeout_cuts_a_client_that_never_reads() {
    adopt_daemons();
    let dir = TempDir::new("cut");
    let (d, _stuck, _writer) = stuck_daemon(&dir, "1");
    d.signal(libc::SIGTERM);
    // Nothing but --shutdown-timeout can end this shutdown before WAIT.
    assert_clean_exit(&d);
    let log = log(&d);
    assert!(log.contains("shutdown timeout: closing "), "{log}");
    assert!(!log.contains("shutdown complete"), "{log}");
}

#[test]
fn second_sigint_cuts_a_stuck_shutdown() {
    adopt_daemons();
    let dir = TempDir::new("int-twice");
    let (d, _stuck, _writer) = stuck_daemon(&dir, "600");
    d.signal(libc::SIGINT);
    // Once the first is handled: two sent at once may merge into one.
    wait_until("the shutdown to begin", || {
        log(&d).contains("shutting down")
    });
    d.signal(libc::SIGINT);
    assert_clean_exit(&d);
    let log = log(&d);
    assert!(log.contains("second signal: exiting"), "{log}");
}

#[test]
fn sigint_is_a_graceful_chat_shutdown() {
    adopt_daemons();
    let dir = TempDir::new("int");
    let d = Daemon::start(&dir, &[]);
    let mut c = chatkit::Client::connect(d.addr);
    c.line();
    c.expect_nothing();
    d.signal(libc::SIGINT);
    c.expect(&["ERR server-shutdown"]);
    let mut rest = Vec::new();
    c.r.read_to_end(&mut rest).expect("a clean EOF");
    assert!(rest.is_empty(), "{rest:?}");
    assert_clean_exit(&d);
    assert!(log(&d).contains("shutdown complete"));
}

/// Starts a daemon with TLS (its certificates are loaded between the
/// pidfile and the signalfd, which widens that window) and sends SIGTERM
/// the moment the pidfile names it, again and again: the signal must wait
/// for the loop, which shuts down cleanly, never kill the daemon with its
/// pidfile left behind.
#[test]
fn sigterm_as_soon_as_the_pidfile_names_the_daemon_is_a_clean_shutdown() {
    adopt_daemons();
    let repo = env!("CARGO_MANIFEST_DIR");
    let (cert, key) = (
        format!("{repo}/certs/server.crt"),
        format!("{repo}/certs/server.key"),
    );
    let tls = ["--tls", "127.0.0.1:0", "--cert", &cert, "--key", &key];
    for round in 0..10 {
        let dir = TempDir::new("early-term");
        let pidfile = dir.path("ed.pid");
        let fg = edgechat(&dir.0, &daemon_args(&tls))
            .spawn()
            .expect("spawn edgechat");
        let end = Instant::now() + WAIT;
        let pid = loop {
            // No sleep: the window is the start-up's last milliseconds.
            if let Some(pid) = read_pid(&pidfile) {
                break pid;
            }
            assert!(Instant::now() < end, "round {round}: no pid in the pidfile");
            std::thread::yield_now();
        };
        nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGTERM).expect("kill");
        let status = reap(pid);
        let fg = fg.wait_with_output().expect("foreground");
        let log = std::fs::read_to_string(dir.path("ed.log")).unwrap_or_default();
        assert_eq!(
            status,
            WaitStatus::Exited(Pid::from_raw(pid), 0),
            "round {round}: {log}"
        );
        assert!(!pidfile.exists(), "round {round}: pidfile left behind");
        assert_eq!(
            fg.status.code(),
            Some(0),
            "round {round}: {}",
            String::from_utf8_lossy(&fg.stderr)
        );
        assert!(log.contains("shutdown complete"), "round {round}: {log}");
    }
}
