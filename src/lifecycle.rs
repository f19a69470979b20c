//! `edgechat serve` from start to exit, around the reactor:
//!
//! 1. paths from the command line made absolute ([`Config::absolutize`])
//! 2. with `--daemon`: [`daemon::daemonize`] (double fork, see its steps);
//!    the foreground process waits on the readiness pipe and exits 0 or 1
//! 3. the handled signals blocked ([`signal::block_handled`]), so one that
//!    arrives from now on waits for the loop; `--log` opened, pidfile
//!    locked and written, `SIGPIPE` ignored, listeners bound
//!    ([`Reactor::bind`]): any failure here is a start-up failure, reported
//!    by the foreground process, with nothing left behind
//! 4. readiness: `READY` down the pipe, `READY=1` to `$NOTIFY_SOCKET`
//! 5. the loop, until a graceful shutdown; then the pidfile is removed

use std::path::Path;

use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::logger;
use crate::reactor::Reactor;
use crate::sys::daemon::{self, Report, Role};
use crate::sys::notify;
use crate::sys::pidfile::{self, Lock, Pidfile};
use crate::sys::signal;

/// Runs the server with `cfg`, as a daemon if it says so.
pub fn run(mut cfg: Config) -> Result<()> {
    cfg.absolutize()?;
    if !cfg.daemon {
        let (reactor, pidfile) = start(cfg)?;
        return serve(reactor, pidfile);
    }
    match daemon::daemonize().sys("daemonize")? {
        Role::Foreground(waiter) => match waiter.wait().sys("read readiness pipe")? {
            Report::Ready => Ok(()),
            Report::Failed(why) => Err(Error::Daemon(why)),
        },
        Role::Daemon(ready) => match start(cfg) {
            Ok((reactor, pidfile)) => {
                ready.ready();
                serve(reactor, pidfile)
            }
            Err(e) => {
                log::error!("start-up failed: {e}");
                ready.fail(&e.to_string())
            }
        },
    }
}

/// Step 3: everything that can fail before the server is ready. On error,
/// what was done is undone as the values drop (the pidfile is removed).
fn start(cfg: Config) -> Result<(Reactor, Option<Pidfile>)> {
    // Before the pidfile: a SIGTERM between writing the pid and creating
    // the signalfd would otherwise kill the server and leave the file.
    signal::block_handled().sys("sigprocmask(SIG_BLOCK)")?;
    if let Some(path) = &cfg.log_file {
        logger::to_file(path).map_err(|source| Error::Log {
            path: path.clone(),
            source,
        })?;
    }
    let pidfile = cfg.pidfile.as_deref().map(lock_pidfile).transpose()?;
    signal::ignore_sigpipe().sys("sigaction(SIGPIPE)")?;
    let reactor = Reactor::bind(cfg)?;
    Ok((reactor, pidfile))
}

/// Takes the pidfile, or names the process that holds it.
fn lock_pidfile(path: &Path) -> Result<Pidfile> {
    let err = |source| Error::Pidfile {
        path: path.to_path_buf(),
        source,
    };
    match pidfile::acquire(path).map_err(err)? {
        Lock::Acquired(p) => Ok(p),
        Lock::HeldBy(Some(pid)) => Err(Error::PidfileHeld {
            path: path.to_path_buf(),
            pid,
        }),
        Lock::HeldBy(None) => Err(err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            "held by a process that has not written its pid yet",
        ))),
    }
}

/// Steps 4 and 5.
fn serve(reactor: Reactor, pidfile: Option<Pidfile>) -> Result<()> {
    if let Err(e) = notify::notify(notify::READY) {
        log::warn!("sd_notify READY=1: {e}");
    }
    log::info!("serving as pid {}", std::process::id());
    let result = reactor.run();
    if let Err(e) = &result {
        log::error!("{e}");
    }
    drop(pidfile);
    result
}
