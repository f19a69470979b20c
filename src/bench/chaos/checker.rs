//! The well-behaved clients of the chaos soak. Each takes the nick
//! `chk<i>`, joins the room [`ROOM`] (where chaos clients talk too), and
//! every [`TICK`] sends one numbered room line; every [`DM_EVERY`] ticks
//! also one numbered direct message to another checker, a different one
//! each time. Each reads everything at once, answers `PING` with `/pong`,
//! and hands every checker line it receives to the [`Ledger`]. An `ERR`
//! line or a connection the server ends is a failure: a checker is never
//! slow, never idle and never sends a bad line, so the server has no
//! reason to cut it.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::ledger::{Ledger, Numbered, Stream};
use crate::bench::lineconn::LineConn;
use crate::bench::link::Dialer;
use crate::error::{Context, Error, Result};
use crate::sys::epoll::{self, Epoll, Event};

/// The room the checkers talk in.
pub const ROOM: &str = "den";
/// How often each checker sends a room line.
pub const TICK: Duration = Duration::from_millis(20);
/// Every this many ticks, each checker also sends a direct message.
const DM_EVERY: u64 = 4;
/// Tokens of checker connections carry this bit (chaos clients' do not).
pub const CHECKER: u64 = 1 << 63;
/// Unsent bytes a checker may pile up before the server counts as not
/// reading it.
const OUT_CAP: usize = 1 << 20;
/// Set-up fails if the checkers have not all joined by then.
const SETUP_LIMIT: Duration = Duration::from_secs(10);

/// One checker connection; `None` once the server ended it.
struct Checker {
    conn: Option<LineConn>,
    out: Vec<u8>,
    sent: usize,
    named: bool,
    joined: bool,
}

/// Every checker, and the books they keep together.
pub struct Checkers {
    list: Vec<Checker>,
    pub ledger: Ledger,
    /// Checkers whose connection the server ended.
    pub cut: u64,
    /// `ERR` lines checkers received.
    pub errors: u64,
    /// Lines from chaos clients, which checkers read and ignore.
    pub foreign: u64,
    pub first_error: Option<String>,
    ticks: u64,
    /// Lines carry their send time as µs since then.
    start: Instant,
}

/// What one read of checker `me` asks of the rest.
struct Seen<'a> {
    me: usize,
    k: usize,
    now_us: u64,
    ledger: &'a mut Ledger,
    out: &'a mut Vec<u8>,
    named: &'a mut bool,
    joined: &'a mut bool,
    errors: &'a mut u64,
    foreign: &'a mut u64,
    first_error: &'a mut Option<String>,
}

impl Seen<'_> {
    fn line(&mut self, line: &[u8]) {
        let (via, rest) = if let Some(r) = line.strip_prefix(b"MSG ") {
            (Stream::Room, r)
        } else if let Some(r) = line.strip_prefix(b"DM ") {
            (Stream::Direct, r)
        } else {
            return self.other(line);
        };
        let (from, text) = split_word(rest);
        let from = from
            .strip_prefix(b"chk")
            .and_then(|d| std::str::from_utf8(d).ok()?.parse::<usize>().ok())
            .filter(|&i| i < self.k);
        match (from, Numbered::parse(text)) {
            (Some(from), Some(numbered)) => {
                self.ledger
                    .receive(self.me, from, via, numbered, self.now_us)
            }
            (Some(_), None) => self.ledger.forged += 1,
            (None, _) => *self.foreign += 1,
        }
    }

    fn other(&mut self, line: &[u8]) {
        if let Some(token) = line.strip_prefix(b"PING ") {
            self.out.extend_from_slice(b"/pong ");
            self.out.extend_from_slice(token);
            self.out.push(b'\n');
        } else if line.starts_with(b"ERR ") {
            *self.errors += 1;
            let me = self.me;
            let text = String::from_utf8_lossy(line).into_owned();
            self.first_error
                .get_or_insert_with(|| format!("checker {me} was sent {text:?}"));
        } else if line == format!("OK nick chk{}", self.me).as_bytes() {
            *self.named = true;
        } else if line == format!("OK join {ROOM}").as_bytes() {
            *self.joined = true;
        }
    }
}

/// The first space-separated word of `s`, and the rest after its space.
fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

impl Checkers {
    /// Connects `k` checkers (every second one with `tls`, if given),
    /// names them, joins them to [`ROOM`] and waits until all are there.
    pub fn connect(
        k: usize,
        plain: &Dialer,
        tls: Option<&Dialer>,
        epoll: &Epoll,
        buf: &mut [u8],
    ) -> Result<Checkers> {
        let mut list = Vec::with_capacity(k);
        for i in 0..k {
            let dialer = match tls {
                Some(tls) if i % 2 == 1 => tls,
                _ => plain,
            };
            let link = dialer.dial()?;
            epoll
                .add(link.fd.as_fd(), epoll::interest_all(), CHECKER | i as u64)
                .sys("epoll_ctl")?;
            list.push(Checker {
                conn: Some(LineConn::new(link)),
                out: format!("/nick chk{i}\n/join {ROOM}\n").into_bytes(),
                sent: 0,
                named: false,
                joined: false,
            });
        }
        let mut all = Checkers {
            list,
            ledger: Ledger::new(k),
            cut: 0,
            errors: 0,
            foreign: 0,
            first_error: None,
            ticks: 0,
            start: Instant::now(),
        };
        all.await_joined(epoll, buf)?;
        Ok(all)
    }

