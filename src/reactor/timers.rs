//! The one timer heap behind every deadline: a chat client's keepalive and
//! unfinished line, a TLS handshake, a closing connection's linger, the
//! re-check of a connection waiting for its last bytes to be acknowledged,
//! and the end of a flood-control pause.
//! Entries are (when, token); a token's flag bits say which kind it is, and
//! its generation makes entries of closed connections harmless.

use std::cmp::Reverse;

use super::{conn_token, token_key, Reactor, HANDSHAKE, KIND_MASK, LINGER, PAUSE, RECHECK};

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
        self.timers
            .retain(|Reverse((_, token))| entry_live(conns, *token));
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
        let token = conn_token(key, c.gen) | PAUSE;
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
            if !entry_live(&self.conns, token) {
                continue;
            }
            let key = token_key(token);
            match token & KIND_MASK {
                HANDSHAKE => {
                    self.handshake_expired(key);
                    continue;
                }
                PAUSE => {
                    // Serve it, whatever its phase: a closing one still has
                    // lines to send before its FIN.
                    if let Some(c) = self.conns.get_mut(key) {
                        c.paused = false;
                    }
                    self.service(key);
                    continue;
                }
                RECHECK => {
                    if let Some(c) = self.conns.get_mut(key) {
                        c.recheck = false;
                    }
                    self.finish(key);
                    continue;
                }
                LINGER => {
                    log::debug!("connection {key}: linger timeout");
                    self.close(key, Departure::Quiet);
                    continue;
                }
                _ => {}
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

/// Whether a heap entry still belongs to a connection that is open: its
/// generation, not just its slab key (which a new connection may reuse).
fn entry_live(conns: &slab::Slab<crate::conn::Conn>, token: u64) -> bool {
    let key = token_key(token);
    conns
        .get(key)
        .is_some_and(|c| conn_token(key, c.gen) == token & !KIND_MASK)
}
