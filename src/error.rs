//! The crate's error type: every variant names the syscall, address or file
//! that failed, so a message reads like `bind tcp://127.0.0.1:7000: Address
//! already in use (os error 98)`.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can stop a command of `edgechat` from running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening a listener failed at one of socket/setsockopt/bind/listen.
    #[error("listen {scheme}://{addr}: {source}")]
    Listen {
        scheme: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    /// `connect(2)` to a server failed.
    #[error("connect {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    /// A syscall on an open connection (`recv`, `send`, `shutdown`) failed.
    #[error("{call} {addr}: {source}")]
    Peer {
        call: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    /// A syscall that is not about one address or file failed.
    #[error("{call}: {source}")]
    Sys {
        call: &'static str,
        source: io::Error,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
    /// What a server sent back failed a check (an echo that did not match
    /// what was sent, a connection lost mid-benchmark).
    #[error("{0}")]
    Check(String),
    /// The command line asked for something that cannot be done.
    #[error("{0}")]
    Config(String),
    /// Opening, locking or writing the pidfile failed.
    #[error("pidfile {}: {source}", path.display())]
    Pidfile { path: PathBuf, source: io::Error },
    /// Another running process holds the pidfile's lock.
    #[error("pidfile {}: held by running pid {pid}", path.display())]
    PidfileHeld { path: PathBuf, pid: i32 },
    /// Opening the `--log` file failed.
    #[error("log {}: {source}", path.display())]
    Log { path: PathBuf, source: io::Error },
    /// The daemon failed to start; its own message, sent back to the
    /// foreground process through the readiness pipe.
    #[error("{0}")]
    Daemon(String),
    /// `edgechat stop`: nobody holds the pidfile's lock.
    #[error("not running (no process holds pidfile {})", path.display())]
    NotRunning { path: PathBuf },
    /// `edgechat stop`: the daemon was sent SIGTERM but is still running.
    #[error("pid {pid} did not stop within {secs} s")]
    StopTimeout { pid: i32, secs: u64 },
    /// `edgechat stop` could not tell whether a server runs (the pidfile is
    /// unreadable, or locked with no pid in it), or could not signal it.
    #[error("cannot stop: {0}")]
    CannotStop(Box<Error>),
    /// `kill(2)` failed.
    #[error("kill({pid}, {signal}): {source}")]
    Kill {
        pid: i32,
        signal: &'static str,
        source: io::Error,
    },
}

impl Error {
    /// The process exit status this error ends `edgechat` with: 4 for a
    /// daemon that did not stop in time, 3 when `stop` could not tell or
    /// could not signal, 1 for everything else (for `stop`: not running).
    /// 2 is left to clap's usage errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::StopTimeout { .. } => 4,
            Error::CannotStop(_) => 3,
            _ => 1,
        }
    }
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Adds the name of the failing syscall to an `io::Result`.
pub trait Context<T> {
    /// Wraps the error as [`Error::Sys`] naming `call`.
    fn sys(self, call: &'static str) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn sys(self, call: &'static str) -> Result<T> {
        self.map_err(|source| Error::Sys { call, source })
    }
}
