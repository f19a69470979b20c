//! A running daemon's life: SIGHUP reopens the log, SIGUSR1 logs stats,
//! SIGTERM shuts down gracefully and removes the pidfile, `edgechat stop`
//! stops and reports, and systemd hears about it all on `NOTIFY_SOCKET`.

mod chatkit;
mod common;
mod daemonkit;
#[path = "daemonkit/stuck.rs"]
mod stuck;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::process::{Command, Stdio};

use daemonkit::{alive, edgechat, read_pid, run, wait_until, Daemon, TempDir, WAIT};

fn log_has(path: &std::path::Path, needle: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle))
}

#[test]
fn sighup_after_rename_opens_a_new_log_and_sigusr1_logs_stats() {
    let dir = TempDir::new("hup");
    let d = Daemon::start(&dir, &[]);
    let rotated = dir.path("ed.log.1");
    std::fs::rename(&d.log, &rotated).expect("rename log");
    d.signal(libc::SIGHUP);
    wait_until("a new log file", || log_has(&d.log, "log reopened"));
    d.signal(libc::SIGUSR1);
    wait_until("the stats line", || log_has(&d.log, "stats: clients=0"));
    assert!(log_has(&rotated, "listening on tcp://"));
    assert!(!log_has(&rotated, "stats:"), "written to the rotated file");
}

#[test]
fn sigterm_delivers_queued_lines_then_shutdown_and_removes_the_pidfile() {
    let dir = TempDir::new("term");
    let d = Daemon::start(&dir, &["--sndbuf", "4096"]);
    // Small buffers at both ends of a's socket, and a reads nothing until
    // the shutdown has begun: what the kernel cannot hold waits in the
    // server's queue.
    let (mut a, mut b) = stuck::stuck_reader(d.addr);
    let nick = b.nick.clone();
    d.signal(libc::SIGTERM);
    for i in 0..stuck::LINES {
        assert_eq!(a.line(), format!("MSG {nick} line {i}"));
    }
    a.expect(&["ERR server-shutdown"]);
    a.expect_fin();
    b.expect(&["ERR server-shutdown"]);
    b.expect_fin();
    wait_until("the daemon to exit", || !alive(d.pid));
    assert!(!d.pidfile.exists(), "pidfile left behind");
    assert!(log_has(&d.log, "shutdown complete"));
}

#[test]
fn stop_stops_then_reports_not_running() {
    let dir = TempDir::new("stop");
    let d = Daemon::start(&dir, &[]);
    let ran = run(edgechat(&dir.0, &["stop", "--pidfile", "ed.pid"]));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.stdout.trim_end(), format!("stopped pid {}", d.pid));
    assert!(!d.pidfile.exists(), "pidfile left behind");
    wait_until("the daemon to exit", || !alive(d.pid));
    let ran = run(edgechat(&dir.0, &["stop", "--pidfile", "ed.pid"]));
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("not running"), "{}", ran.stderr);
}

#[test]
fn stop_on_a_stale_pidfile_is_not_running_and_signals_nobody() {
    let dir = TempDir::new("stop-stale");
    // A live process whose pid is in the file, but nobody holds the lock:
    // the lock, not the file, says whether the server runs.
    let mut bystander = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    std::fs::write(dir.path("ed.pid"), format!("{}\n", bystander.id())).expect("write");
    let ran = run(edgechat(&dir.0, &["stop", "--pidfile", "ed.pid"]));
    let untouched = bystander.try_wait().expect("wait").is_none();
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let want = "edgechat: not running (no process holds pidfile ed.pid)";
    assert_eq!(ran.stderr.trim_end(), want);
    assert!(untouched, "stop signalled the pid of an unlocked pidfile");
}

#[test]
fn stop_on_a_locked_pidfile_without_a_pid_cannot_tell() {
    let dir = TempDir::new("stop-nopid");
    let path = dir.path("ed.pid");
    let file = std::fs::File::create(&path).expect("create");
    // Held the way a server holds it, but no pid written (yet).
    let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .expect("flock");
    let ran = run(edgechat(&dir.0, &["stop", "--pidfile", "ed.pid"]));
    drop(held);
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    let want = "edgechat: cannot stop: pidfile ed.pid: locked, but no pid in it";
    assert_eq!(ran.stderr.trim_end(), want);
}

