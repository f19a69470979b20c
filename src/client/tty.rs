//! The client on a terminal: raw mode for as long as it runs, the line
//! editor ([`super::editor`]) between the keys, the server and the screen,
//! and the signals a program that changes the terminal's settings must
//! handle.
//!
//! The signals arrive on a signalfd in the client's epoll set:
//! - `SIGINT` (Ctrl-C), `SIGQUIT` (Ctrl-\), `SIGTERM`, `SIGHUP`: leave.
//!   The terminal is put back first, then the process ends by the same
//!   signal, so the shell sees what ended it.
//! - `SIGTSTP` (Ctrl-Z): put the terminal back, stop (`SIGSTOP`);
//!   `SIGCONT`: raw mode again, and the typed line drawn again.
//! - `SIGWINCH`: the new width, and the typed line drawn again.
//!
//! They are blocked before raw mode is entered, so none can end the
//! process while the terminal is raw without the settings being restored.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::Signal;

use super::editor::{Editor, Typed};
use crate::error::{Context, Result};
use crate::sys::signal::{self, Signals};
use crate::sys::stdio;
use crate::sys::term::{self, RawMode};

/// The signals the interactive client handles (see the module comment).
/// Every signal whose default action ends the process is here (the ones
/// not sent by a fault), so none can leave the terminal raw.
const HANDLED: [Signal; 10] = [
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGTSTP,
    Signal::SIGCONT,
    Signal::SIGWINCH,
];

/// The terminal, in raw mode while this lives.
pub struct Tty {
    editor: Editor,
    /// Screen bytes not written yet (reused between writes).
    screen: Vec<u8>,
    signals: Signals,
    /// [`Tty::leave`] has run.
    left: bool,
    /// Dropped last of all (fields drop in order): restores the settings.
    raw: RawMode,
}

impl Tty {
    /// `Some` when stdin and stdout are both terminals: blocks
    /// [`HANDLED`] (signalfd), then puts stdin's terminal in raw mode.
    pub fn open() -> Result<Option<Tty>> {
        let (stdin, stdout) = (io::stdin(), io::stdout());
        if !term::is_terminal(stdin.as_fd()) || !term::is_terminal(stdout.as_fd()) {
            return Ok(None);
        }
        let signals = Signals::of(&HANDLED).sys("signalfd")?;
        let raw = RawMode::enter(stdin.as_fd()).sys("tcsetattr(stdin)")?;
        Ok(Some(Tty {
            editor: Editor::new(columns()),
            screen: Vec::new(),
            signals,
            left: false,
            raw,
        }))
    }

    /// The signalfd, for the epoll set.
    pub fn signal_fd(&self) -> BorrowedFd<'_> {
        self.signals.as_fd()
    }

    /// Keys read from the terminal: draws them, and appends to `send` the
    /// lines finished with Enter.
    pub fn keys(&mut self, input: &[u8], send: &mut Vec<u8>) -> Result<Typed> {
        let typed = self.editor.keys(input, &mut self.screen, send);
        self.show()?;
        Ok(typed)
    }

    /// Bytes from the server: whole lines are printed above the typed line.
    pub fn incoming(&mut self, data: &[u8]) -> Result<()> {
        self.editor.incoming(data, &mut self.screen);
        self.show()
    }

    /// The server has closed: prints what it sent without a `\n`, and
    /// leaves the cursor on an empty row for the shell.
    pub fn leave(&mut self) -> Result<()> {
        self.left = true;
        self.editor.leave(&mut self.screen);
        self.show()
    }

    /// Handles every pending signal; returns the one to leave by, if any.
    pub fn on_signals(&mut self) -> Result<Option<Signal>> {
        while let Some(sig) = self.signals.pending().sys("read(signalfd)")? {
            match sig {
                Signal::SIGTSTP => {
                    self.editor.hide(&mut self.screen);
                    self.show()?;
                    self.raw.suspend().sys("tcsetattr(stdin)")?;
                    signal::stop_self().sys("raise(SIGSTOP)")?;
                    // Continued: SIGCONT is pending and comes next.
                }
                Signal::SIGCONT | Signal::SIGWINCH => {
                    if sig == Signal::SIGCONT {
                        self.raw.reapply().sys("tcsetattr(stdin)")?;
                    }
                    self.editor.set_columns(columns());
                    self.editor.redraw(&mut self.screen);
                    self.show()?;
                }
                _ => return Ok(Some(sig)),
            }
        }
        Ok(None)
    }

    /// Writes what the editor drew.
    fn show(&mut self) -> Result<()> {
        let written = stdio::write_all(io::stdout().as_fd(), &self.screen);
        self.screen.clear();
        written.sys("write stdout")
    }
}

impl Drop for Tty {
    /// Leaving by an error or a signal: the cursor goes to an empty row
    /// before the message or the shell's prompt (best effort: the terminal
    /// may be gone). Then `raw` puts the settings back.
    fn drop(&mut self) {
        if !self.left {
            let _ = self.leave();
        }
    }
}

/// The terminal's width (0 when unknown, which the editor reads as 80).
fn columns() -> usize {
    term::columns(io::stdout().as_fd()).map_or(0, usize::from)
}
