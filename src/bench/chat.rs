//! The chat fan-out load: S senders and R receivers in one room of a chat
//! server, all driven by one thread over one epoll set.
//!
//! Connections `0..S` are the senders, `S..S+R` the receivers; every one
//! reads its `HELLO` before the clock starts. Each sender keeps up to
//! `--depth` lines in flight ([`Window`]); a line leaves the window once
//! every receiver has it. Receivers check that each sender's numbers arrive
//! in order without gaps, and time each delivery from the timestamp inside
//! the line. Senders are in the room too: they read and drop whatever
//! arrives, so the server never finds them slow. Nothing is allocated per
//! line: each sender's output buffer holds a full window from the start.
//!
//! Over Redis or NATS (`--proto`, [`super::pubsub`]) the receivers subscribe to
//! one channel and the senders only publish to it: a sender reads its
//! server's replies (Redis: one integer per `PUBLISH`) and drops them, and
//! gets no lines. Either way a line counts as delivered once the
//! `--receivers` have it: what senders hear is never counted.

use std::time::Instant;

use super::chatline::Relayed;
use super::lineconn::LineConn;
use super::link::Dialer;
use super::pool::{Pool, STALL};
use super::progress::Progress;
use super::pubsub::{Proto, Role};
use super::stats::Histogram;
use super::window::Window;
use crate::error::Result;

/// What the measured window has seen.
#[derive(Debug, Default)]
pub struct ChatTally {
    /// Lines delivered to every receiver.
    pub lines: u64,
    /// Lines received by a receiver (each line counts once per receiver).
    pub deliveries: u64,
    /// A sender's line out of order, repeated or after a gap (kept across
    /// [`ChatTally::clear`], as is `bad_lines`).
    pub order_errors: u64,
    /// `MSG` lines that are not benchmark lines.
    pub bad_lines: u64,
    /// Per delivery: receipt time minus the timestamp in the line, ns.
    pub latency: Histogram,
}

impl ChatTally {
    /// Starts the measured window: forgets counts and latencies.
    pub fn clear(&mut self) {
        self.lines = 0;
        self.deliveries = 0;
        self.latency.clear();
    }
}

/// The receivers' side of the books, apart from the connections so a read
/// can update it while the pool is borrowed.
struct Book {
    start: Instant,
    senders: usize,
    /// What a receiver makes of a line (edgechat) or payload (Redis, NATS).
    relayed: fn(&[u8]) -> Relayed,
    /// The next number receiver `r` expects from sender `s`: `r * S + s`.
    expect: Vec<u64>,
    windows: Vec<Window>,
    /// Senders whose window has room again, and whether each is listed.
    kick: Vec<usize>,
    kicked: Vec<bool>,
    tally: ChatTally,
}

impl Book {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn kick(&mut self, sender: usize) {
        if !self.kicked[sender] {
            self.kicked[sender] = true;
            self.kick.push(sender);
        }
    }

    /// Receiver `r` read `line` at `now_ns`.
    fn on_line(&mut self, r: usize, line: &[u8], now_ns: u64) {
        let (sender, seq, ts_ns) = match (self.relayed)(line) {
            Relayed::Other => return,
            Relayed::Msg { sender, seq, ts_ns } if sender < self.senders => (sender, seq, ts_ns),
            _ => {
                self.tally.bad_lines += 1;
                return;
            }
        };
        let expect = &mut self.expect[r * self.senders + sender];
        if seq != *expect {
            self.tally.order_errors += 1;
        }
        *expect = (*expect).max(seq + 1);
        self.tally.deliveries += 1;
        self.tally.latency.record(now_ns.saturating_sub(ts_ns));
        let done = self.windows[sender].got(seq);
        if done > 0 {
            self.tally.lines += done;
            self.kick(sender);
        }
    }
}

/// The shape of the load.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub senders: usize,
    pub receivers: usize,
    /// Bytes per line, `\n` included.
    pub size: usize,
    /// Lines in flight per sender.
    pub depth: usize,
    /// The server's protocol.
    pub proto: Proto,
}

/// Every connection of the chat load and what it has achieved.
pub struct ChatLoad {
    pub pool: Pool,
    senders: usize,
    size: usize,
    proto: Proto,
    /// The Redis channel or NATS subject.
    channel: Vec<u8>,
    /// Each sender's unsent bytes: `outs[s][sent[s]..]`.
    outs: Vec<Vec<u8>>,
    sent: Vec<usize>,
    book: Book,
    /// Lines that may still be started (`u64::MAX` without `--count`).
    budget: u64,
    /// Stop once this many lines are delivered (`--count`).
    target: Option<u64>,
}

