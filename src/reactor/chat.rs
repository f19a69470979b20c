//! The reactor's side of chat: reading lines into the router, delivering
//! its output into connection queues, flushing each queue once per turn,
//! and cutting slow consumers. (Its deadlines live in `timers.rs`.)

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use slab::Slab;

use super::Reactor;
use crate::chat::router::Outbox;
use crate::chat::Departure;
use crate::conn::{Conn, Phase};
use crate::echo::READ_BUDGET;
use crate::queue::{Line, Turn};

const SLOW_CONSUMER: &[u8] = b"ERR slow-consumer\n";
/// Held `JOIN`s and `QUIT`s go at most this often (see `notices_due`).
const NOTICE_EVERY: Duration = Duration::from_millis(50);
const SERVER_SHUTDOWN: &[u8] = b"ERR server-shutdown\n";

/// Puts the router's lines into the turn, once each, and links them into
/// their recipients' queues. A queue that passes `max_output` even after a
/// flush marks its connection to be cut.
pub(super) struct Deliver<'a> {
    conns: &'a mut Slab<Conn>,
    turn: &'a mut Turn,
    dirty: &'a mut Vec<usize>,
    doomed: &'a mut Vec<usize>,
    max_output: usize,
}

impl<'a> Deliver<'a> {
    pub(super) fn new(
        conns: &'a mut Slab<Conn>,
        turn: &'a mut Turn,
        dirty: &'a mut Vec<usize>,
        doomed: &'a mut Vec<usize>,
        max_output: usize,
    ) -> Self {
        Deliver {
            conns,
            turn,
            dirty,
            doomed,
            max_output,
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(key);
            }
        }
    }
}

/// Sends what each connection on `dirty` owes and copies what its socket
/// did not take out of the turn, then clears the turn. The connections stay
/// on `dirty`: errors and finished ones are the caller's business.
fn settle(conns: &mut Slab<Conn>, turn: &mut Turn, dirty: &[usize]) {
    for &key in dirty {
        if let Some(c) = conns.get_mut(key) {
            // An error shows again at the caller's flush.
            let _ = c.flush(turn);
            c.out.settle(turn);
        }
    }
    turn.clear();
}

impl Outbox for Deliver<'_> {
    type Line = Line;

    #[inline]
    fn post(&mut self, line: &[u8], many: bool) -> Line {
        if self.turn.is_full() {
            // A storm (thousands of joins in one turn): send what is owed
            // so far, so the turn stays bounded.
            settle(self.conns, self.turn, self.dirty);
        }
        self.turn.post(line, many)
    }

    fn suffix(&self, line: &Line, skip: usize) -> Line {
        line.suffix(skip)
    }

    #[inline]
    fn deliver(&mut self, to: usize, line: &Line) {
        let Some(c) = self.conns.get_mut(to) else {
            return;
        };
        if c.cut {
            return;
        }
        c.out.push_line(self.turn, *line);
        // Listed before anything else: every queue that owes spans of the
        // turn is settled before the turn is cleared.
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(to);
        }
        if c.owed() > self.max_output {
            // Over the limit: see whether the socket takes some first.
            if c.flush(self.turn).is_err() || c.owed() > self.max_output {
                c.cut = true;
                self.doomed.push(to);
            }
        }
    }

    #[inline]
    fn accepting(&self, key: usize) -> bool {
        self.conns
            .get(key)
            .is_some_and(|c| !c.cut && c.phase == Phase::Open)
    }

    fn close_after_flush(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.phase = Phase::Closing;
        self.mark_dirty(key);
    }
}

impl Reactor {
    /// One budgeted turn of reading a chat client: each read goes through
    /// the framer to the router. Returns `true` if the budget ran out first.
    pub(super) fn serve_chat(&mut self, key: usize) -> io::Result<bool> {
        let max_output = self.cfg.max_output;
        let mut budget = READ_BUDGET;
        if self.conns.get(key).is_some_and(|c| c.paused) {
            return Ok(false); // over `--max-rate`: not before its timer entry
        }
        if self.chat.as_deref().is_some_and(|c| c.backlogged(key)) {
            // Back from a `--max-rate` pause: what was held back goes first.
            if !self.hand_to_chat(key, 0) {
                return Ok(false);
            }
        }
        loop {
            let Some(c) = self.conns.get_mut(key) else {
                return Ok(false);
            };
            c.flush(&self.turn)?;
            if c.phase != Phase::Open || c.paused || !c.wants_read(max_output) {
                return Ok(false);
            }
            if budget == 0 {
                return Ok(true);
            }
            let n = c.read(&mut self.buf)?;
            if let Some(nick) = c.transport.take_established() {
                self.established(key, nick);
                if self
                    .conns
                    .get(key)
                    .is_some_and(|c| c.phase == Phase::Closing)
                {
                    self.begin_closing(key); // refused: a second holder of a nick
                    return Ok(false);
                }
            }
            // A TLS handshake round brings no data but is still work done.
            budget = budget.saturating_sub(n.max(1));
            if n == 0 {
                continue;
            }
            if !self.hand_to_chat(key, n) {
                return Ok(false);
            }
        }
    }

