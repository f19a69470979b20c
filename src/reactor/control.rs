//! What an operator's signals do besides shutting down: SIGHUP reloads,
//! announced to systemd (`RELOADING=1` … `READY=1`).

use super::Reactor;
use crate::logger;
use crate::sys::notify;

impl Reactor {
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
    /// logrotate renamed it). A failure keeps what was in use and is logged.
    pub(super) fn reload(&mut self) {
        match logger::reopen() {
            Ok(true) => log::info!("SIGHUP: log reopened"),
            Ok(false) => log::info!("SIGHUP: reloaded"),
            Err(e) => log::error!("SIGHUP: reopen log: {e}"),
        }
    }

    /// Shutdown has begun: tell systemd.
    pub(super) fn announce_stopping(&self) {
        if let Err(e) = notify::notify(notify::STOPPING) {
            log::warn!("sd_notify STOPPING=1: {e}");
        }
    }
}