    fn await_joined(&mut self, epoll: &Epoll, buf: &mut [u8]) -> Result<()> {
        let deadline = Instant::now() + SETUP_LIMIT;
        let mut events = Epoll::events(64);
        for i in 0..self.list.len() {
            self.service(i, buf);
        }
        loop {
            if self.cut > 0 || self.errors > 0 {
                let why = self.first_error.clone().unwrap_or_default();
                return Err(Error::Check(format!("checker set-up: {why}")));
            }
            if self.list.iter().all(|c| c.named && c.joined) {
                return Ok(());
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(Error::Check(format!(
                    "the checkers were not all named and in {ROOM} within {} s",
                    SETUP_LIMIT.as_secs()
                )));
            };
            let n = epoll.wait(&mut events, Some(left)).sys("epoll_wait")?;
            for ev in &events[..n] {
                self.on_event(ev, buf);
            }
        }
    }

    /// True while any checker is still connected.
    pub fn any_alive(&self) -> bool {
        self.list.iter().any(|c| c.conn.is_some())
    }

    /// Checkers the server has not cut.
    pub fn alive(&self) -> Vec<bool> {
        self.list.iter().map(|c| c.conn.is_some()).collect()
    }

    /// An event for a checker (its token has [`CHECKER`]).
    pub fn on_event(&mut self, ev: &Event, buf: &mut [u8]) {
        let i = (epoll::token(ev) & 0xffff_ffff) as usize;
        if let Some(Some(conn)) = self.list.get_mut(i).map(|c| c.conn.as_mut()) {
            conn.link.note(ev);
            self.service(i, buf);
        }
    }

    /// Reads everything checker `i` was sent, then sends what it owes.
    fn service(&mut self, i: usize, buf: &mut [u8]) {
        let k = self.list.len();
        let Some(c) = self.list.get_mut(i) else {
            return;
        };
        let Some(conn) = c.conn.as_mut() else {
            return;
        };
        let now_us = self.start.elapsed().as_micros() as u64;
        let mut seen = Seen {
            me: i,
            k,
            now_us,
            ledger: &mut self.ledger,
            out: &mut c.out,
            named: &mut c.named,
            joined: &mut c.joined,
            errors: &mut self.errors,
            foreign: &mut self.foreign,
            first_error: &mut self.first_error,
        };
        let read = conn.read_lines(buf, &mut |line: &[u8]| seen.line(line));
        let why = match read {
            Ok(true) => match flush(c) {
                Ok(()) => return,
                Err(e) => format!("send: {e}"),
            },
            Ok(false) => "closed by the server".to_string(),
            Err(e) => format!("recv: {e}"),
        };
        c.conn = None;
        self.cut += 1;
        self.first_error
            .get_or_insert_with(|| format!("checker {i}: {why}"));
    }

    /// One tick: a room line from every checker, and now and then a direct
    /// message to another.
    pub fn tick(&mut self) {
        self.ticks += 1;
        let k = self.list.len();
        let alive = self.alive();
        let now_us = self.start.elapsed().as_micros() as u64;
        // Every third tick ends its lines with CRLF: relayed, the `\r` must
        // be gone, or the line would not read back.
        let end: &[u8] = if self.ticks % 3 == 0 { b"\r\n" } else { b"\n" };
        for i in (0..k).filter(|&i| alive[i]) {
            let mut line = b"".to_vec();
            self.ledger.send_room(i, now_us).write(&mut line);
            line.extend_from_slice(end);
            if self.ticks % DM_EVERY == 0 && k > 1 {
                let j = (i + 1 + (self.ticks / DM_EVERY) as usize % (k - 1)) % k;
                if alive[j] {
                    line.extend_from_slice(format!("/msg chk{j} ").as_bytes());
                    self.ledger.send_direct(i, j, now_us).write(&mut line);
                    line.extend_from_slice(end);
                }
            }
            self.send(i, &line);
        }
    }

    fn send(&mut self, i: usize, line: &[u8]) {
        let c = &mut self.list[i];
        c.out.extend_from_slice(line);
        let why = match flush(c) {
            Ok(()) if c.out.len() - c.sent <= OUT_CAP => return,
            Ok(()) => format!("{OUT_CAP} bytes the server would not take"),
            Err(e) => format!("send: {e}"),
        };
        c.conn = None;
        self.cut += 1;
        self.first_error
            .get_or_insert_with(|| format!("checker {i}: {why}"));
    }

    /// True once every checker still connected has sent all it owes.
    pub fn flushed(&self) -> bool {
        let owed = |c: &Checker| {
            c.sent < c.out.len()
                || c.conn
                    .as_ref()
                    .is_some_and(|l| l.link.transport.wants_write())
        };
        !self.list.iter().any(owed)
    }

    /// Sends what the checkers still owe (at the end, with no new line).
    pub fn flush_all(&mut self, buf: &mut [u8]) {
        for i in 0..self.list.len() {
            self.service(i, buf);
        }
    }
}

/// Sends what checker `c` owes, as far as the socket takes it.
fn flush(c: &mut Checker) -> std::io::Result<()> {
    let Some(conn) = c.conn.as_mut() else {
        return Ok(());
    };
    loop {
        let n = conn.link.send(&c.out[c.sent..])?;
        c.sent += n;
        if n == 0 || c.sent == c.out.len() {
            break;
        }
    }
    if c.sent == c.out.len() {
        c.out.clear();
        c.sent = 0;
    }
    Ok(())
}
