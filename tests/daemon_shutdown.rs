//! How a daemon ends, read from its exit status: this test process adopts
//! the daemons it starts (`PR_SET_CHILD_SUBREAPER`), so it can `waitpid`
//! them. A SIGTERM at start-up, as soon as the pidfile names the daemon;
//! `--shutdown-timeout` cutting a client that never reads; SIGINT as a
//! graceful shutdown, and a second SIGINT cutting a stuck one.

mod chatkit;
mod daemonkit;

use std::time::Instant;

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use daemonkit::{adopt_daemons, daemon_args, edgechat, read_pid, reap, TempDir, WAIT};

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
