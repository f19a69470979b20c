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
    /// Flood control (GCRA): the moment by which every line handled so far
    /// is paid for at `--max-rate`. A line is handled only while this is at
    /// most one [`WINDOW`] ahead of the clock.
    paid: Instant,
    /// Input read but not yet handled, over the allowance (at most one read).
    backlog: Vec<u8>,
}

/// `--max-rate` allows a burst of one second's worth of lines.
const WINDOW: Duration = Duration::from_secs(1);

/// What one line costs at `rate` lines a second.
fn per_line(rate: u32) -> Duration {
    WINDOW / rate.max(1)
}

/// Splits `data` after the last line the allowance has room for at `now`
/// (the client has paid up to `paid`, each line costs `per`): what goes to
/// the router now, and what must wait. Bytes after the last newline (an
/// unfinished line) go now when every complete line does.
fn split_at_allowance(data: &[u8], paid: Instant, now: Instant, per: Duration) -> (&[u8], &[u8]) {
    let room = (now + WINDOW).saturating_duration_since(paid);
    let allowed = (room.as_nanos() / per.as_nanos().max(1)) as usize;
    let Some(last) = allowed.checked_sub(1) else {
        return data.split_at(0);
    };
    let cut = data
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .nth(last)
        .map_or(data.len(), |(i, _)| i + 1);
    data.split_at(cut)
}

