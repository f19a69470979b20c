//! Per-connection chat state: the line framer and the two deadlines
//! (keepalive and unfinished line), glued to the [`Router`].
//!
//! The reactor keeps one timer heap for every connection; this module only
//! says when each connection next needs attention ([`Chat::arm`]) and what
//! happens when that time comes ([`Chat::expire`]).

use std::time::{Duration, Instant};

use super::router::{Outbox, Router};
use crate::framing::{Frame, LineFramer};

/// Why a chat connection is going away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// Nobody is told (graceful shutdown, or after `/quit` said it all).
    Quiet,
    /// EOF, reset or error: the room hears `QUIT <nick>`.
    Left,
    /// The server cut it: the room hears `QUIT <nick> <code>`.
    Cut(&'static str),
}

/// What a due deadline asks of the reactor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Nothing more to do, or the connection was handled in place.
    Keep,
    /// Close it (`ERR <code>` is already queued).
    Cut(&'static str),
}

struct Session {
    framer: LineFramer,
    last_input: Instant,
    /// When the unfinished line now held got its first byte.
    line_since: Option<Instant>,
    /// When the server sent `PING` with no input since.
    ping_at: Option<Instant>,
    /// The time of this session's live entry in the reactor's timer heap.
    timer_at: Option<Instant>,
}

/// Chat service limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_line: usize,
    /// `None`: never ping, never time out.
    pub idle: Option<Duration>,
    pub line: Option<Duration>,
}

/// The chat service: the router plus one session per connection.
pub struct Chat {
    pub router: Router,
    sessions: Vec<Option<Session>>,
    limits: Limits,
    pings: u64,
}

impl Chat {
    pub fn new(limits: Limits) -> Chat {
        Chat {
            router: Router::new(),
            sessions: Vec::new(),
            limits,
            pings: 0,
        }
    }

    /// A new connection: `HELLO` to it, `JOIN` to the lobby.
    pub fn open(&mut self, key: usize, now: Instant, out: &mut impl Outbox) {
        self.open_as(key, now, None, out);
    }

    /// A new connection whose client certificate reserves `nick` (see
    /// [`Router::connect_as`]). Returns `false` if it was refused
    /// (`ERR nick-in-use`, then closed after the flush).
    pub fn open_as(
        &mut self,
        key: usize,
        now: Instant,
        nick: Option<&str>,
        out: &mut impl Outbox,
    ) -> bool {
        if !self.router.connect_as(key, nick, out) {
            return false;
        }
        if self.sessions.len() <= key {
            self.sessions.resize_with(key + 1, || None);
        }
        self.sessions[key] = Some(Session {
            framer: LineFramer::new(self.limits.max_line),
            last_input: now,
            line_since: None,
            ping_at: None,
            timer_at: None,
        });
        true
    }

    /// Bytes from `key`: every complete line goes to the router.
    pub fn input(&mut self, key: usize, data: &[u8], now: Instant, out: &mut impl Outbox) {
        let Some(s) = self.sessions.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        self.router.stats.bytes_in += data.len() as u64;
        s.last_input = now;
        s.ping_at = None;
        let router = &mut self.router;
        s.framer.push(data, |frame| match frame {
            Frame::Line(line) => router.line(key, line, out),
            Frame::TooLong => router.error(key, "line-too-long", out),
        });
        s.line_since = match (s.framer.has_partial(), s.line_since) {
            (false, _) => None,
            (true, since) => Some(since.unwrap_or(now)),
        };
        if self.router.nick(key).is_none() {
            // After `/quit`: the session ends with the client, so no
            // deadline can send `PING` or `ERR line-timeout` after `BYE`.
            self.sessions[key] = None;
        }
    }

    /// The client closed its side: its unfinished line is dropped and its
    /// room hears `QUIT <nick>`. What it is owed is still sent; nothing is
    /// added to it (its deadlines go with the session).
    pub fn eof(&mut self, key: usize, out: &mut impl Outbox) {
        if let Some(s) = self.sessions.get_mut(key) {
            *s = None;
        }
        self.router.disconnect(key, None, true, out);
    }

    /// The connection is gone: forget it, telling its room as `how` says.
    pub fn close(&mut self, key: usize, how: Departure, out: &mut impl Outbox) {
        if let Some(s) = self.sessions.get_mut(key) {
            *s = None;
        }
        match how {
            Departure::Quiet => self.router.disconnect(key, None, false, out),
            Departure::Left => self.router.disconnect(key, None, true, out),
            Departure::Cut(code) => self.router.disconnect(key, Some(code), true, out),
        }
    }

    /// When `key` next needs [`Chat::expire`], if that is earlier than the
    /// heap entry it already has: the caller pushes the returned time.
    pub fn arm(&mut self, key: usize) -> Option<Instant> {
        let limits = self.limits;
        let s = self.sessions.get_mut(key).and_then(Option::as_mut)?;
        let due = deadline(s, &limits)?;
        if s.timer_at.is_some_and(|t| t <= due) {
            return None;
        }
        s.timer_at = Some(due);
        Some(due)
    }

