//! What a chaos client does when its timer fires, in each state: connect
//! when it has no connection, give up on a connect or a `HELLO` that does
//! not come, act when it is open, read a chunk when it reads slowly, send
//! (or stop being deaf) when it does not read, trickle one more byte of a
//! slowloris line, and give up on a server that does not close.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::{
    Actor, Ctx, Slot, State, CLOSE_LIMIT, CONNECT_LIMIT, GAP_MS, HELLO_LIMIT, RAW_LIMIT, SLOW_EVERY,
};
use crate::bench::chaos::payload;
use crate::sys::socket;

impl Actor {
    /// Its timer fired: does what its state calls for next.
    pub fn on_wake(&mut self, ctx: &mut Ctx) {
        let now = ctx.now;
        let state = match &self.slot {
            Slot::Off => return self.connect(ctx),
            Slot::Connecting { since, .. } => {
                if now >= *since + CONNECT_LIMIT {
                    ctx.tally.connect_failed += 1;
                    let i = self.index;
                    ctx.tally
                        .note(|| format!("chaos client {i}: connect timed out"));
                    self.off(now);
                } else {
                    self.wake = *since + CONNECT_LIMIT;
                }
                return;
            }
            Slot::On(live) => live.state,
        };
        match state {
            State::Open => self.open_wake(ctx),
            State::Slow(until) => self.slow_wake(ctx, until),
            State::Deaf { until, talking } => self.deaf_wake(ctx, until, talking),
            State::Slowloris(until) => self.slowloris_wake(ctx, until),
            State::Closing { since, lines } => self.closing_wake(ctx, since, lines),
            State::Raw(since) => self.raw_wake(ctx, since),
        }
    }

    /// Raw bytes on the TLS port: the client leaves first (half the time,
    /// before any handshake deadline, now and then with a reset), or
    /// counts a connection the server never closed.
    fn raw_wake(&mut self, ctx: &mut Ctx, since: Instant) {
        let now = ctx.now;
        if now >= since + RAW_LIMIT {
            ctx.tally.raw_open += 1;
            return self.off(now);
        }
        if let Slot::On(live) = &self.slot {
            if self.rng.chance(1, 3) {
                let _ = socket::set_linger_zero(live.conn.link.fd.as_fd());
            }
        }
        self.off(now);
    }

    /// Half-closed or after `/quit`: lines still arriving move the clock;
    /// a server silent for [`CLOSE_LIMIT`] forgot the connection.
    fn closing_wake(&mut self, ctx: &mut Ctx, since: Instant, lines: u64) {
        let now = ctx.now;
        let Slot::On(live) = &mut self.slot else {
            return;
        };
        if live.lines > lines {
            let lines = live.lines;
            live.state = State::Closing { since: now, lines };
            self.wake = now + CLOSE_LIMIT;
            return;
        }
        if now < since + CLOSE_LIMIT {
            self.wake = since + CLOSE_LIMIT;
            return;
        }
        ctx.tally.stalled_closes += 1;
        let (i, unsent) = (self.index, live.out.len() - live.sent);
        ctx.tally.note(|| {
            format!(
                "chaos client {i}: nothing from the server for {CLOSE_LIMIT:?} after its \
                 half-close or /quit, and no close ({unsent} bytes still unsent)"
            )
        });
        self.off(now);
    }

    pub(super) fn gap(&mut self, now: Instant) -> Instant {
        now + self.rng.millis(GAP_MS.0, GAP_MS.1)
    }

    fn open_wake(&mut self, ctx: &mut Ctx) {
        let now = ctx.now;
        let Slot::On(live) = &self.slot else { return };
        if live.conn.hello {
            return self.act(ctx);
        }
        if now >= live.opened + HELLO_LIMIT {
            ctx.tally.no_hello += 1;
            let (i, via) = (self.index, live.via);
            ctx.tally
                .note(|| format!("chaos client {i} ({via:?}): no HELLO within {HELLO_LIMIT:?}"));
            return self.off(now);
        }
        self.wake = now + Duration::from_millis(200);
    }

    fn slow_wake(&mut self, ctx: &mut Ctx, until: Instant) {
        let now = ctx.now;
        let Slot::On(live) = &mut self.slot else {
            return;
        };
        let all = now >= until;
        if all {
            live.state = State::Open;
        }
        let outcome = match live.read(&mut ctx.buf, &mut self.rng, &mut ctx.tally, all) {
            Ok(true) => live.flush().map(|()| true),
            other => other,
        };
        self.wake = if all { self.gap(now) } else { now + SLOW_EVERY };
        self.settle(ctx, outcome);
    }

    fn deaf_wake(&mut self, ctx: &mut Ctx, until: Instant, talking: bool) {
        let now = ctx.now;
        if now >= until && self.rng.chance(1, 2) {
            return self.off(now); // gives up waiting to be cut: reconnects
        }
        let next = (now + self.rng.millis(300, 700)).min(until);
        let Slot::On(live) = &mut self.slot else {
            return;
        };
        if now >= until {
            // Reads again: what the server queued, and how it ended (a
            // cut's `ERR`, then EOF) if it did.
            live.state = State::Open;
            self.wake = self.gap(now);
            return self.service(ctx);
        }
        if !talking {
            self.wake = until;
            return;
        }
        let (rng, me) = (&mut self.rng, self.index);
        live.push(&mut ctx.tally, |out| match rng.below(4) {
            0 => payload::talk(out, rng),
            1 => payload::unread_answers(out, rng),
            _ => payload::dm_flood(out, rng, me),
        });
        let outcome = live.flush().map(|()| true);
        self.wake = next;
        self.settle(ctx, outcome);
    }

    fn slowloris_wake(&mut self, ctx: &mut Ctx, until: Instant) {
        let now = ctx.now;
        let Slot::On(live) = &mut self.slot else {
            return;
        };
        if now >= until && self.rng.chance(1, 2) {
            return self.off(now); // the line is never finished
        }
        if now >= until {
            // Finished after all: without its `\n` the next line would be
            // glued to it (a `/quit` would be talk).
            live.push(&mut ctx.tally, |out| out.push(b'\n'));
            live.state = State::Open;
            let outcome = live.flush().map(|()| true);
            self.wake = self.gap(now);
            return self.settle(ctx, outcome);
        }
        live.push(&mut ctx.tally, |out| out.push(b'z'));
        let outcome = live.flush().map(|()| true);
        self.wake = (now + self.rng.millis(200, 700)).min(until);
        self.settle(ctx, outcome);
    }
}
