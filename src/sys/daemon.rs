//! `daemon(7)`: the SysV way to become a daemon, one step per syscall, in
//! this order:
//!
//! 1. `pipe2(O_CLOEXEC)`: the readiness pipe, from the daemon back to the
//!    process the user started.
//! 2. `fork()`: the parent stays in the foreground and waits on the pipe
//!    ([`Waiter`]); the child goes on.
//! 3. `setsid()`: the child leads a new session, detached from the
//!    terminal.
//! 4. `fork()` again, and the session leader exits: the daemon is not a
//!    session leader, so opening a terminal can never make it its
//!    controlling terminal.
//! 5. `umask(0o027)`: files the daemon creates are not world-readable.
//! 6. `chdir("/")`: the daemon holds no mount point busy. (Paths from the
//!    command line were made absolute before step 1.)
//! 7. `close()` every inherited descriptor above 2, except the readiness
//!    pipe.
//! 8. `open("/dev/null")` → `dup2` onto stdin, stdout and stderr.
//! 9. Every signal disposition back to `SIG_DFL`, and
//!    `sigprocmask(SIG_SETMASK, {})`: nothing inherited from the shell
//!    (start-up then blocks the signals the server handles, before the
//!    pidfile is locked, and the reactor reads them from its `signalfd`).
//!
//! The daemon then opens its log and pidfile and binds its listeners, and
//! reports through the pipe ([`Readiness`]): `READY`, or the text of what
//! failed. Only then does the foreground process exit, 0 or 1.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::sys::resource::{getrlimit, Resource};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::{umask, Mode};
use nix::sys::wait::waitpid;
use nix::unistd::{self, ForkResult, Pid};

use super::cvt_r;

/// What the daemon writes to the pipe once it is serving.
const READY: &[u8] = b"READY\n";

/// Which process returned from [`daemonize`].
pub enum Role {
    /// The process the user started: wait for the daemon, then exit.
    Foreground(Waiter),
    /// The daemon itself: start up, then report through the pipe.
    Daemon(Readiness),
}

/// How the daemon's start-up went, as the foreground process sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// The daemon is serving.
    Ready,
    /// The daemon failed and exited; its message.
    Failed(String),
}

/// The foreground end of the readiness pipe.
pub struct Waiter {
    pipe: File,
    child: Pid,
}

impl Waiter {
    /// Reaps the intermediate child (`waitpid`), then reads the pipe to
    /// EOF: the daemon closes it once it is serving or has exited.
    pub fn wait(mut self) -> io::Result<Report> {
        let _ = cvt_r(|| waitpid(self.child, None));
        let mut text = Vec::new();
        self.pipe.read_to_end(&mut text)?;
        if text == READY {
            return Ok(Report::Ready);
        }
        let text = String::from_utf8_lossy(&text).trim_end().to_string();
        if text.is_empty() {
            return Ok(Report::Failed("daemon exited before it was ready".into()));
        }
        Ok(Report::Failed(text))
    }
}

/// The daemon's end of the readiness pipe.
pub struct Readiness {
    pipe: File,
}

impl Readiness {
    /// Tells the foreground process the daemon is serving, and closes the pipe.
    pub fn ready(mut self) {
        let _ = self.pipe.write_all(READY);
    }

    /// Sends `why` to the foreground process and exits with status 1; the
    /// pipe closes with the process, so the foreground returns only once
    /// the daemon is gone. Drop everything that must be cleaned up first.
    pub fn fail(mut self, why: &str) -> ! {
        let _ = self.pipe.write_all(why.as_bytes());
        exit_now(1)
    }
}

