//! Helpers for the daemon tests: unique temp dirs, `edgechat` runs with a
//! bounded wait, daemons that are SIGKILLed when a test ends however it
//! ends, and readers of `/proc/PID` to check a process from outside.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every wait in these tests ends by then, so a hang fails instead.
pub const WAIT: Duration = Duration::from_secs(20);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "edgechat-{name}-{}-{n}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `edgechat ARGS...` as a command, run in `cwd`.
pub fn edgechat(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgechat"));
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// What a finished `edgechat` command said.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, failing the test after [`WAIT`].
pub fn run(mut cmd: Command) -> Ran {
    finish(cmd.spawn().expect("spawn edgechat"))
}

/// Waits for a spawned `child` to exit and collects its output, failing
/// the test after [`WAIT`].
pub fn finish(child: Child) -> Ran {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out: Output = rx
        .recv_timeout(WAIT)
        .expect("edgechat did not return in time")
        .expect("run edgechat");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A daemon started by a test: SIGKILLed on drop if it still runs.
pub struct Daemon {
    pub pid: i32,
    pub pidfile: PathBuf,
    pub log: PathBuf,
    pub addr: SocketAddr,
}

impl Daemon {
    /// `edgechat serve --daemon --pidfile ed.pid --log ed.log --tcp
    /// 127.0.0.1:0 ARGS...` run inside `dir` (relative paths on purpose),
    /// which must return 0 once the daemon is serving.
    pub fn start(dir: &TempDir, args: &[&str]) -> Daemon {
        Daemon::start_with(dir, edgechat(&dir.0, &daemon_args(args)))
    }

    /// Like [`Daemon::start`], with a command already built.
    pub fn start_with(dir: &TempDir, cmd: Command) -> Daemon {
        let ran = run(cmd);
        let pidfile = dir.path("ed.pid");
        // Whatever happens next, a daemon that did start gets killed.
        let mut d = Daemon {
            pid: read_pid(&pidfile).unwrap_or(0),
            pidfile,
            log: dir.path("ed.log"),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        assert_eq!(ran.code, 0, "daemon start failed: {}", ran.stderr);
        assert!(d.pid > 0, "no pid in the pidfile");
        d.addr = listening_addr(&d.log).expect("listening line in the log");
        d
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on the pid of a daemon this test started.
        assert_eq!(unsafe { libc::kill(self.pid, sig) }, 0);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let mut pids = vec![self.pid];
        pids.extend(read_pid(&self.pidfile));
        for pid in pids {
            if pid > 0 && alive(pid) && cmdline(pid).contains("edgechat") {
                // SAFETY: kill(2) on a pid just checked to be an edgechat.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// The flags every daemon in these tests starts with, then `extra`.
pub fn daemon_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "serve",
        "--daemon",
        "--pidfile",
        "ed.pid",
        "--log",
        "ed.log",
        "--tcp",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    args
}

/// The pid written in a pidfile.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The last `listening on tcp://ADDR` in a log file: the log is appended
/// to, so earlier runs' lines may come before.
pub fn listening_addr(log: &Path) -> Option<SocketAddr> {
    listening(log, "tcp")
}

/// The last `listening on SCHEME://ADDR` in a log file.
pub fn listening(log: &Path, scheme: &str) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(log).ok()?;
    let (_, rest) = text.rsplit_once(&format!("listening on {scheme}://"))?;
    rest.lines().next()?.trim().parse().ok()
}

/// Waits until `f` holds, failing the test after [`WAIT`].
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The fields of `/proc/PID/stat` after `(comm)`: index 0 is the state
/// (field 3), 3 the session id (field 6), 4 the tty (field 7).
pub fn stat(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(String::from).collect())
}

/// The process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|f| f.first().map(String::as_str) != Some("Z"))
}

/// `/proc/PID/cmdline`, arguments joined by spaces.
pub fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

/// A line of `/proc/PID/status` by key, e.g. `Umask`.
pub fn status(pid: i32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Every open descriptor of `pid` with what it points to.
pub fn fds(pid: i32) -> Vec<(i32, String)> {
    let mut out: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    out.sort();
    out
}

/// Live processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| alive(pid) && cmdline(pid).contains(needle))
        .collect()
}

/// Makes this test process the reaper of the daemons it starts
/// (`prctl(PR_SET_CHILD_SUBREAPER)`): when a daemon's parent, the session
/// leader, exits at start-up, the daemon is reparented here instead of to
/// init, so [`reap`] can read its exit status. For test files whose every
/// test wants that: it holds for the whole process.
pub fn adopt_daemons() {
    // SAFETY: prctl(2) with integer arguments only; no memory is shared.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
}

/// Waits for the adopted daemon `pid` to exit (see [`adopt_daemons`]) and
/// returns how it ended; fails the test after [`WAIT`]. `ECHILD` means it
/// is not ours yet (its parent has not exited yet): try again.
pub fn reap(pid: i32) -> nix::sys::wait::WaitStatus {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let end = Instant::now() + WAIT;
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => {}
            Ok(status) => return status,
            Err(e) => panic!("waitpid({pid}): {e}"),
        }
        assert!(Instant::now() < end, "daemon {pid} did not exit in time");
        std::thread::sleep(Duration::from_millis(10));
    }
}
