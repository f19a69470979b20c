//! `edgechat stop --pidfile PATH [--timeout S]`: stop the server that holds
//! a pidfile's lock.
//!
//! 1. find the holder: `flock(LOCK_SH | LOCK_NB)` on the pidfile fails only
//!    while a server holds it; then the pid is read from the file
//! 2. `kill(pid, SIGTERM)`: the server begins its graceful shutdown
//! 3. poll until the lock is free (or the file is gone): the server removes
//!    its pidfile and releases the lock as it exits
//!
//! Exit status ([`EXIT_HELP`]): 0 stopped, 1 not running, 2 a usage error
//! (clap's), 3 could not tell or could not signal, 4 still running after
//! `--timeout`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::sys::pidfile;

/// How often the lock is checked while waiting.
const POLL: Duration = Duration::from_millis(50);

/// The exit statuses, for `edgechat stop --help`.
pub const EXIT_HELP: &str = "\
Exit status:
  0  stopped
  1  not running: no pidfile, or no process holds its lock
  2  usage error (a flag missing or malformed)
  3  could not tell or could not signal: the pidfile is unreadable or
     locked with no pid in it, or kill(2) failed (EPERM)
  4  still running after --timeout";

/// `edgechat stop` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    /// The pidfile the server was started with.
    #[arg(long, value_name = "PATH")]
    pub pidfile: PathBuf,
    /// Seconds to wait for the server to exit (its own --shutdown-timeout
    /// is 5 s by default); then exit 4, leaving it running.
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub timeout: u64,
}

/// Sends SIGTERM to the pidfile's holder and waits for it to exit. Only
/// "nobody holds the lock" and `ESRCH` mean not running; any other failure
/// is [`Error::CannotStop`]: whether a server runs is not known.
pub fn run(a: &StopArgs) -> Result<()> {
    let path = &a.pidfile;
    let cannot = |e| Error::CannotStop(Box::new(e));
    let holder = || {
        pidfile::holder(path).map_err(|source| {
            cannot(Error::Pidfile {
                path: path.clone(),
                source,
            })
        })
    };
    let not_running = || Error::NotRunning { path: path.clone() };
    let pid = holder()?.ok_or_else(not_running)?;
    match kill(Pid::from_raw(pid), Signal::SIGTERM) {
        Ok(()) => {}
        Err(Errno::ESRCH) => return Err(not_running()),
        Err(e) => {
            return Err(cannot(Error::Kill {
                pid,
                signal: "SIGTERM",
                source: e.into(),
            }))
        }
    }
    let end = Instant::now() + Duration::from_secs(a.timeout);
    while holder()? == Some(pid) {
        if Instant::now() >= end {
            return Err(Error::StopTimeout {
                pid,
                secs: a.timeout,
            });
        }
        std::thread::sleep(POLL);
    }
    println!("stopped pid {pid}");
    Ok(())
}
