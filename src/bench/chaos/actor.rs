//! One chaos client: a connection (or none) and a timer. Each time its
//! timer fires it does one thing, drawn from its own seeded [`Rng`]:
//! disconnected, it connects (plain; TLS; or to the TLS port with bytes
//! that are not TLS, or a ClientHello cut short); connected, it talks,
//! changes nick or room, sends a bad line, reads slowly or not at all,
//! trickles a line it never finishes, half-closes, resets or leaves.
//!
//! It never trusts the server to keep it: any read or write may find the
//! connection gone (a cut, a timeout, a reset), which is counted and
//! followed by a reconnect a moment later. Connecting is nonblocking
//! (`connect` → `EPOLLOUT` → `SO_ERROR`), so one slow accept never stalls
//! the other clients.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::rng::Rng;
use super::tally::{Kind, Tally};
use crate::bench::lineconn::LineConn;
use crate::bench::link::Dialer;
use crate::sys::epoll::{self, Epoll, Event};

/// Receive buffer of every chaos connection, set before `connect`: a
/// client that stops reading fills it soon. (The server's kernel send
/// buffer for it still grows, on loopback, to `tcp_wmem`'s maximum, some
/// megabytes, before `--max-output` starts to count: so the deaf clients
/// that want to be cut flood themselves.)
const RCVBUF: usize = 8 * 1024;
/// Between two actions of one client, in milliseconds.
const GAP_MS: (u64, u64) = (100, 1900);
/// Between a disconnect and the next connect, in milliseconds.
const RECONNECT_MS: (u64, u64) = (0, 1000);
/// A connection not made by then is given up.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);
/// A connection with no `HELLO` by then is given up.
const HELLO_LIMIT: Duration = Duration::from_secs(10);
/// After a half-close or `/quit`, the server must close before this passes
/// without a line from it.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);
/// Bytes on the TLS port that the server has not closed by then are
/// counted and closed by the client.
const RAW_LIMIT: Duration = Duration::from_secs(30);
/// A slow reader reads this much per wake-up...
const SLOW_CHUNK: usize = 512;
/// ...every this often.
const SLOW_EVERY: Duration = Duration::from_millis(100);
/// New lines are dropped while this much is still unsent.
const OUT_CAP: usize = 256 * 1024;

/// What a connected client does next, and how likely each is.
const LIVE: [(Kind, u32); 17] = [
    (Kind::Talk, 30),
    (Kind::Dm, 10),
    (Kind::Nick, 5),
    (Kind::Join, 6),
    (Kind::Query, 5),
    (Kind::Burst, 2),
    (Kind::SlowRead, 3),
    (Kind::StopRead, 3),
    (Kind::BadUtf8, 2),
    (Kind::Control, 2),
    (Kind::LongLine, 2),
    (Kind::BadCommand, 2),
    (Kind::Slowloris, 2),
    (Kind::HalfClose, 2),
    (Kind::Reset, 2),
    (Kind::Quit, 2),
    (Kind::Close, 2),
];

/// What every chaos client shares: the epoll set, the read buffer, where
/// to connect, and the tally.
pub struct Ctx {
    pub epoll: Epoll,
    pub buf: Box<[u8]>,
    /// The plain listener.
    pub plain: Dialer,
    /// The TLS listener, if there is one.
    pub tls: Option<TlsPort>,
    /// A real ClientHello, cut short for [`Kind::TlsTruncated`].
    pub client_hello: Vec<u8>,
    pub tally: Tally,
    /// How many chaos clients and checkers there are (for nicks).
    pub conns: usize,
    pub checkers: usize,
    /// The loop's clock, read once per turn.
    pub now: Instant,
}

/// Two ways to the TLS listener.
#[derive(Clone)]
pub struct TlsPort {
    /// Real TLS clients.
    pub tls: Dialer,
    /// Plain sockets, for bytes that are not TLS.
    pub raw: Dialer,
}

/// How a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Plain,
    Tls,
    /// Raw bytes on the TLS port: not TLS at all (`true`), or a ClientHello
    /// cut short (`false`).
    Raw(bool),
}

/// What a connected client is doing.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Reads everything at once, acts on its timer.
    Open,
    /// Reads [`SLOW_CHUNK`] bytes per [`SLOW_EVERY`] until then.
    Slow(Instant),
    /// Reads nothing until then (and maybe keeps sending: lines, requests
    /// whose answers pile up for it, long direct messages to itself); then
    /// reads again, or gives up and reconnects.
    Deaf { until: Instant, talking: bool },
    /// Trickles a line until then; then leaves without finishing it, or
    /// finishes it.
    Slowloris(Instant),
    /// Half-closed or sent `/quit`: reads until the server closes. The
    /// server must close it before [`CLOSE_LIMIT`] passes without a line
    /// (a client with megabytes owed may take a while to read them).
    Closing { since: Instant, lines: u64 },
    /// Sent raw bytes to the TLS port: waits for the server to close.
    Raw(Instant),
}

struct Live {
    conn: LineConn,
    via: Via,
    state: State,
    opened: Instant,
    out: Vec<u8>,
    sent: usize,
    /// `shutdown(SHUT_WR)` was called: nothing more may be sent.
    half_closed: bool,
    /// Lines read on this connection.
    lines: u64,
    /// It has read slowly or not at all on this connection.
    stalled: bool,
}

enum Slot {
    Off,
    Connecting {
        fd: OwnedFd,
        via: Via,
        since: Instant,
    },
    On(Box<Live>),
}

