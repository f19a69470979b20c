//! The `chat` target: the chat service ([`Chat`]: sessions, framing,
//! deadlines, and the router behind them) driven by several clients that
//! connect, send bytes, half-close, are closed, and wait, in an order the
//! input decides, with the reactor's timer heap played in between.
//!
//! After every step it checks what the pure layer lets one see:
//! - every line sent is one protocol line: valid UTF-8, one `\n` at the
//!   end, no control character but TAB inside (PROTOCOL.md §2), a known
//!   keyword, `ERR` with a known code only, relayed text within the line
//!   limit;
//! - lines go only to connected clients (or to one refused just now), and
//!   only a quitting or refused client is closed;
//! - nicks are valid and unique (case-insensitively), one per connected
//!   client, `HELLO` names the nick the router holds, `OK nick` too;
//! - a certificate nick is refused exactly when its holder is connected,
//!   and a squatter is renamed;
//! - `/rooms`, `/who` and `/stats`, asked by every client: each client is
//!   in exactly one room, a room lists exactly its members (sorted), every
//!   listed room has members (rooms empty ⇒ gone), and the counts agree.
//!
//! Input: `[limits] op...`, see [`Op`] for the encoding.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use edgechat::chat::command::valid_name;
use edgechat::chat::router::Outbox;
use edgechat::chat::{Chat, Departure, Expiry, Limits, ERR_CODES};

use crate::Bytes;

/// Connection slots (slab keys) the clients use.
pub const KEYS: usize = 6;
/// Names client certificates can reserve (already in the nick alphabet,
/// as `transport::peer` leaves them); `guest1` collides with a guest.
pub const CERT_NICKS: [&str; 4] = ["alice", "Bob", "guest1", "ALICE"];
/// Lines the input can name in one byte, followed by an argument.
pub const STOCK: [&str; 6] = ["/nick ", "/join ", "/msg ", "/quit ", "/who", "/rooms"];

const KEYWORDS: &[&str] = &[
    "HELLO", "JOIN", "PART", "NICK", "MSG", "DM", "OK", "ERR", "WHO", "ROOMS", "PING", "PONG",
    "STATS", "HELP", "BYE", "QUIT",
];
/// The `ERR` codes only the reactor sends (a cut, a refusal, a shutdown):
/// never the chat service this harness drives.
const REACTOR_ONLY: [&str; 3] = ["slow-consumer", "server-full", "server-shutdown"];

/// One step, as the reactor would take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Bytes from `key` (one read).
    Input(usize, Vec<u8>),
    /// `STOCK[i]`, an argument and `\n` from `key`.
    Stock(usize, usize, Vec<u8>),
    /// A plain client connects on `key`.
    Open(usize),
    /// A client whose certificate names `CERT_NICKS[i]` connects on `key`.
    OpenAs(usize, usize),
    /// `key` half-closes.
    Eof(usize),
    /// The connection on `key` goes, as `Departure` says (0 left, 1
    /// quiet, 2 cut as a slow consumer).
    Close(usize, u8),
    /// Time passes: this many seconds.
    Wait(u8),
}

impl Op {
    /// Reads one step: `[kind | key << 4] args...` (see [`Op::encode`]).
    pub fn decode(input: &mut Bytes<'_>) -> Op {
        let b = input.u8();
        let key = usize::from(b >> 4) % KEYS;
        match b & 0x0f {
            0 | 1 => {
                let n = usize::from(input.u8());
                Op::Input(key, input.take(n).to_vec())
            }
            2 => Op::Open(key),
            3 => Op::OpenAs(key, usize::from(input.u8()) % CERT_NICKS.len()),
            4 => Op::Eof(key),
            5..=7 => Op::Close(key, (b & 0x0f) - 5),
            8 | 9 => Op::Wait(input.u8()),
            k => {
                let n = usize::from(input.u8());
                Op::Stock(key, usize::from(k - 10), input.take(n).to_vec())
            }
        }
    }

    /// The bytes [`Op::decode`] reads back as this step.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let k = |key: usize| (key as u8 % KEYS as u8) << 4;
        match self {
            Op::Input(key, data) => {
                out.push(k(*key));
                out.push(data.len().min(255) as u8);
                out.extend_from_slice(&data[..data.len().min(255)]);
            }
            Op::Stock(key, i, arg) => {
                out.push(k(*key) | (10 + *i as u8 % 6));
                out.push(arg.len().min(255) as u8);
                out.extend_from_slice(&arg[..arg.len().min(255)]);
            }
            Op::Open(key) => out.push(k(*key) | 2),
            Op::OpenAs(key, i) => out.extend([k(*key) | 3, *i as u8]),
            Op::Eof(key) => out.push(k(*key) | 4),
            Op::Close(key, how) => out.push(k(*key) | (5 + how % 3)),
            Op::Wait(s) => out.extend([8, *s]),
        }
    }
}

