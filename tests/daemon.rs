//! `serve --daemon` with real forks, checked from outside through `/proc`:
//! the daemon(7) steps, readiness, start-up failures reported by the
//! foreground process, and the pidfile's lock.

mod chatkit;
mod daemonkit;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;

use daemonkit::{
    alive, daemon_args, edgechat, fds, processes_with, read_pid, run, stat, status, wait_until,
    Daemon, TempDir,
};

/// SIGPIPE (13) is the only signal the server ignores.
const IGNORED: &str = "0000000000001000";
/// HUP (1), INT (2), USR1 (10), TERM (15): blocked, read from the signalfd.
const BLOCKED: &str = "0000000000004203";

#[test]
fn daemon_is_detached_the_daemon7_way() {
    let dir = TempDir::new("detach");
    let mut cmd = edgechat(&dir.0, &daemon_args(&[]));
    // SAFETY: between fork and exec only async-signal-safe calls are made.
    unsafe {
        cmd.pre_exec(|| {
            // An inherited descriptor, an ignored and a blocked signal:
            // the daemon must shed all three.
            libc::dup2(2, 50);
            libc::signal(libc::SIGUSR2, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let d = Daemon::start_with(&dir, cmd);
    let f = stat(d.pid).expect("stat");
    assert_ne!(f[3], d.pid.to_string(), "a session leader");
    assert_ne!(f[2], d.pid.to_string(), "a process group leader");
    assert_eq!(f[4], "0", "has a controlling terminal");
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", d.pid)).expect("cwd");
    assert_eq!(cwd.to_str(), Some("/"));
    assert_eq!(status(d.pid, "Umask").as_deref(), Some("0027"));
    assert_eq!(status(d.pid, "SigIgn").as_deref(), Some(IGNORED));
    assert_eq!(status(d.pid, "SigBlk").as_deref(), Some(BLOCKED));

    let open = fds(d.pid);
    for (fd, target) in &open[..3] {
        assert!(*fd <= 2 && target == "/dev/null", "{open:?}");
    }
    let mut rest: Vec<String> = open[3..]
        .iter()
        .map(|(_, t)| match t.split_once(":[") {
            Some(("socket", _)) => "socket".to_string(),
            _ => t.clone(),
        })
        .collect();
    rest.sort();
    let mut want = vec![
        "/dev/null".to_string(), // the reserve descriptor for EMFILE
        "anon_inode:[eventpoll]".to_string(),
        "anon_inode:[signalfd]".to_string(),
        d.log.to_string_lossy().into_owned(),
        d.pidfile.to_string_lossy().into_owned(),
        "socket".to_string(), // the TCP listener
    ];
    want.sort();
    assert_eq!(rest, want, "{open:?}");
}

#[test]
fn foreground_returns_only_once_the_port_accepts() {
    let dir = TempDir::new("ready");
    let d = Daemon::start(&dir, &[]);
    // No retry: the listener must already be there.
    let mut c = chatkit::Client::connect(d.addr);
    assert!(c.line().starts_with("HELLO guest"));
    assert_eq!(read_pid(&d.pidfile), Some(d.pid));
    // Relative paths were resolved before chdir("/"): the files are here.
    assert!(dir.path("ed.log").exists());
}

#[test]
fn address_in_use_fails_in_the_foreground_leaving_nothing() {
    let dir = TempDir::new("inuse");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let pidfile = dir.path("ed.pid");
    let pidfile_arg = pidfile.to_string_lossy().into_owned();
    let args = [
        "serve",
        "--daemon",
        "--pidfile",
        &pidfile_arg,
        "--tcp",
        &addr,
    ];
    let ran = run(edgechat(&dir.0, &args));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let want = format!("edgechat: listen tcp://{addr}: Address already in use");
    assert!(ran.stderr.starts_with(&want), "{}", ran.stderr);
    assert!(!pidfile.exists(), "pidfile left behind");
    assert_eq!(processes_with(&pidfile_arg), Vec::<i32>::new());
}

#[test]
fn unwritable_log_fails_in_the_foreground() {
    let dir = TempDir::new("badlog");
    let args = [
        "serve",
        "--daemon",
        "--pidfile",
        "ed.pid",
        "--log",
        "no/such/dir/ed.log",
        "--tcp",
        "127.0.0.1:0",
    ];
    let ran = run(edgechat(&dir.0, &args));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let want = format!("edgechat: log {}", dir.path("no/such/dir/ed.log").display());
    assert!(ran.stderr.starts_with(&want), "{}", ran.stderr);
    assert!(!dir.path("ed.pid").exists(), "pidfile left behind");
}

#[test]
fn daemon_without_pidfile_is_refused() {
    let dir = TempDir::new("nopid");
    let ran = run(edgechat(
        &dir.0,
        &["serve", "--daemon", "--tcp", "127.0.0.1:0"],
    ));
    assert_ne!(ran.code, 0);
    assert!(ran.stderr.contains("--pidfile"), "{}", ran.stderr);
}

#[test]
fn second_instance_is_refused_naming_the_pid() {
    let dir = TempDir::new("second");
    let first = Daemon::start(&dir, &[]);
    let ran = run(edgechat(&dir.0, &daemon_args(&[])));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let want = format!(
        "edgechat: pidfile {}: held by running pid {}",
        first.pidfile.display(),
        first.pid
    );
    assert_eq!(ran.stderr.trim_end(), want);
    assert!(alive(first.pid));
    assert_eq!(read_pid(&first.pidfile), Some(first.pid));
    chatkit::Client::connect(first.addr).line();
}

#[test]
fn stale_pidfile_after_kill_9_is_taken_over() {
    let dir = TempDir::new("stale");
    let first = Daemon::start(&dir, &[]);
    first.signal(libc::SIGKILL);
    wait_until("the killed daemon to go", || !alive(first.pid));
    assert_eq!(read_pid(&first.pidfile), Some(first.pid), "stale file kept");
    std::fs::remove_file(&first.log).expect("remove log");
    let second = Daemon::start(&dir, &[]);
    assert_ne!(second.pid, first.pid);
    assert_eq!(read_pid(&second.pidfile), Some(second.pid));
    chatkit::Client::connect(second.addr).line();
}
