//! Signals, delivered by the signalfd as ordinary events: SIGTERM and
//! SIGINT begin a graceful shutdown (a second one exits at once), SIGHUP
//! reloads the TLS certificate, SIGUSR1 logs counters.

use std::os::fd::AsFd;
use std::time::Instant;

use nix::sys::signal::Signal;

use super::Reactor;

impl Reactor {
    /// Handles every signal the signalfd holds.
    pub(super) fn on_signals(&mut self) {
        loop {
            match self.signals.pending() {
                Ok(Some(Signal::SIGINT | Signal::SIGTERM)) => self.begin_shutdown(),
                Ok(Some(Signal::SIGUSR1)) => self.log_stats(),
                Ok(Some(Signal::SIGHUP)) => self.reload_tls(),
                Ok(Some(s)) => log::info!("{s}: nothing to do"),
                Ok(None) => return,
                Err(e) => {
                    log::error!("read signalfd: {e}");
                    return;
                }
            }
        }
    }

    fn log_stats(&self) {
        match self.chat.as_deref() {
            Some(chat) => {
                let s = &chat.router.stats;
                log::info!(
                    "stats: clients={} msgs_in={} msgs_out={} bytes_in={} bytes_out={}",
                    self.conns.len(),
                    s.msgs_in,
                    s.msgs_out,
                    s.bytes_in,
                    s.bytes_out
                );
            }
            None => log::info!("stats: clients={}", self.conns.len()),
        }
    }

    /// Stops accepting, and lets every connection finish what it owes
    /// within `--shutdown-timeout`. A second call means exit now.
    fn begin_shutdown(&mut self) {
        if self.deadline.is_some() {
            self.stop_now = true;
            return;
        }
        log::info!("shutting down: {} connections to flush", self.conns.len());
        self.deadline = Some(Instant::now() + self.cfg.shutdown_timeout);
        for l in self.listeners.drain(..) {
            let _ = self.epoll.delete(l.fd.as_fd());
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
}