    /// Hands the first `n` bytes of the read buffer (and anything held back
    /// by `--max-rate`) to the chat service. Returns `false` if reading must
    /// stop: the client is closing (after `/quit`) or paused.
    fn hand_to_chat(&mut self, key: usize, n: usize) -> bool {
        let Some(chat) = self.chat.as_deref_mut() else {
            return false;
        };
        let pause = chat.input(key, &self.buf[..n], self.now, &mut deliver!(self));
        if self
            .conns
            .get(key)
            .is_some_and(|c| c.phase == Phase::Closing)
        {
            self.begin_closing(key); // after /quit: start the linger clock
            return false;
        }
        self.arm(key);
        if let Some(until) = pause {
            self.pause(key, until);
            return false;
        }
        true
    }

    /// Sends every queue that was given output this turn: one `send` per
    /// connection however many lines it got (see `crate::queue`), keeps
    /// what the socket did not take, and clears the turn. Then cuts slow
    /// consumers (whose `QUIT` makes a new turn, flushed in turn).
    pub(super) fn flush_dirty(&mut self) {
        loop {
            self.send_notices_if_due();
            while let Some(key) = self.dirty.pop() {
                let Some(c) = self.conns.get_mut(key) else {
                    continue;
                };
                c.dirty = false;
                let sent = c.flush(&self.turn);
                c.out.settle(&self.turn);
                match sent {
                    Err(_) => self.close(key, Departure::Left),
                    Ok(()) if c.is_done() => self.finish(key),
                    Ok(()) => {}
                }
            }
            let Some(key) = self.doomed.pop() else {
                if self.notices_due().is_some_and(|at| at <= self.now) {
                    continue; // the QUITs of clients closed on error
                }
                self.turn.clear();
                return;
            };
            if let Some(c) = self.conns.get_mut(key) {
                log::debug!(
                    "connection {key}: slow consumer, {} bytes owed, cut",
                    c.out.len()
                );
                // Best effort: the line is only seen if the socket takes it
                // (and only between lines).
                c.transport.send_last(c.fd.as_fd(), &c.out, SLOW_CONSUMER);
            }
            self.close(key, Departure::Cut("slow-consumer"));
        }
    }

    /// When the `JOIN`s and `QUIT`s the router holds are to go, if it
    /// holds any: at once if none went in the last [`NOTICE_EVERY`], else
    /// that long after the last ones. A storm of thousands of clients
    /// arriving then costs each member one send per `NOTICE_EVERY`, not one
    /// per turn, and turns stay short; a lone client's `JOIN` goes at once.
    pub(super) fn notices_due(&self) -> Option<Instant> {
        let chat = self.chat.as_deref()?;
        chat.router
            .holds_notices()
            .then(|| self.notices_sent + NOTICE_EVERY)
    }

    fn send_notices_if_due(&mut self) {
        if self.notices_due().is_some_and(|at| at <= self.now) {
            if let Some(chat) = self.chat.as_deref_mut() {
                chat.router.send_notices(&mut deliver!(self));
            }
            self.notices_sent = self.now;
        }
    }

    /// On shutdown: `ERR server-shutdown` after everything already queued;
    /// nobody hears a `QUIT`.
    pub(super) fn say_shutdown(&mut self, key: usize) {
        match self.conns.get_mut(key) {
            // Still shaking hands: never got HELLO, gets only close_notify.
            Some(c) if c.transport.handshaking() => {}
            // Already closing (after `/quit`, its EOF or `ERR idle-timeout`)
            // or cut: its last line is said; nothing comes after it.
            Some(c) if c.phase == Phase::Closing || c.cut => {}
            Some(_) => {
                let mut out = deliver!(self);
                let line = out.post(SERVER_SHUTDOWN, false);
                out.deliver(key, &line);
            }
            None => {}
        }
        if let Some(chat) = self.chat.as_deref_mut() {
            chat.close(key, Departure::Quiet, &mut deliver!(self));
        }
    }
}