/// The service limits an input's first byte picks: max line 8, 24, 64 or
/// 4096 bytes; keepalive off or 5-35 s; unfinished-line timeout off or
/// 3-33 s; with the keepalive off, its two bits pick `--max-rate` off, 1,
/// 5 or 50 lines a second.
pub fn limits(b: u8) -> Limits {
    let two = u64::from((b >> 3) & 3);
    let keepalive = b & 4 != 0;
    Limits {
        max_line: [8, 24, 64, 4096][usize::from(b & 3)],
        idle: keepalive.then(|| Duration::from_secs(5 + two * 10)),
        line: (b & 0x20 != 0).then(|| Duration::from_secs(3 + u64::from(b >> 6) * 10)),
        rate: (!keepalive && two != 0).then(|| [0, 1, 5, 50][two as usize]),
    }
}

/// Records what the service sends, in order, a line at a time (a block of
/// held `JOIN`s or `QUIT`s is several lines).
#[derive(Default)]
struct Rec {
    lines: Vec<(usize, Rc<[u8]>)>,
    closes: Vec<usize>,
}

impl Outbox for Rec {
    type Line = Rc<[u8]>;
    fn post(&mut self, line: &[u8], _many: bool) -> Rc<[u8]> {
        Rc::from(line)
    }
    fn suffix(&self, line: &Rc<[u8]>, skip: usize) -> Rc<[u8]> {
        Rc::from(&line[skip..])
    }
    fn deliver(&mut self, to: usize, block: &Rc<[u8]>) {
        for line in block.split_inclusive(|&b| b == b'\n') {
            self.lines.push((to, Rc::from(line)));
        }
    }
    fn close_after_flush(&mut self, key: usize) {
        self.closes.push(key);
    }
}

impl Rec {
    fn texts(&self, to: usize) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .filter(move |(k, _)| *k == to)
            .map(|(_, l)| {
                std::str::from_utf8(l)
                    .expect("checked")
                    .trim_end_matches('\n')
            })
    }
}

/// Where a slot is, as the reactor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// Connected: reading lines.
    Open,
    /// Going away (EOF, `/quit`, refused, cut): held until closed.
    Gone,
}

#[derive(Clone, Copy)]
struct Slot {
    state: State,
    /// Bumped when the slot is freed: timer entries of the old
    /// connection are then ignored, as the reactor's token generation does.
    gen: u64,
    cert: Option<&'static str>,
    /// Paused by `--max-rate` until then: not read, as in the reactor.
    paused: Option<Instant>,
}

struct Harness {
    chat: Chat,
    max_line: usize,
    slots: [Slot; KEYS],
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    now: Instant,
}

/// Runs one input (see the module doc).
pub fn run(data: &[u8]) {
    let mut input = Bytes(data);
    let limits = limits(input.u8());
    let mut h = Harness {
        chat: Chat::new(limits),
        max_line: limits.max_line,
        slots: [Slot {
            state: State::Free,
            gen: 0,
            cert: None,
            paused: None,
        }; KEYS],
        timers: BinaryHeap::new(),
        now: Instant::now(),
    };
    while !input.is_empty() {
        let op = Op::decode(&mut input);
        h.step(&op);
    }
}

impl Harness {
    fn connected(&self) -> Vec<usize> {
        (0..KEYS)
            .filter(|&k| self.chat.router.nick(k).is_some())
            .collect()
    }

    fn arm(&mut self, key: usize) {
        if let Some(at) = self.chat.arm(key) {
            self.timers.push(Reverse((at, key, self.slots[key].gen)));
        }
    }

