//! The close path: a turn's rarer outcomes (error, EOF, done), `CLOSING`
//! with its linger deadline, FIN after the last byte, a lingering close
//! until nothing in flight can be lost, and the close itself
//! (`EPOLL_CTL_DEL`, then `close` by `Drop`), telling chat how it went.

use std::cmp::Reverse;
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use super::{conn_token, Reactor, LINGER, RECHECK};
use crate::chat::Departure;
use crate::conn::Phase;
use crate::sys::{socket, would_block};

/// How soon a connection that sent its FIN first looks at its unacked
/// bytes again; each later look waits twice as long, up to
/// `RECHECK_EVERY << RECHECK_DOUBLINGS` (1.28 s), so thousands of clients
/// that never acknowledge cost little until `--linger-timeout`.
const RECHECK_EVERY: Duration = Duration::from_millis(10);
const RECHECK_DOUBLINGS: u8 = 7;
/// Reads of a closing connection's input (discarded) per look: a client
/// that keeps sending cannot hold the loop.
const DISCARD_READS: usize = 4;

impl Reactor {
    /// The rarer outcomes of a turn: an error, the peer's EOF, a finished
    /// connection, or a chat connection with more to read.
    pub(super) fn after_turn(&mut self, key: usize, turn: io::Result<bool>) {
        let more = match turn {
            Ok(more) => more,
            Err(e) => {
                log::debug!("connection {key}: {e}");
                if e.kind() == io::ErrorKind::InvalidData {
                    // A TLS error: its alert is written; do not let a reset
                    // destroy it.
                    self.end_stream(key);
                }
                return self.close(key, Departure::Left);
            }
        };
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.read_closed && c.phase == Phase::Open {
            self.begin_closing(key);
            if let Some(chat) = self.chat.as_deref_mut() {
                chat.eof(key, &mut deliver!(self));
            }
        }
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        // A connection that just began closing may owe TLS `close_notify`.
        if c.phase == Phase::Closing && c.flush(&self.turn).is_err() {
            return self.close(key, Departure::Quiet);
        }
        if c.is_done() {
            self.finish(key);
        } else if more && !c.queued {
            c.queued = true;
            self.ready.push_back(conn_token(key, c.gen));
        }
    }

    /// Moves a connection to `CLOSING` (if it is not there already, as after
    /// `/quit`): it is read no more, and it has
    /// `--linger-timeout` to take what it is owed before it is closed anyway.
    pub(super) fn begin_closing(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.phase = Phase::Closing;
        let at = self.now + self.cfg.linger_timeout;
        self.timers
            .push(Reverse((at, conn_token(key, c.gen) | LINGER)));
    }

    /// Ends a connection that owes nothing: FIN after the last byte, then close.
    pub(super) fn finish(&mut self, key: usize) {
        if self.linger(key) {
            self.close(key, Departure::Quiet);
            return;
        }
        // Look again shortly: acknowledgements bring no epoll event.
        if let Some(c) = self.conns.get_mut(key) {
            if !c.recheck {
                c.recheck = true;
                let at = self.now + RECHECK_EVERY * (1 << c.rechecks.min(RECHECK_DOUBLINGS));
                c.rechecks = c.rechecks.saturating_add(1);
                self.timers
                    .push(Reverse((at, conn_token(key, c.gen) | RECHECK)));
            }
        }
    }

    /// Sends FIN once, then reads and discards what the client still sends.
    /// Closing with unread input answers with an RST, which can destroy the
    /// last bytes still on their way to the client; so the connection stays
    /// until the client's EOF, or until the client has acknowledged every
    /// byte (`SIOCOUTQ` = 0: an RST can no longer destroy anything), within
    /// `--linger-timeout` or the shutdown deadline. Returns `true` once it
    /// can be closed.
    fn linger(&mut self, key: usize) -> bool {
        let Some(c) = self.conns.get_mut(key) else {
            return false;
        };
        if !c.fin_sent {
            c.fin_sent = true;
            if socket::shutdown_write(c.fd.as_fd()).is_err() {
                return true;
            }
        }
        if c.read_closed {
            return true;
        }
        for _ in 0..DISCARD_READS {
            match socket::recv(c.fd.as_fd(), &mut self.buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if would_block(&e) => break,
                Err(_) => return true,
            }
        }
        socket::unacked(c.fd.as_fd()).map_or(true, |n| n == 0)
    }
    /// FIN after the last byte written, and unread bytes drained.
    pub(super) fn end_stream(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key) {
            c.fin_sent = true;
            let _ = socket::shutdown_write(c.fd.as_fd());
            if !c.read_closed {
                // Unread bytes at close(2) turn the FIN into an RST, which can
                // destroy data still in flight: drain them first.
                for _ in 0..DISCARD_READS {
                    match socket::recv(c.fd.as_fd(), &mut self.buf) {
                        Ok(n) if n > 0 => continue,
                        _ => break,
                    }
                }
            }
        }
    }

    /// Closes a connection: `EPOLL_CTL_DEL`, drop (which closes the fd), and
    /// tell the chat service how it went.
    pub(super) fn close(&mut self, key: usize, how: Departure) {
        if let Some(c) = self.conns.try_remove(key) {
            let _ = self.epoll.delete(c.fd.as_fd());
            self.sources.remove(key);
        }
        if self.timers.len() > self.compact_at {
            self.compact_timers();
        }
        if let Some(chat) = self.chat.as_deref_mut() {
            chat.close(key, how, &mut deliver!(self));
        }
    }
}
