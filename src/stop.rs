//! `edgechat stop --pidfile PATH [--timeout S]`: stop the server that holds
//! a pidfile's lock.
//!
//! 1. find the holder: `flock(LOCK_SH | LOCK_NB)` on the pidfile fails only
//!    while a server holds it; then the pid is read from the file
//! 2. `kill(pid, SIGTERM)`: the server begins its graceful shutdown
//! 3. poll until the lock is free (or the file is gone): the server removes
//!    its pidfile and releases the lock as it exits
//!
//! Exit status: 0 stopped, 1 not running, 2 still running after `--timeout`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::sys::pidfile;

/// How often the lock is checked while waiting.
const POLL: Duration = Duration::from_millis(50);

/// `edgechat stop` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    /// The pidfile the server was started with.
    #[arg(long, value_name = "PATH")]
    pub pidfile: PathBuf,
    /// Seconds to wait for the server to exit (its own --shutdown-timeout
    /// is 5 s by default).
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

/// Sends SIGTERM to the pidfile's holder and waits for it to exit.
pub fn run(a: &StopArgs) -> Result<()> {
    let path = &a.pidfile;
    let holder = || {
        pidfile::holder(path).map_err(|source| Error::Pidfile {
            path: path.clone(),
            source,
        })
    };
    let not_running = || Error::NotRunning { path: path.clone() };
    let pid = holder()?.ok_or_else(not_running)?;
    match kill(Pid::from_raw(pid), Signal::SIGTERM) {
        Ok(()) => {}
        Err(Errno::ESRCH) => return Err(not_running()),
        Err(e) => {
            return Err(Error::Sys {
                call: "kill(SIGTERM)",
                source: e.into(),
            })
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