/// Runs the steps of the module docs. Returns in two processes: the
/// foreground one ([`Role::Foreground`]) and the daemon ([`Role::Daemon`]).
/// A failure after the first fork is reported through the pipe.
///
/// Call it while the process has one thread only.
pub fn daemonize() -> io::Result<Role> {
    let (read, write) = cvt_r(|| unistd::pipe2(OFlag::O_CLOEXEC))?;
    // SAFETY: the process is single-threaded here (start-up, before the
    // reactor exists), so the child cannot inherit a lock held by a thread
    // that does not exist in it.
    match unsafe { unistd::fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { child } => {
            drop(write);
            return Ok(Role::Foreground(Waiter {
                pipe: File::from(read),
                child,
            }));
        }
        ForkResult::Child => drop(read),
    }
    let ready = Readiness {
        pipe: File::from(write),
    };
    if let Err((call, e)) = detach(ready.pipe.as_raw_fd()) {
        ready.fail(&format!("daemon: {call}: {e}"));
    }
    Ok(Role::Daemon(ready))
}

/// Steps 3 to 9, in the first child. The session leader exits inside.
fn detach(keep: RawFd) -> Result<(), (&'static str, io::Error)> {
    let name = |call| move |e| (call, e);
    cvt_r(unistd::setsid).map_err(name("setsid"))?;
    // SAFETY: still single-threaded, as in `daemonize`.
    match unsafe { unistd::fork() } {
        Ok(ForkResult::Parent { .. }) => exit_now(0),
        Ok(ForkResult::Child) => {}
        Err(e) => return Err(("fork", e.into())),
    }
    umask(Mode::from_bits_truncate(0o027));
    cvt_r(|| unistd::chdir("/")).map_err(name("chdir /"))?;
    close_inherited(keep);
    stdio_to_dev_null().map_err(name("/dev/null"))?;
    reset_signals().map_err(name("sigprocmask"))?;
    Ok(())
}

/// Closes every descriptor above 2 except `keep`: those listed in
/// `/proc/self/fd`, or every number below `RLIMIT_NOFILE` if `/proc` is
/// missing.
fn close_inherited(keep: RawFd) {
    let listed: Option<Vec<RawFd>> = std::fs::read_dir("/proc/self/fd").ok().map(|dir| {
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    });
    let all = || {
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 0));
        (0..soft.min(1 << 16) as RawFd).collect()
    };
    for fd in listed.unwrap_or_else(all) {
        if fd > 2 && fd != keep {
            // SAFETY: nothing in this process owns these descriptors yet
            // (they were inherited, or belonged to the listing that is
            // closed by now), so no Rust object is left with a stale fd.
            unsafe { libc::close(fd) };
        }
    }
}

/// `open("/dev/null", O_RDWR)` → `dup2` onto 0, 1 and 2.
fn stdio_to_dev_null() -> io::Result<()> {
    let null: OwnedFd = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into();
    for target in 0..=2 {
        cvt_r(|| unistd::dup2(null.as_raw_fd(), target))?;
    }
    if null.as_raw_fd() <= 2 {
        // It landed on a closed stdio slot: it is that slot now, keep it.
        let _ = null.into_raw_fd();
    }
    Ok(())
}

/// `_exit(2)`: ends the process without running this process's exit-time
/// code (buffers and handlers belong to the process it was forked from).
fn exit_now(status: i32) -> ! {
    // SAFETY: _exit only ends the process; no Rust state is observed after.
    unsafe { libc::_exit(status) }
}

/// Every signal's disposition back to `SIG_DFL`, then an empty mask.
///
/// Through the raw `rt_sigaction` syscall: the C library's `sigaction`
/// refuses the two real-time signals it reserves (32 and 33), yet an
/// ignored one is inherited like any other.
fn reset_signals() -> io::Result<()> {
    // The kernel's `struct sigaction` all zero: handler SIG_DFL (0), no
    // flags, no restorer, empty mask, whatever the architecture's layout.
    let default = [0u64; 4];
    let sigset_size = std::mem::size_of::<u64>();
    for signo in 1..=libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `default` is a live, zeroed kernel sigaction larger than
        // the kernel reads; SIG_DFL installs no handler code.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signo,
                default.as_ptr(),
                std::ptr::null_mut::<u64>(),
                sigset_size,
            )
        };
    }
    cvt_r(|| sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None))
}