/// One chaos client.
pub struct Actor {
    index: usize,
    rng: Rng,
    /// Bumped per connection: stale epoll events are told apart.
    gen: u32,
    /// When its timer fires next.
    pub wake: Instant,
    slot: Slot,
}

impl Live {
    /// Sends what the socket takes of `out` (TLS: and records owed).
    fn flush(&mut self) -> io::Result<()> {
        if self.half_closed {
            return Ok(());
        }
        loop {
            let n = self.conn.link.send(&self.out[self.sent..])?;
            self.sent += n;
            if n == 0 || self.sent == self.out.len() {
                break;
            }
        }
        if self.sent == self.out.len() {
            self.sent = 0;
            if self.out.capacity() > 64 * 1024 {
                self.out = Vec::new();
            } else {
                self.out.clear();
            }
        }
        Ok(())
    }

    /// Appends a line unless too much is unsent already.
    fn push(&mut self, tally: &mut Tally, f: impl FnOnce(&mut Vec<u8>)) {
        if self.half_closed || self.out.len() - self.sent > OUT_CAP {
            tally.dropped_lines += 1;
        } else {
            f(&mut self.out);
        }
    }

    /// Forgets the lines not yet on their way (the one being sent is
    /// finished first, so the stream stays whole lines).
    fn drop_backlog(&mut self) {
        let unsent = &self.out[self.sent..];
        if let Some(i) = unsent.iter().position(|&b| b == b'\n') {
            self.out.truncate(self.sent + i + 1);
        }
    }

    /// Reads (everything, or one chunk), counting `ERR` lines and
    /// answering most `PING`s. False once the server closed.
    fn read(
        &mut self,
        buf: &mut [u8],
        rng: &mut Rng,
        tally: &mut Tally,
        all: bool,
    ) -> io::Result<bool> {
        let raw = matches!(self.via, Via::Raw(_));
        let Live {
            conn, out, lines, ..
        } = self;
        let mut on_line = |line: &[u8]| {
            tally.bytes_read += line.len() as u64 + 1;
            *lines += 1;
            if raw {
                return;
            }
            if let Some(code) = line.strip_prefix(b"ERR ") {
                tally.err(code);
            } else if let Some(token) = line.strip_prefix(b"PING ") {
                if rng.chance(4, 5) {
                    out.extend_from_slice(b"/pong ");
                    out.extend_from_slice(token);
                    out.push(b'\n');
                }
            }
        };
        if all {
            conn.read_lines(buf, &mut on_line)
        } else {
            conn.read_once(&mut buf[..SLOW_CHUNK], &mut on_line)
        }
    }
}

impl Actor {
    /// Client `index` of a run seeded with `seed`, first acting within a
    /// second of `now`.
    pub fn new(index: usize, seed: u64, now: Instant) -> Actor {
        let mut rng = Rng::new(seed, index as u64);
        let wake = now + rng.millis(0, 1000);
        Actor {
            index,
            rng,
            gen: 0,
            wake,
            slot: Slot::Off,
        }
    }

    /// The epoll token of its current connection.
    pub fn token(&self) -> u64 {
        self.index as u64 | u64::from(self.gen) << 32
    }

    /// Closes whatever it has; it does nothing more.
    pub fn stop(&mut self) {
        self.slot = Slot::Off;
    }

    /// An event for its current connection.
    pub fn on_event(&mut self, ctx: &mut Ctx, ev: &Event) {
        match &mut self.slot {
            Slot::Off => {}
            Slot::Connecting { .. } => {
                if epoll::is_writable(ev) || epoll::is_error(ev) {
                    self.connected(ctx, ev);
                }
            }
            Slot::On(live) => {
                live.conn.link.note(ev);
                self.service(ctx);
            }
        }
    }

    /// Reads as its state allows, then sends what it owes.
    fn service(&mut self, ctx: &mut Ctx) {
        let Slot::On(live) = &mut self.slot else {
            return;
        };
        let outcome = match live.state {
            State::Slow(_) => live.flush().map(|()| true),
            State::Deaf { .. } if live.conn.link.peer_fin => Ok(false),
            State::Deaf { .. } => live.flush().map(|()| true),
            _ => match live.read(&mut ctx.buf, &mut self.rng, &mut ctx.tally, true) {
                Ok(true) => live.flush().map(|()| true),
                other => other,
            },
        };
        self.settle(ctx, outcome);
    }

    /// Counts how a connection ended, if it did, and plans the reconnect.
    fn settle(&mut self, ctx: &mut Ctx, outcome: io::Result<bool>) {
        let Slot::On(live) = &self.slot else {
            return;
        };
        let err = match outcome {
            Ok(true) => return,
            Ok(false) => None,
            Err(e) => Some(e),
        };
        let t = &mut ctx.tally;
        match live.state {
            State::Closing { .. } => t.closes_done += 1,
            State::Raw(_) => t.raw_closed += 1,
            _ => {
                t.server_closed += 1;
                t.stalled_ended += u64::from(live.stalled);
                t.before_hello += u64::from(!live.conn.hello);
                let reset = err.as_ref().is_some_and(|e| {
                    matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                    )
                });
                t.resets += u64::from(reset);
                if let (Some(e), false) = (&err, reset) {
                    let i = self.index;
                    t.note(|| format!("chaos client {i} ({:?}): {e}", live.via));
                }
            }
        }
        self.off(ctx.now);
    }

    /// Drops the connection (closing it) and reconnects a moment later.
    fn off(&mut self, now: Instant) {
        self.slot = Slot::Off;
        let (lo, hi) = RECONNECT_MS;
        self.wake = now + self.rng.millis(lo, hi);
    }
}

mod act;
mod wake;