    /// A heap entry for `key` at `at` came due. Stale entries (not the
    /// session's live one) are ignored; the caller calls [`Chat::arm`] after.
    pub fn expire(
        &mut self,
        key: usize,
        at: Instant,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Expiry {
        let limits = self.limits;
        let Some(s) = self.sessions.get_mut(key).and_then(Option::as_mut) else {
            return Expiry::Keep;
        };
        if s.timer_at != Some(at) {
            return Expiry::Keep;
        }
        s.timer_at = None;
        if let (Some(since), Some(limit)) = (s.line_since, limits.line) {
            if now >= since + limit {
                s.framer.drop_partial();
                s.line_since = None;
                self.router.error(key, "line-timeout", out);
            }
        }
        let Some(idle) = limits.idle else {
            return Expiry::Keep;
        };
        match s.ping_at {
            Some(ping) if now >= ping + idle => {
                self.router.error(key, "idle-timeout", out);
                return Expiry::Cut("idle-timeout");
            }
            None if now >= s.last_input + idle => {
                s.ping_at = Some(now);
                self.pings += 1;
                let token = format!("k{}", self.pings);
                self.router.ping(key, &token, out);
            }
            _ => {}
        }
        Expiry::Keep
    }
}

/// The earliest moment `s` needs attention.
fn deadline(s: &Session, limits: &Limits) -> Option<Instant> {
    let line = s.line_since.zip(limits.line).map(|(t, d)| t + d);
    let idle = limits.idle.map(|d| s.ping_at.unwrap_or(s.last_input) + d);
    match (line, idle) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    #[derive(Default)]
    struct Rec(Vec<(usize, String)>);

    impl Outbox for Rec {
        fn deliver(&mut self, to: usize, line: &Rc<[u8]>) {
            self.0
                .push((to, String::from_utf8_lossy(line).into_owned()));
        }
        fn close_after_flush(&mut self, _key: usize) {}
    }

    fn chat() -> Chat {
        Chat::new(Limits {
            max_line: 64,
            idle: Some(Duration::from_secs(5)),
            line: Some(Duration::from_secs(3)),
        })
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Once a client has half-closed, none of its deadlines sends it
    /// anything (no `PING`, no `ERR line-timeout` for the dropped line).
    #[test]
    fn no_deadline_outlives_eof() {
        let (mut c, mut o, t0) = (chat(), Rec::default(), Instant::now());
        c.open(0, t0, &mut o);
        c.open(1, t0, &mut o);
        c.input(0, b"unfinished", t0, &mut o);
        let at = c.arm(0).expect("a deadline");
        c.eof(0, &mut o);
        assert_eq!(o.0.pop(), Some((1, "QUIT guest1\n".into())));
        o.0.clear();
        assert_eq!(c.arm(0), None);
        for s in [3, 5, 10, 20] {
            assert_eq!(c.expire(0, at, t0 + secs(s), &mut o), Expiry::Keep);
        }
        assert_eq!(o.0, vec![]);
    }

    /// The same after `/quit`: `BYE` is the last line the client gets.
    #[test]
    fn no_deadline_outlives_quit() {
        let (mut c, mut o, t0) = (chat(), Rec::default(), Instant::now());
        c.open(0, t0, &mut o);
        let at = c.arm(0).expect("a deadline");
        c.input(0, b"/quit\nunfinished", t0, &mut o);
        assert_eq!(o.0.pop(), Some((0, "BYE\n".into())));
        o.0.clear();
        assert_eq!(c.arm(0), None);
        for s in [3, 5, 10, 20] {
            assert_eq!(c.expire(0, at, t0 + secs(s), &mut o), Expiry::Keep);
        }
        assert_eq!(o.0, vec![]);
    }

    /// A connected client still gets its deadlines (the two tests above
    /// fail for the right reason).
    #[test]
    fn deadlines_of_a_connected_client() {
        let (mut c, mut o, t0) = (chat(), Rec::default(), Instant::now());
        c.open(0, t0, &mut o);
        c.input(0, b"unfinished", t0, &mut o);
        o.0.clear();
        let at = c.arm(0).expect("a deadline");
        assert_eq!(at, t0 + secs(3));
        assert_eq!(c.expire(0, at, at, &mut o), Expiry::Keep);
        let at = c.arm(0).expect("the keepalive");
        assert_eq!(c.expire(0, at, at, &mut o), Expiry::Keep);
        let at = c.arm(0).expect("the cut");
        assert_eq!(c.expire(0, at, at, &mut o), Expiry::Cut("idle-timeout"));
        let got: Vec<&str> = o.0.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            got,
            ["ERR line-timeout\n", "PING k1\n", "ERR idle-timeout\n"]
        );
    }
}