#[test]
fn stop_help_lists_every_exit_status() {
    let dir = TempDir::new("stop-help");
    let ran = run(edgechat(&dir.0, &["stop", "--help"]));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    for code in [
        "0  stopped",
        "1  not running",
        "2  usage error",
        "3  could not",
        "4  still running",
    ] {
        assert!(ran.stdout.contains(code), "no {code:?} in\n{}", ran.stdout);
    }
}

#[test]
fn stop_usage_error_is_2_and_no_other_outcome_is() {
    let dir = TempDir::new("stop-usage");
    let ran = run(edgechat(&dir.0, &["stop"]));
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("--pidfile"), "{}", ran.stderr);
    let ran = run(edgechat(&dir.0, &["stop", "--pidfile", "none.pid"]));
    assert_eq!(ran.code, 1, "not running: {}", ran.stderr);
}

#[test]
fn stop_gives_up_on_a_process_that_ignores_sigterm() {
    let has_flock = Command::new("flock")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_flock {
        return; // no flock(1) to build the stand-in with
    }
    let dir = TempDir::new("stuck");
    let pidfile = dir.path("ed.pid");
    // A stand-in that holds the lock and ignores SIGTERM: the trap comes
    // first, so the pid is never visible before SIGTERM is ignored (an
    // ignored signal stays ignored across exec).
    let script =
        r#"trap "" TERM; exec 9<>"$1"; flock -n 9 || exit 3; echo $$ > "$1"; exec sleep 30"#;
    let mut holder = Command::new("bash")
        .args(["-c", script, "bash"])
        .arg(&pidfile)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn bash");
    wait_until("the stand-in's pid", || read_pid(&pidfile).is_some());
    let ran = run(edgechat(
        &dir.0,
        &["stop", "--pidfile", "ed.pid", "--timeout", "1"],
    ));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(ran.code, 4, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("did not stop within 1 s"),
        "{}",
        ran.stderr
    );
}

/// Receives one datagram as text, failing after [`WAIT`].
fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("no sd_notify message in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A foreground server with `NOTIFY_SOCKET` set to `target`.
fn notified_server(dir: &TempDir, target: &str) -> std::process::Child {
    edgechat(
        &dir.0,
        &["serve", "--tcp", "127.0.0.1:0", "--pidfile", "ed.pid"],
    )
    .env("NOTIFY_SOCKET", target)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn edgechat")
}

#[test]
fn sd_notify_ready_reloading_stopping() {
    let dir = TempDir::new("notify");
    let path = dir.path("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    sock.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut child = notified_server(&dir, &path.to_string_lossy());
    let pid = child.id() as i32;
    let kill = |sig| {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    };
    let ready = recv(&sock);
    let pidfile_ok = read_pid(&dir.path("ed.pid")) == Some(pid);
    kill(libc::SIGHUP);
    let reloading = recv(&sock);
    let ready_again = recv(&sock);
    kill(libc::SIGTERM);
    let stopping = recv(&sock);
    let status = child.wait().expect("wait");
    assert_eq!(ready, "READY=1");
    assert!(pidfile_ok, "pidfile not written before READY=1");
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"));
    let usec = lines.next().and_then(|l| l.strip_prefix("MONOTONIC_USEC="));
    assert!(
        usec.is_some_and(|u| u.parse::<u64>().is_ok()),
        "{reloading}"
    );
    assert_eq!(ready_again, "READY=1");
    assert_eq!(stopping, "STOPPING=1");
    assert_eq!(status.code(), Some(0));
    assert!(!dir.path("ed.pid").exists(), "pidfile left behind");
}

#[test]
fn sd_notify_abstract_socket() {
    let dir = TempDir::new("notify-abstract");
    let name = format!("edgechat-test-{}", std::process::id());
    let addr = UnixAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
    let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract socket");
    sock.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut child = notified_server(&dir, &format!("@{name}"));
    let ready = recv(&sock);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ready, "READY=1");
}
