//! `termios(3)` and `ioctl_tty(2)` for the interactive client: whether a
//! descriptor is a terminal, how wide the terminal is, and raw mode.
//!
//! Raw mode is held by a guard, [`RawMode`], whose `Drop` puts the saved
//! settings back, so every way out of the client (return, error, a signal
//! turned into an event) leaves the terminal as it found it. Release builds
//! abort on panic, which runs no `Drop`: a panic hook puts the settings
//! back too. Both take them from one place, so they are restored once.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, Once, TryLockError};

use nix::sys::termios::{self, InputFlags, LocalFlags, SetArg, SpecialCharacterIndices, Termios};

use super::cvt_r;

/// `isatty(fd)`: true for a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false)
}

/// `ioctl(fd, TIOCGWINSZ)`: the terminal's width in columns (0 when the
/// terminal does not know it).
pub fn columns(fd: BorrowedFd<'_>) -> io::Result<u16> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer,
    // which points to a live local of that type; `fd` is borrowed, so open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(size.ws_col)
}

/// The settings raw mode replaced, and a descriptor of the terminal to put
/// them back on: shared by the guard and the panic hook.
struct Saved {
    fd: OwnedFd,
    termios: libc::termios,
}

static SAVED: Mutex<Option<Saved>> = Mutex::new(None);

/// The terminal in raw mode for as long as this lives.
///
/// Raw here means: no line editing by the kernel (`ICANON` off, the
/// client edits the line), no echo (`ECHO` off, the client draws the line),
/// `IEXTEN` off (Ctrl-V and Ctrl-O reach the client), Enter arrives as
/// `\r` (no `ICRNL`), and `read` returns as soon as one byte is there
/// (`VMIN` 1, `VTIME` 0). `ISIG` stays on, so Ctrl-C, Ctrl-\ and Ctrl-Z
/// still send their signals; output processing (`OPOST`) is left as it is.
pub struct RawMode {
    raw: Termios,
}

impl RawMode {
    /// `tcgetattr` → save → `tcsetattr(TCSANOW, raw)` on the terminal `fd`
    /// (a duplicate is kept for the way back).
    pub fn enter(fd: BorrowedFd<'_>) -> io::Result<RawMode> {
        let fd = fd.try_clone_to_owned()?;
        let saved = cvt_r(|| termios::tcgetattr(&fd))?;
        let raw = raw_from(saved.clone());
        install_panic_hook();
        let mut slot = lock();
        if slot.is_some() {
            return Err(io::Error::other("the terminal is already in raw mode"));
        }
        cvt_r(|| termios::tcsetattr(&fd, SetArg::TCSANOW, &raw))?;
        *slot = Some(Saved {
            fd,
            termios: saved.into(),
        });
        Ok(RawMode { raw })
    }

    /// Puts the saved settings back while the process stops (Ctrl-Z), so
    /// the shell gets its terminal as it was; [`RawMode::reapply`] after.
    pub fn suspend(&self) -> io::Result<()> {
        match &*lock() {
            Some(s) => {
                cvt_r(|| termios::tcsetattr(&s.fd, SetArg::TCSANOW, &Termios::from(s.termios)))
            }
            None => Ok(()),
        }
    }

    /// Sets raw mode again (after `SIGCONT`: whoever had the terminal while
    /// the process was stopped may have changed it).
    pub fn reapply(&self) -> io::Result<()> {
        match &*lock() {
            Some(s) => cvt_r(|| termios::tcsetattr(&s.fd, SetArg::TCSANOW, &self.raw)),
            None => Ok(()),
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let saved = lock().take();
        restore(saved);
    }
}

/// The raw settings derived from the terminal's own (see [`RawMode`]).
fn raw_from(mut t: Termios) -> Termios {
    t.local_flags
        .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ECHONL | LocalFlags::IEXTEN);
    t.input_flags
        .remove(InputFlags::ICRNL | InputFlags::INLCR | InputFlags::IGNCR);
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    t
}

/// `tcsetattr(TCSANOW, saved)`, then closes the duplicate descriptor.
/// Nothing is left to report to: a terminal that is gone needs no settings.
fn restore(saved: Option<Saved>) {
    if let Some(s) = saved {
        let _ = cvt_r(|| termios::tcsetattr(&s.fd, SetArg::TCSANOW, &Termios::from(s.termios)));
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<Saved>> {
    // A panic while the lock is held leaves nothing half-written: the slot
    // is replaced whole.
    SAVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Before the previous panic hook (which prints the message), puts the
/// terminal back, so the message is readable and the shell usable.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // try_lock: a panic inside a locked section must not deadlock.
            let saved = match SAVED.try_lock() {
                Ok(mut slot) => slot.take(),
                Err(TryLockError::Poisoned(p)) => p.into_inner().take(),
                Err(TryLockError::WouldBlock) => None,
            };
            restore(saved);
            previous(info);
        }));
    });
}