    fn step(&mut self, op: &Op) {
        let before = self.connected();
        let mut out = Rec::default();
        let mut refused = None;
        let now = self.now;
        match *op {
            Op::Input(key, ref data) => self.input(key, data, &mut out),
            Op::Stock(key, i, ref arg) => {
                let mut line = STOCK[i % STOCK.len()].as_bytes().to_vec();
                line.extend_from_slice(arg);
                line.push(b'\n');
                self.input(key, &line, &mut out);
            }
            Op::Open(key) if self.slots[key].state == State::Free => {
                self.chat.open(key, now, &mut out);
                self.slots[key].state = State::Open;
                self.slots[key].cert = None;
                self.arm(key);
                self.check_hello(key, &out);
            }
            Op::OpenAs(key, i) if self.slots[key].state == State::Free => {
                refused = self.open_as(key, CERT_NICKS[i % CERT_NICKS.len()], &mut out);
            }
            Op::Eof(key) if self.slots[key].state == State::Open => {
                self.chat.eof(key, &mut out);
                self.slots[key].state = State::Gone;
            }
            Op::Close(key, how) if self.slots[key].state != State::Free => {
                let how = match how % 3 {
                    0 => Departure::Left,
                    1 => Departure::Quiet,
                    _ => Departure::Cut("slow-consumer"),
                };
                self.chat.close(key, how, &mut out);
                self.slots[key].state = State::Free;
                self.slots[key].gen += 1;
                self.slots[key].paused = None;
            }
            Op::Wait(secs) => {
                self.now += Duration::from_secs(u64::from(secs));
                self.expire(&mut out);
                self.resume(&mut out);
            }
            _ => {}
        }
        // The end of the reactor's turn: held notices go.
        self.chat.router.send_notices(&mut out);
        let after = self.connected();
        for (to, line) in &out.lines {
            self.check_line(line);
            assert!(
                before.contains(to) || after.contains(to) || refused == Some(*to),
                "{:?} sent to {to}, not connected ({op:?})",
                String::from_utf8_lossy(line)
            );
        }
        for c in &out.closes {
            assert!(
                before.contains(c) || refused == Some(*c),
                "close of {c}, not connected"
            );
        }
        if let Op::Input(key, _) | Op::Stock(key, _, _) = *op {
            let last = out
                .texts(key)
                .filter_map(|l| l.strip_prefix("OK nick "))
                .last();
            if let (Some(nick), true) = (last, after.contains(&key)) {
                assert_eq!(self.chat.router.nick(key), Some(nick), "OK nick");
            }
        }
        if !matches!(op, Op::Open(_) | Op::OpenAs(..)) {
            assert!(out.lines.iter().all(|(_, l)| !l.starts_with(b"HELLO ")));
        }
        self.check_nicks();
        self.probe();
    }

    fn input(&mut self, key: usize, data: &[u8], out: &mut Rec) {
        if self.slots[key].state != State::Open || self.slots[key].paused.is_some() {
            return; // the reactor reads only open connections, not paused ones
        }
        self.feed(key, data, out);
    }

    /// What the reactor does with bytes it read (or, after a pause, with
    /// none: the service goes on with what it held back).
    fn feed(&mut self, key: usize, data: &[u8], out: &mut Rec) {
        let paused = self.chat.input(key, data, self.now, out);
        if let Some(until) = paused {
            assert!(until > self.now, "a pause that ends before it starts");
            assert!(self.chat.backlogged(key), "a pause with nothing held back");
        }
        self.slots[key].paused = paused;
        if out.closes.contains(&key) {
            self.slots[key].state = State::Gone; // after `/quit`
        } else {
            self.arm(key);
        }
    }

    /// A certificate holder connects: refused iff another holder of the
    /// same name is connected; a plain client holding the name is renamed.
    fn open_as(&mut self, key: usize, name: &'static str, out: &mut Rec) -> Option<usize> {
        let held = |c: &Slot| {
            c.state == State::Open && c.cert.is_some_and(|n| n.eq_ignore_ascii_case(name))
        };
        let holder = self.slots.iter().any(held);
        let squatter = self.connected().into_iter().find(|&k| {
            self.slots[k].cert.is_none()
                && self
                    .chat
                    .router
                    .nick(k)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        });
        let admitted = self.chat.open_as(key, self.now, Some(name), out);
        assert_eq!(admitted, !holder, "{name}: holder connected: {holder}");
        if !admitted {
            assert_eq!(out.closes, [key], "a refused holder is closed");
            assert!(out.lines.iter().all(|(k, _)| *k == key));
            self.slots[key].state = State::Gone;
            return Some(key);
        }
        self.slots[key].state = State::Open;
        self.slots[key].cert = Some(name);
        self.arm(key);
        if let Some(s) = squatter {
            let now = self.chat.router.nick(s).expect("still connected");
            assert!(!now.eq_ignore_ascii_case(name), "squatter kept {name}");
            assert!(out.texts(s).any(|l| l.starts_with("NICK ")));
        }
        self.check_hello(key, out);
        None
    }

    /// Clients whose `--max-rate` pause is over go on with what was held.
    fn resume(&mut self, out: &mut Rec) {
        for key in 0..KEYS {
            let due = self.slots[key].paused.is_some_and(|t| t <= self.now);
            if due && self.slots[key].state == State::Open {
                self.slots[key].paused = None;
                self.feed(key, &[], out);
            }
        }
    }

    /// Due deadlines, as the reactor's timer heap runs them.
    fn expire(&mut self, out: &mut Rec) {
        while let Some(&Reverse((at, key, gen))) = self.timers.peek() {
            if at > self.now {
                break;
            }
            self.timers.pop();
            if self.slots[key].gen != gen || self.slots[key].state == State::Free {
                continue;
            }
            match self.chat.expire(key, at, self.now, out) {
                Expiry::Keep => self.arm(key),
                Expiry::Cut(code) => {
                    self.chat.close(key, Departure::Cut(code), out);
                    self.slots[key].state = State::Gone;
                }
            }
        }
    }

