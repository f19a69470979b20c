//! The reactor's side of TLS: the handshake deadline on the timer heap, the
//! chat `HELLO` once a handshake is done (with the nick a client
//! certificate reserves), and reloading the certificate on SIGHUP.

use std::cmp::Reverse;

use super::{conn_token, Reactor, HANDSHAKE};
use crate::chat::Departure;

impl Reactor {
    /// Puts `key`'s handshake deadline on the timer heap.
    pub(super) fn arm_handshake(&mut self, key: usize) {
        if let Some(c) = self.conns.get(key) {
            let at = self.now + self.cfg.handshake_timeout;
            self.timers
                .push(Reverse((at, conn_token(key, c.gen) | HANDSHAKE)));
        }
    }

    /// The handshake deadline came: a client still shaking hands is closed.
    pub(super) fn handshake_expired(&mut self, key: usize) {
        if self
            .conns
            .get(key)
            .is_some_and(|c| c.transport.handshaking())
        {
            log::debug!("connection {key}: handshake timeout");
            self.close(key, Departure::Quiet);
        }
    }

    /// Once a TLS handshake is done: a chat client gets its `HELLO`, as
    /// the nick its certificate reserves if it presented one.
    pub(super) fn established(&mut self, key: usize, nick: Option<String>) {
        log::debug!("connection {key}: TLS established, peer {nick:?}");
        let Some(chat) = self.chat.as_deref_mut() else {
            return;
        };
        if chat.open_as(key, self.now, nick.as_deref(), &mut deliver!(self)) {
            self.arm(key);
        }
    }

    /// SIGHUP: read the certificate and key again for new connections. A
    /// pair that does not load is refused and the old one kept.
    pub(super) fn reload_tls(&mut self) {
        let Some(tls) = self.tls.as_mut() else {
            log::info!("SIGHUP: no TLS listener, no certificate to reload");
            return;
        };
        match tls.reload() {
            Ok(()) => log::info!(
                "SIGHUP: certificate reloaded from {} and {}",
                tls.files().cert.display(),
                tls.files().key.display()
            ),
            Err(e) => log::error!("SIGHUP: certificate refused, the old one kept: {e}"),
        }
    }
}