impl ChatLoad {
    /// Connects the senders, then the receivers, and waits for every
    /// `HELLO` (Redis, NATS: until each is ready, every receiver
    /// subscribed). With `count`, no more than `count` lines are ever sent.
    pub fn connect(dialer: &Dialer, shape: Shape, count: Option<u64>) -> Result<ChatLoad> {
        let Shape {
            senders,
            receivers,
            size,
            depth,
            proto,
        } = shape;
        let channel = proto.channel();
        let mut pool = Pool::connect_with(dialer, senders + receivers, |i, link| {
            let role = if i < senders {
                Role::Sender
            } else {
                Role::Receiver
            };
            match proto {
                Proto::Edgechat => LineConn::new(link),
                _ => {
                    let greeting = proto.greeting(role, &channel);
                    LineConn::speaking(link, proto, greeting, proto.max_frame(size))
                }
            }
        })?;
        pool.await_hellos()?;
        // A window of framed lines, and room for a PONG owed before them.
        let out_cap = depth * proto.framed_len(&channel, size) + 64;
        Ok(ChatLoad {
            pool,
            senders,
            size,
            proto,
            outs: (0..senders).map(|_| Vec::with_capacity(out_cap)).collect(),
            channel,
            sent: vec![0; senders],
            book: Book {
                start: Instant::now(),
                senders,
                relayed: proto.relayed(),
                expect: vec![0; receivers * senders],
                windows: (0..senders)
                    .map(|_| Window::new(depth, receivers))
                    .collect(),
                kick: Vec::with_capacity(senders),
                kicked: vec![false; senders],
                tally: ChatTally::default(),
            },
            budget: count.unwrap_or(u64::MAX),
            target: count,
        })
    }

    pub fn tally(&mut self) -> &mut ChatTally {
        &mut self.book.tally
    }

    /// Drives the load until `until` (or, with `--count`, until every line
    /// is delivered), until a connection is lost, or until nothing has been
    /// delivered for [`STALL`].
    pub fn run(&mut self, until: Option<Instant>) -> Result<()> {
        for s in 0..self.senders {
            self.fill(s);
        }
        let mut last = self.book.tally.deliveries;
        let mut progress = Instant::now();
        let mut shown = Progress::new("deliveries");
        loop {
            if self.target.is_some_and(|t| self.book.tally.lines >= t) || self.pool.failed > 0 {
                return Ok(());
            }
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) {
                return Ok(());
            }
            if self.book.tally.deliveries != last {
                (last, progress) = (self.book.tally.deliveries, now);
            }
            shown.tick(now, self.book.tally.deliveries);
            let stall_at = progress + STALL;
            if now >= stall_at {
                self.pool.fail(0, "no line delivered for 10 s");
                return Ok(());
            }
            let wake = until.map_or(stall_at, |u| u.min(stall_at));
            let n = self.pool.wait(wake - now)?;
            let now_ns = self.book.now_ns();
            for k in 0..n {
                let i = self.pool.conn_of(k);
                if i < self.senders {
                    self.pool.read(i, |_| {}); // a sender drops what it hears
                    self.book.kick(i); // the event may be EPOLLOUT
                } else {
                    let book = &mut self.book;
                    let r = i - self.senders;
                    if self.pool.read(i, |line| book.on_line(r, line, now_ns)) {
                        self.pool.flush(i); // a PONG for a NATS server's PING
                    }
                }
            }
            while let Some(s) = self.book.kick.pop() {
                self.book.kicked[s] = false;
                self.fill(s);
            }
        }
    }

    /// Starts as many lines as sender `s`'s window and the budget allow
    /// (once what it had is sent, and after what the connection owes the
    /// server, a `PONG`), and sends what it has in one `send` (TLS: also
    /// the records rustls still owes, even with no new line).
    fn fill(&mut self, s: usize) {
        let Some(Some(conn)) = self.pool.conns.get_mut(s) else {
            return;
        };
        if !conn.link.writable {
            return;
        }
        let out = &mut self.outs[s];
        if self.sent[s] == out.len() {
            out.clear();
            self.sent[s] = 0;
            out.extend_from_slice(&conn.owed);
            conn.owed.clear();
            let window = &mut self.book.windows[s];
            let n = window.room().min(self.budget);
            self.budget -= n;
            let ts_ns = self.book.start.elapsed().as_nanos() as u64;
            for _ in 0..n {
                let (seq, size) = (window.start(), self.size);
                self.proto
                    .encode_line(out, &self.channel, s, seq, ts_ns, size);
            }
        }
        match conn.link.send(&out[self.sent[s]..]) {
            Ok(n) => self.sent[s] += n,
            Err(e) => {
                let why = format!("sender {s}: send {}: {e}", self.pool.addr);
                self.pool.fail(s, &why);
            }
        }
    }
}

impl super::Window for ChatLoad {
    fn run_until(&mut self, until: Option<Instant>) -> Result<()> {
        self.run(until)
    }
    fn forget(&mut self) {
        self.tally().clear();
    }
}
