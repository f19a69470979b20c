//! The one timer heap behind every deadline: a chat client's keepalive and
//! unfinished line, a TLS handshake, a closing connection's linger, the
//! re-check of a connection waiting for its last bytes to be acknowledged,
//! and the end of a flood-control pause.
//! Entries are (when, token); a token's flag bits say which kind it is, and
//! its generation makes entries of closed connections harmless.

use std::cmp::Reverse;

use super::{conn_token, token_key, Reactor, HANDSHAKE, LINGER, RECHECK};

/// The heap is never compacted below this many entries.
pub(super) const MIN_COMPACT: usize = 4096;
use crate::chat::{Departure, Expiry};

impl Reactor {
    /// Pushes `key`'s next chat deadline onto the heap, if it moved earlier.
    pub(super) fn arm(&mut self, key: usize) {
        let (Some(chat), Some(c)) = (self.chat.as_deref_mut(), self.conns.get(key)) else {
            return;
        };
        if let Some(at) = chat.arm(key) {
            self.timers.push(Reverse((at, conn_token(key, c.gen))));
        }
    }

    /// Drops the entries of connections that are gone. Closing a
    /// connection leaves its entries on the heap until they come due (a
    /// heap cannot remove from the middle), so a client that connects and
    /// resets in a loop would grow it by the connection rate times the
    /// longest deadline; this keeps it within twice what is live, at an
    /// amortized O(1) per close.
    pub(super) fn compact_timers(&mut self) {
        let conns = &self.conns;
        self.timers.retain(|Reverse((_, token))| {
            let key = token_key(*token);
            conns
                .get(key)
                .is_some_and(|c| conn_token(key, c.gen) == token & !(LINGER | HANDSHAKE | RECHECK))
        });
        self.timers.shrink_to_fit();
        self.compact_at = (2 * self.timers.len()).max(MIN_COMPACT);
    }

    /// Stops reading chat client `key` (over `--max-rate`) until `until`.
    /// What it sends meanwhile waits in its socket: nothing is lost.
    pub(super) fn pause(&mut self, key: usize, until: std::time::Instant) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        log::debug!("connection {key}: over --max-rate, paused");
        c.paused = true;
        let token = conn_token(key, c.gen) | RECHECK;
        self.timers.push(Reverse((until, token)));
    }

    /// Runs every deadline that is due: keepalive pings and cuts, unfinished
    /// lines, and closing connections that outstayed `--linger-timeout`.
    pub(super) fn expire_timers(&mut self) {
        while let Some(&Reverse((at, token))) = self.timers.peek() {
            if at > self.now {
                break;
            }
            self.timers.pop();
            let key = token_key(token);
            let live = self
                .conns
                .get(key)
                .is_some_and(|c| conn_token(key, c.gen) == token & !(LINGER | HANDSHAKE | RECHECK));
            if !live {
                continue;
            }
            if token & HANDSHAKE != 0 {
                self.handshake_expired(key);
                continue;
            }
            if token & RECHECK != 0 {
                let Some(c) = self.conns.get_mut(key) else {
                    continue;
                };
                if c.paused {
                    // The end of a pause: serve it, whatever its phase (a
                    // closing one still has lines to send before its FIN).
                    c.paused = false;
                    self.service(key);
                } else if c.recheck {
                    c.recheck = false;
                    // Only a connection that owes nothing lingers.
                    if c.is_done() {
                        self.finish(key);
                    }
                }
                continue;
            }
            if token & LINGER != 0 {
                log::debug!("connection {key}: linger timeout");
                self.close(key, Departure::Quiet);
                continue;
            }
            let Some(chat) = self.chat.as_deref_mut() else {
                continue;
            };
            match chat.expire(key, at, self.now, &mut deliver!(self)) {
                Expiry::Keep => self.arm(key),
                Expiry::Cut(code) => {
                    chat.close(key, Departure::Cut(code), &mut deliver!(self));
                    self.begin_closing(key);
                }
            }
        }
        self.flush_dirty();
    }
}