/// Chat service limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_line: usize,
    /// `None`: never ping, never time out.
    pub idle: Option<Duration>,
    pub line: Option<Duration>,
    /// Lines per second one client may send on average, with a burst of as
    /// many (`--max-rate`); `None`: no limit.
    pub rate: Option<u32>,
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
            paid: now,
            backlog: Vec::new(),
        });
        true
    }

    /// Bytes from `key`: every complete line goes to the router, as long
    /// as the client may still be heard (not cut, not after `/quit`).
    ///
    /// With `--max-rate`, only as many lines as its allowance has room for
    /// go now; the rest of `data` (at most one read) waits in the session,
    /// and the return value says until when the reactor must not read from
    /// `key`: then it calls this again (with no new data) to go on. Nothing
    /// is dropped: meanwhile what the client sends waits in its socket, and
    /// TCP slows it down.
    pub fn input(
        &mut self,
        key: usize,
        data: &[u8],
        now: Instant,
        out: &mut impl Outbox,
    ) -> Option<Instant> {
        let s = self.sessions.get_mut(key).and_then(Option::as_mut)?;
        self.router.stats.bytes_in += data.len() as u64;
        s.last_input = now;
        s.ping_at = None;
        let mut held = std::mem::take(&mut s.backlog);
        let data = match held.is_empty() {
            true => data,
            false => {
                held.extend_from_slice(data);
                &held[..]
            }
        };
        let (now_part, later) = match self.limits.rate {
            None => (data, &[][..]),
            Some(rate) => split_at_allowance(data, s.paid.max(now), now, per_line(rate)),
        };
        let router = &mut self.router;
        let ended = s.framer.push(now_part, |frame| {
            if !out.accepting(key) {
                return;
            }
            match frame {
                Frame::Line(line) => router.line(key, line, out),
                Frame::TooLong => router.error(key, "line-too-long", out),
            }
        });
        // `--line-timeout` counts from the unfinished line's first byte: if
        // this input finished a line, what is left started in it.
        s.line_since = match (s.framer.has_partial(), s.line_since) {
            (false, _) => None,
            (true, Some(since)) if ended == 0 => Some(since),
            (true, _) => Some(now),
        };
        if self.router.nick(key).is_none() {
            // After `/quit`: the session ends with the client, so no
            // deadline can send `PING` or `ERR line-timeout` after `BYE`.
            self.sessions[key] = None;
            return None;
        }
        let rate = self.limits.rate?;
        let per = per_line(rate);
        s.paid = s.paid.max(now) + per * ended as u32;
        if later.is_empty() {
            return None;
        }
        s.backlog = later.to_vec();
        // When one more line fits in the allowance.
        let resume = (s.paid + per)
            .checked_sub(WINDOW)
            .map_or(now + per, |t| t.max(now + per));
        // A paused client is not silent and its line is not stalled: its
        // clocks start again when reading does.
        s.last_input = resume;
        s.line_since = s.line_since.map(|_| resume);
        Some(resume)
    }

    /// Whether `key` has input held back by `--max-rate`.
    pub fn backlogged(&self, key: usize) -> bool {
        self.sessions
            .get(key)
            .and_then(Option::as_ref)
            .is_some_and(|s| !s.backlog.is_empty())
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
    use crate::chat::record::Record;
    use std::rc::Rc;

    use super::*;

    #[derive(Default)]
    struct Rec(Vec<(usize, String)>);

    impl Record for Rec {
        fn record(&mut self, to: usize, line: &Rc<[u8]>) {
            self.0
                .push((to, String::from_utf8_lossy(line).into_owned()));
        }
    }

    fn chat() -> Chat {
        Chat::new(Limits {
            max_line: 64,
            idle: Some(Duration::from_secs(5)),
            line: Some(Duration::from_secs(3)),
            rate: None,
        })
    }

    fn pongs(o: &mut Rec) -> Vec<String> {
        let got = o.0.drain(..).map(|(_, l)| l.trim_end().to_string());
        got.filter(|l| l.starts_with("PONG ")).collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `--max-rate 10`: a burst of 10 lines goes at once, then one line per
    /// 100 ms; what is over waits in the session, in order, and nothing is
    /// lost; the return value says when to come back.
    #[test]
    fn max_rate_handles_lines_as_the_allowance_allows() {
        let mut c = Chat::new(Limits {
            rate: Some(10),
            ..chat().limits
        });
        let (mut o, t0) = (Rec::default(), Instant::now());
        c.open(0, t0, &mut o);
        let lines: String = (0..25).map(|i| format!("/ping {i}\n")).collect();
        let back = c.input(0, lines.as_bytes(), t0, &mut o);
        let want: Vec<String> = (0..10).map(|i| format!("PONG {i}")).collect();
        assert_eq!(pongs(&mut o), want);
        assert_eq!(back, Some(t0 + ms(100)));
        assert!(c.backlogged(0));
        // One more line each 100 ms.
        let back = c.input(0, b"", t0 + ms(100), &mut o);
        assert_eq!(pongs(&mut o), ["PONG 10"]);
        assert_eq!(back, Some(t0 + ms(200)));
        // New input queues behind what is held back.
        let back = c.input(0, b"/ping last\n", t0 + ms(2000), &mut o);
        let want: Vec<String> = (11..21).map(|i| format!("PONG {i}")).collect();
        assert_eq!(pongs(&mut o), want);
        assert!(back.is_some());
        let back = c.input(0, b"", t0 + ms(4000), &mut o);
        let mut want: Vec<String> = (21..25).map(|i| format!("PONG {i}")).collect();
        want.push("PONG last".into());
        assert_eq!(pongs(&mut o), want);
        assert_eq!(back, None);
        assert!(!c.backlogged(0));
    }

    /// Without `--max-rate`, everything read is handled at once.
    #[test]
    fn without_max_rate_nothing_waits() {
        let (mut c, mut o, t0) = (chat(), Rec::default(), Instant::now());
        c.open(0, t0, &mut o);
        let lines: String = (0..500).map(|i| format!("/ping {i}\n")).collect();
        assert_eq!(c.input(0, lines.as_bytes(), t0, &mut o), None);
        assert_eq!(pongs(&mut o).len(), 500);
        assert!(!c.backlogged(0));
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
        assert_no_deadline(&mut c, &mut o, at, t0);
    }

    /// Client 0 has no deadline left: its old heap entry `at` is stale
    /// whenever it comes, and nothing is sent to anyone.
    fn assert_no_deadline(c: &mut Chat, o: &mut Rec, at: Instant, t0: Instant) {
        o.0.clear();
        assert_eq!(c.arm(0), None);
        for s in [3, 5, 10, 20] {
            assert_eq!(c.expire(0, at, t0 + secs(s), o), Expiry::Keep);
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
        assert_no_deadline(&mut c, &mut o, at, t0);
    }

    /// `--line-timeout` counts from the first byte of the line now
    /// unfinished, not of an earlier one that a later read finished.
    #[test]
    fn line_timeout_counts_from_the_unfinished_lines_first_byte() {
        let (mut c, mut o, t0) = (chat(), Rec::default(), Instant::now());
        c.open(0, t0, &mut o);
        c.open(1, t0, &mut o);
        o.0.clear();
        c.input(0, b"p0", t0, &mut o);
        for i in 1..10 {
            // Every 2 s a line ends and the next begins (the limit is 3 s).
            let at = t0 + secs(2 * i);
            c.input(0, format!("-end\np{i}").as_bytes(), at, &mut o);
            let due = c.arm(0).expect("a deadline");
            assert_eq!(due, at + secs(3), "line {i}");
            assert_eq!(c.expire(0, due, at + secs(1), &mut o), Expiry::Keep);
        }
        let got: Vec<&str> = o.0.iter().map(|(_, l)| l.as_str()).collect();
        let want: Vec<String> = (0..9).map(|i| format!("MSG guest1 p{i}-end\n")).collect();
        assert_eq!(got, want, "no ERR line-timeout, no line lost");
        // Still unfinished and untouched for 3 s: now it times out.
        o.0.clear();
        let due = c.arm(0).expect("a deadline");
        assert_eq!(c.expire(0, due, due, &mut o), Expiry::Keep);
        assert_eq!(o.0, vec![(0, "ERR line-timeout\n".to_string())]);
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