    fn check_hello(&self, key: usize, out: &Rec) {
        let nick = self.chat.router.nick(key).expect("connected");
        let first = out.texts(key).next().expect("HELLO");
        assert_eq!(first, format!("HELLO {nick} lobby"));
    }

    fn check_line(&self, line: &[u8]) {
        let s = std::str::from_utf8(line).expect("a line is UTF-8");
        let body = s.strip_suffix('\n').expect("a line ends with \\n");
        assert!(!body.contains('\n'), "{s:?} is two lines");
        assert!(
            !body.contains(|c: char| c.is_control() && c != '\t'),
            "control character in {s:?}"
        );
        let (kw, rest) = body.split_once(' ').unwrap_or((body, ""));
        assert!(KEYWORDS.contains(&kw), "keyword of {s:?}");
        if kw == "ERR" {
            // Only `unknown-command` carries text: the command as sent.
            let code = match rest.split_once(' ') {
                Some(("unknown-command", cmd)) if cmd.starts_with('/') => "unknown-command",
                Some(_) => panic!("text after the code in {s:?}"),
                None => rest,
            };
            assert!(
                ERR_CODES.contains(&code) && !REACTOR_ONLY.contains(&code),
                "{s:?}"
            );
        }
        if ["MSG", "DM", "QUIT", "PING", "PONG"].contains(&kw) {
            // Text is at most a line; a control byte becomes 3 bytes.
            assert!(body.len() <= 3 * self.max_line + 80, "{} bytes", body.len());
        }
    }

    fn check_nicks(&self) {
        let mut seen = BTreeMap::new();
        for k in 0..KEYS {
            let nick = self.chat.router.nick(k);
            assert_eq!(
                nick.is_some(),
                self.slots[k].state == State::Open,
                "slot {k}"
            );
            if let Some(n) = nick {
                assert!(valid_name(n), "nick {n:?}");
                if let Some(cert) = self.slots[k].cert {
                    assert_eq!(n, cert, "a certificate nick never changes");
                }
                let prev = seen.insert(n.to_ascii_lowercase(), k);
                assert!(prev.is_none(), "nick {n} twice");
            }
        }
        assert_eq!(self.chat.router.clients(), seen.len());
    }

    /// Asks every client `/who`, one `/rooms` and `/stats`, and checks the
    /// answers against each other.
    fn probe(&mut self) {
        let open = self.connected();
        let Some(&first) = open.first() else { return };
        let mut out = Rec::default();
        let router = &mut self.chat.router;
        router.line(first, b"/rooms", &mut out);
        router.line(first, b"/stats", &mut out);
        for &k in &open {
            router.line(k, b"/who", &mut out);
        }
        assert_eq!(out.lines.len(), open.len() + 2, "one answer per probe");
        let mut firsts = out.texts(first);
        let rooms: Vec<(&str, usize)> = firsts
            .next()
            .and_then(|l| l.strip_prefix("ROOMS "))
            .expect("ROOMS")
            .split(' ')
            .map(|r| {
                let (name, n) = r.rsplit_once(':').expect("ROOM:COUNT");
                (name, n.parse().expect("count"))
            })
            .collect();
        let stats = firsts.next().expect("STATS");
        assert!(
            stats.starts_with(&format!(
                "STATS clients={} rooms={} ",
                open.len(),
                rooms.len()
            )),
            "{stats}"
        );
        let lower: Vec<String> = rooms.iter().map(|r| r.0.to_ascii_lowercase()).collect();
        assert!(
            lower.windows(2).all(|w| w[0] < w[1]),
            "ROOMS sorted, once each"
        );
        assert!(rooms.iter().all(|r| r.1 > 0), "an empty room is listed");
        assert_eq!(rooms.iter().map(|r| r.1).sum::<usize>(), open.len());
        // Each room's WHO, as its members see it.
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for &k in &open {
            let who = out.texts(k).last().expect("WHO");
            let mut words = who.split(' ');
            assert_eq!(words.next(), Some("WHO"));
            let room = words.next().expect("room").to_string();
            let nicks: Vec<String> = words.map(str::to_string).collect();
            let nick = self.chat.router.nick(k).expect("connected");
            assert!(nicks.iter().any(|n| n == nick), "{who} lacks {nick}");
            let keys: Vec<String> = nicks.iter().map(|n| n.to_ascii_lowercase()).collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "{who} not sorted");
            let count = rooms.iter().find(|r| r.0 == room).map(|r| r.1);
            assert_eq!(count, Some(nicks.len()), "{who} against ROOMS");
            if let Some(prev) = members.insert(room, nicks.clone()) {
                assert_eq!(prev, nicks, "two WHO answers for one room differ");
            }
        }
        assert_eq!(members.len(), rooms.len(), "a listed room nobody is in");
    }
}
