//! What an operator's signals do, read from the signalfd: SIGINT/SIGTERM
//! shut down gracefully (a second one exits at once), SIGHUP reopens the log
//! and reloads the TLS certificate (announced to systemd as `RELOADING=1` …
//! `READY=1`), SIGUSR1 logs stats.

use std::os::fd::AsFd;
use std::time::Instant;

use nix::sys::signal::Signal;

use super::Reactor;
use crate::logger;
use crate::sys::notify;

impl Reactor {
    pub(super) fn on_signals(&mut self) {
        loop {
            match self.signals.pending() {
                Ok(Some(Signal::SIGINT | Signal::SIGTERM)) => self.begin_shutdown(),
                Ok(Some(Signal::SIGUSR1)) => self.log_stats(),
                Ok(Some(Signal::SIGHUP)) => self.on_hangup(),
                Ok(Some(s)) => log::info!("{s}: nothing to do"),
                Ok(None) => return,
                Err(e) => {
                    log::error!("read signalfd: {e}");
                    return;
                }
            }
        }
    }

    /// One line: `stats: clients=N timers=N` (deadlines on the heap), the
    /// chat counters in chat mode, and
    /// the UDP echo's counters when there are UDP listeners.
    fn log_stats(&self) {
        let mut line = format!(
            "stats: clients={} timers={}",
            self.conns.len(),
            self.timers.len()
        );
        if let Some(chat) = self.chat.as_deref() {
            let s = &chat.router.stats;
            line += &format!(
                " msgs_in={} msgs_out={} bytes_in={} bytes_out={}",
                s.msgs_in, s.msgs_out, s.bytes_in, s.bytes_out
            );
        }
        if !self.udp.is_empty() {
            line += &format!(" {}", self.udp_guard.stats);
        }
        log::info!("{line}");
    }

    /// Stops accepting, and lets every connection finish what it owes
    /// within `--shutdown-timeout`. A second call means exit now.
    pub(super) fn begin_shutdown(&mut self) {
        if self.deadline.is_some() {
            self.stop_now = true;
            return;
        }
        self.announce_stopping();
        log::info!("shutting down: {} connections to flush", self.conns.len());
        self.deadline = Some(Instant::now() + self.cfg.shutdown_timeout);
        for l in self.listeners.drain(..) {
            let _ = self.epoll.delete(l.fd.as_fd());
        }
        // Held notices go before anyone's `ERR server-shutdown`.
        if let Some(chat) = self.chat.as_deref_mut() {
            chat.router.send_notices(&mut deliver!(self));
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if self.chat.is_some() {
                self.say_shutdown(key);
            }
            self.begin_closing(key);
            self.service(key);
        }
    }
    /// SIGHUP: tell systemd, reload, tell systemd again.
    pub(super) fn on_hangup(&mut self) {
        if let Err(e) = notify::reloading() {
            log::warn!("sd_notify RELOADING=1: {e}");
        }
        self.reload();
        if let Err(e) = notify::notify(notify::READY) {
            log::warn!("sd_notify READY=1: {e}");
        }
    }

    /// Everything a reload does: reopen the `--log` file by its path (after
    /// logrotate renamed it), and load the certificate and key again for new
    /// TLS connections. Each part logs what happened to it; a failure keeps
    /// what was in use.
    pub(super) fn reload(&mut self) {
        match logger::reopen() {
            Ok(true) => log::info!("SIGHUP: log reopened"),
            Ok(false) => {} // no --log: stderr has nothing to reopen
            Err(e) => log::error!("SIGHUP: log not reopened, writing on to the old file: {e}"),
        }
        self.reload_tls();
    }

    /// Shutdown has begun: tell systemd.
    pub(super) fn announce_stopping(&self) {
        if let Err(e) = notify::notify(notify::STOPPING) {
            log::warn!("sd_notify STOPPING=1: {e}");
        }
    }
}
