//! `signalfd(2)`: signals arrive as readable events in the epoll set, so the
//! loop handles them like any other input, with no async-signal-safety rules.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::cvt_r;

/// The signals the server reacts to.
pub const HANDLED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGUSR1,
];

/// `signals` as a signal set.
fn set_of(signals: &[Signal]) -> SigSet {
    let mut set = SigSet::empty();
    for &s in signals {
        set.add(s);
    }
    set
}

/// `sigprocmask(SIG_BLOCK, HANDLED)`: from now on those signals stay
/// pending instead of taking their default action (for all four, ending
/// the process); a signalfd created later still reads the ones that
/// arrived meanwhile. Start-up calls it before the pidfile is locked, so
/// no SIGTERM can kill the server between writing its pid and
/// [`Signals::new`], leaving the file behind.
pub fn block_handled() -> io::Result<()> {
    block(&set_of(&HANDLED))
}

/// `sigprocmask(SIG_BLOCK, set)`.
fn block(set: &SigSet) -> io::Result<()> {
    cvt_r(|| signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(set), None))
}

/// A nonblocking signalfd for [`HANDLED`]. Creating it blocks those signals
/// (`sigprocmask(SIG_BLOCK)`), so they queue for the fd instead of running
/// a handler.
pub struct Signals(SignalFd);

impl Signals {
    /// `sigprocmask(SIG_BLOCK, HANDLED)` → `signalfd(SFD_NONBLOCK | SFD_CLOEXEC)`.
    pub fn new() -> io::Result<Signals> {
        Signals::of(&HANDLED)
    }

    /// The same for another set of signals.
    pub fn of(signals: &[Signal]) -> io::Result<Signals> {
        let set = set_of(signals);
        block(&set)?;
        let fd =
            cvt_r(|| SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC))?;
        Ok(Signals(fd))
    }

    /// The next pending signal, or `None` when none is queued.
    pub fn pending(&mut self) -> io::Result<Option<Signal>> {
        let info = cvt_r(|| self.0.read_signal())?;
        Ok(info.and_then(|i| Signal::try_from(i.ssi_signo as i32).ok()))
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Ignores `SIGPIPE` for the whole process: socket writes already use
/// `MSG_NOSIGNAL`, and this covers `write(2)` to a closed stdout too.
pub fn ignore_sigpipe() -> io::Result<()> {
    // SAFETY: SIG_IGN installs no handler code, so no async-signal-safety
    // rule can be broken; called at start-up before any other thread exists.
    unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigIgn) }
        .map(drop)
        .map_err(io::Error::from)
}

/// Ends the process by `sig` with its default action, as if it had never
/// been caught, so a parent sees what ended it (a shell's `$?` is 130
/// after Ctrl-C): `signal(SIG_DFL)` → `raise` → `sigprocmask(SIG_UNBLOCK)`.
/// Falls back to `exit(128 + sig)` should the signal not end the process.
pub fn die_by(sig: Signal) -> ! {
    // SAFETY: SIG_DFL installs no handler code; the process ends right
    // after, and no other thread handles signals.
    let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
    let _ = signal::raise(sig); // still blocked: it waits, pending
    let mut set = SigSet::empty();
    set.add(sig);
    let _ = signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    std::process::exit(128 + sig as i32)
}

/// `raise(SIGSTOP)`: stops the process now (what Ctrl-Z does when nobody
/// catches `SIGTSTP`); returns once it is continued (`SIGCONT`).
pub fn stop_self() -> io::Result<()> {
    signal::raise(Signal::SIGSTOP).map_err(io::Error::from)
}
