//! `serve --daemon` with real forks, checked from outside through `/proc`:
//! the daemon(7) steps, readiness, start-up failures reported by the
//! foreground process, and the pidfile's lock.

mod chatkit;
mod daemonkit;

use std::io::Read;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;

use daemonkit::{
    alive, daemon_args, edgechat, fds, finish, processes_with, read_pid, run, stat, status,
    wait_until, Daemon, TempDir,
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
    let ours = nix::unistd::getsid(None).expect("getsid");
    assert_ne!(
        f[3],
        ours.to_string(),
        "still in the session it was started in"
    );
    assert_ne!(f[2], d.pid.to_string(), "a process group leader");
    // No controlling terminal: `started_on_a_terminal_the_daemon_has_none`.
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

/// A pseudo-terminal (`openpty(3)`), both ends close-on-exec: the master,
/// the slave, and the slave's device number as `/proc/PID/stat` prints it
/// in `tty_nr`.
fn pty() -> (OwnedFd, OwnedFd, u64) {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let pty = nix::pty::openpty(None, None).expect("openpty");
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).expect("FD_CLOEXEC");
    }
    let rdev = nix::sys::stat::fstat(pty.slave.as_raw_fd())
        .expect("fstat the pty")
        .st_rdev;
    let (major, minor) = (libc::major(rdev) as u64, libc::minor(rdev) as u64);
    // The kernel's new_encode_dev, which fs/proc/array.c prints.
    let tty_nr = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
    (pty.master, pty.slave, tty_nr)
}

/// The foreground process is started as the leader of a session whose
/// controlling terminal is a pty; the daemon must have none. Its log is a
/// FIFO, so the daemon waits in `open` (before it can be ready) until the
/// test reads it: meanwhile the foreground is still alive and still leads
/// its session, so a daemon left in that session would show the pty too.
#[test]
fn started_on_a_terminal_the_daemon_has_none() {
    let dir = TempDir::new("tty");
    let fifo = dir.path("ed.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let (_master, slave, tty_nr) = pty();
    let pidfile = dir.path("ed.pid");
    let pidfile_arg = pidfile.to_string_lossy().into_owned();
    let mut cmd = edgechat(
        &dir.0,
        &[
            "serve",
            "--daemon",
            "--pidfile",
            &pidfile_arg,
            "--log",
            "ed.log",
            "--tcp",
            "127.0.0.1:0",
        ],
    );
    let tty = slave.as_raw_fd();
    // SAFETY: between fork and exec only async-signal-safe calls are made.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(tty, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let fg = cmd.spawn().expect("spawn edgechat");
    let fg_pid = fg.id() as i32;
    // Guards: the daemon is killed however the test ends.
    let mut d = Daemon {
        pid: 0,
        pidfile: pidfile.clone(),
        log: fifo.clone(),
        addr: "0.0.0.0:0".parse().expect("addr"),
    };
    // The daemon is the process of this test that is neither the
    // foreground nor its child (the session leader that forks it).
    wait_until("the daemon to be forked", || {
        let others: Vec<i32> = processes_with(&pidfile_arg)
            .into_iter()
            .filter(|&p| p != fg_pid && stat(p).is_some_and(|f| f[1] != fg_pid.to_string()))
            .collect();
        d.pid = others.first().copied().unwrap_or(0);
        others.len() == 1
    });
    let fg_stat = stat(fg_pid).expect("stat the foreground");
    let daemon_stat = stat(d.pid).expect("stat the daemon");
    // Let the daemon go on: read its log until it exits.
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::fs::File::open(&fifo).and_then(|mut f| f.read_to_string(&mut text));
        text
    });
    let ran = finish(fg);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(read_pid(&pidfile), Some(d.pid));
    assert_ne!(fg_stat[0], "Z", "the foreground had already exited");
    assert_eq!(
        fg_stat[3],
        fg_pid.to_string(),
        "the foreground leads its session"
    );
    assert_eq!(fg_stat[4], tty_nr.to_string(), "the foreground's terminal");
    assert_eq!(daemon_stat[4], "0", "the daemon has a controlling terminal");
    assert_ne!(
        daemon_stat[3], fg_stat[3],
        "the daemon is in the foreground's session"
    );
    d.signal(libc::SIGTERM);
    let log = log.join().expect("log reader");
    assert!(log.contains("shutdown complete"), "{log}");
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
    // The pidfile by its absolute path: a needle no other test's process has.
    let pidfile = dir.path("ed.pid");
    let pidfile_arg = pidfile.to_string_lossy().into_owned();
    let args = [
        "serve",
        "--daemon",
        "--pidfile",
        &pidfile_arg,
        "--log",
        "no/such/dir/ed.log",
        "--tcp",
        "127.0.0.1:0",
    ];
    let ran = run(edgechat(&dir.0, &args));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let want = format!("edgechat: log {}", dir.path("no/such/dir/ed.log").display());
    assert!(ran.stderr.starts_with(&want), "{}", ran.stderr);
    assert!(!pidfile.exists(), "pidfile left behind");
    assert_eq!(processes_with(&pidfile_arg), Vec::<i32>::new());
}

#[test]
fn log_is_appended_to_across_runs() {
    let dir = TempDir::new("append");
    let first = Daemon::start(&dir, &[]);
    let ran = run(edgechat(&dir.0, &["stop", "--pidfile", "ed.pid"]));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    wait_until("the first daemon to exit", || !alive(first.pid));
    let second = Daemon::start(&dir, &[]);
    assert_ne!(second.pid, first.pid);
    chatkit::Client::connect(second.addr).line();
    let log = std::fs::read_to_string(&second.log).expect("read log");
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{log}"))
    };
    let first_ran = at(&format!("serving as pid {}", first.pid));
    let first_ended = at("shutdown complete");
    let second_ran = at(&format!("serving as pid {}", second.pid));
    assert!(first_ran < first_ended && first_ended < second_ran, "{log}");
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
