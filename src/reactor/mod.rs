//! The event loop: one thread, one epoll set, edge-triggered.
//!
//! ```text
//! loop {
//!     epoll_wait(timeout = 0 if the ready list has work, else the next deadline)
//!     for each event: find its source by token, act until EAGAIN or budget
//!     for each source on the ready list: one more budgeted turn
//!     flush every connection that was given output (one sendmsg each)
//!     expire due deadlines
//! }
//! ```
//!
//! Every descriptor is registered once, edge-triggered (connections with
//! `EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET`, listeners and the signalfd
//! with `EPOLLIN | EPOLLET`); the steady state makes no `epoll_ctl` calls. A connection that
//! used up its budget while data is still waiting goes on the ready list, so
//! one busy client cannot starve the others. An error on a connection closes
//! that connection only.
//!
//! - [`accept`](self::accept): listeners, `accept4`, `--max-clients`, `EMFILE`.
//! - [`sources`](self::sources): connections per source address, `--max-per-ip`.
//! - [`chat`](self::chat): chat reads, deliveries, slow consumers, timers.
//! - [`close`](self::close): EOF, errors, `CLOSING`, FIN and close.
//! - [`timers`](self::timers): the heap behind every deadline.
//! - [`control`](self::control): signals: shutdown, reload (certificates and
//!   log, with systemd notifications), stats.
//! - [`tls`](self::tls): handshake deadlines, the chat `HELLO` once a
//!   handshake is done, and reloading the certificate on SIGHUP.

/// The chat service's view of the connections, borrowing only the fields
/// it needs so `self.chat` can be borrowed at the same time.
macro_rules! deliver {
    ($s:ident) => {
        $crate::reactor::chat::Deliver::new(
            &mut $s.conns,
            &mut $s.turn,
            &mut $s.dirty,
            &mut $s.doomed,
            $s.cfg.max_output,
        )
    };
}

mod accept;
mod chat;
mod close;
mod control;
mod sources;
mod timers;
mod tls;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::chat::{Chat, Limits};
use crate::config::{Config, Mode};
use crate::conn::{Conn, Phase};
use crate::echo;
use crate::error::{Context, Result};
use crate::logger::Throttle;
use crate::queue::Turn;
use crate::sys::epoll::{self, Epoll, Event};
use crate::sys::limits::ReserveFd;
use crate::sys::signal::Signals;
use crate::transport::config::ServerTls;
use crate::udp::Guard;

/// The shared read buffer: one per server, not one per connection.
const READ_BUF: usize = 64 * 1024;
// The UDP receive buffer is a slice of it.
const _: () = assert!(crate::config::MAX_DATAGRAM <= READ_BUF);
/// Events taken from the kernel per `epoll_wait`.
const EVENTS: usize = 1024;

/// Tokens with this bit are fixed sources (signals, listeners, UDP);
/// without it, the low 32 bits are a slab key and the next 28 a generation
/// (bits 60 to 62 mark timer-heap entries).
const FIXED: u64 = 1 << 63;
const GEN_MASK: u32 = 0x0fff_ffff;
const SIGNAL_TOKEN: u64 = FIXED;
const LISTENER_KIND: u64 = 1 << 32;
const UDP_KIND: u64 = 2 << 32;
/// In the timer heap, bits 60 to 62 of a token say what the entry is for
/// (0: the chat service's keepalive or unfinished line).
const KIND_MASK: u64 = 7 << 60;
/// A closing connection's last chance.
const LINGER: u64 = 4 << 60;
/// The end of a TLS handshake that took too long.
const HANDSHAKE: u64 = 2 << 60;
/// Look again at a connection that sent its FIN and waits for the client to
/// acknowledge the last bytes.
const RECHECK: u64 = 1 << 60;
/// The end of a chat client's `--max-rate` pause.
const PAUSE: u64 = 3 << 60;

fn conn_token(key: usize, gen: u32) -> u64 {
    (u64::from(gen) << 32) | key as u64
}

fn token_key(token: u64) -> usize {
    (token & 0xffff_ffff) as usize
}

/// A listening TCP socket or a bound UDP socket, and the address it is
/// really bound to.
struct Listener {
    fd: OwnedFd,
    addr: SocketAddr,
    scheme: &'static str,
    /// Its clients speak TLS.
    tls: bool,
}

/// The server: every descriptor it owns, and the loop that drives them.
pub struct Reactor {
    epoll: Epoll,
    events: Vec<Event>,
    signals: Signals,
    listeners: Vec<Listener>,
    udp: Vec<Listener>,
    /// What the UDP echo drops (service ports, oversize, over the rate).
    udp_guard: Guard,
    conns: Slab<Conn>,
    /// Tokens of sources with work left over from an earlier turn.
    ready: VecDeque<u64>,
    buf: Box<[u8]>,
    reserve: ReserveFd,
    /// Connections dropped at the descriptor limit, logged once a second.
    emfile_log: Throttle,
    next_gen: u32,
    cfg: Config,
    /// The chat service; `None` in echo mode.
    chat: Option<Box<Chat>>,
    /// Certificates for TLS listeners; `None` without any.
    tls: Option<ServerTls>,
    /// Connections per source address, for `--max-per-ip` and
    /// `--max-conn-rate`.
    sources: sources::Sources,
    /// The chat lines of this turn, encoded once for all their recipients.
    turn: Turn,
    /// Connections given output since the last flush.
    dirty: Vec<usize>,
    /// Slow consumers to cut once the current turn is over.
    doomed: Vec<usize>,
    /// Every deadline of every connection: (when, token), earliest first.
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Past this many entries, the heap is rid of dead connections' ones.
    compact_at: usize,
    /// The clock, read once per loop iteration.
    now: Instant,
    /// When the router's held notices last went (see `chat::notices_due`).
    notices_sent: Instant,
    /// Set once a shutdown has begun: when it must be over.
    deadline: Option<Instant>,
    stop_now: bool,
}

impl Reactor {
    /// Opens every listener in the tutorial's order (`socket` → `setsockopt`
    /// → `bind` → `listen`), then a new epoll instance and the signalfd, and
    /// registers them all (`epoll_create1` → `epoll_ctl`). Once everything is
    /// ready, logs `listening on tcp://ADDR` (or `udp://`) for each listener.
    pub fn bind(cfg: Config) -> Result<Reactor> {
        // Certificates first: a bad one stops start-up before any port opens.
        let tls = match cfg.tls.is_empty() {
            true => None,
            false => Some(ServerTls::load(cfg.tls_files.clone())?),
        };
        let (cfg, listeners, udp) = accept::open_listeners(cfg)?;
        let epoll = Epoll::new().sys("epoll_create1")?;
        let signals = Signals::new().sys("signalfd")?;
        epoll
            .add(signals.as_fd(), epoll::interest_read(), SIGNAL_TOKEN)
            .sys("epoll_ctl")?;
        let reserve = ReserveFd::new().sys("open /dev/null")?;
        accept::register_listeners(&epoll, &listeners, &udp)?;
        let mut chat = (cfg.mode == Mode::Chat).then(|| {
            Box::new(Chat::new(Limits {
                max_line: cfg.max_line,
                idle: cfg.idle_timeout,
                line: cfg.line_timeout,
                rate: cfg.max_rate,
            }))
        });
        let udp_guard = Guard::new(cfg.udp_rate, Instant::now());
        if let (Some(chat), false) = (chat.as_deref_mut(), udp.is_empty()) {
            chat.router.stats.udp = Some(udp_guard.stats);
        }
        Ok(Reactor {
            epoll,
            events: Epoll::events(EVENTS),
            signals,
            listeners,
            udp,
            udp_guard,
            conns: Slab::new(),
            ready: VecDeque::new(),
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            reserve,
            emfile_log: Throttle::new(Duration::from_secs(1)),
            next_gen: 0,
            sources: sources::Sources::new(
                cfg.max_per_ip,
                cfg.max_conn_rate,
                cfg.per_ip_loopback,
                Instant::now(),
            ),
            cfg,
            chat,
            tls,
            turn: Turn::default(),
            dirty: Vec::new(),
            doomed: Vec::new(),
            timers: BinaryHeap::new(),
            compact_at: timers::MIN_COMPACT,
            now: Instant::now(),
            notices_sent: Instant::now(),
            deadline: None,
            stop_now: false,
        })
    }

    /// Runs until a graceful shutdown finishes (or a second signal cuts it).
    pub fn run(mut self) -> Result<()> {
        loop {
            let timeout = self.timeout();
            let n = self
                .epoll
                .wait(&mut self.events, timeout)
                .sys("epoll_wait")?;
            self.now = Instant::now();
            // Signals first: a shutdown begins, and a second signal exits,
            // before the rest of a turn's work (a storm of joins can make
            // that long).
            let events = &self.events[..n];
            if events.iter().any(|ev| epoll::token(ev) == SIGNAL_TOKEN) {
                self.on_signals();
            }
            for i in 0..n {
                let ev = self.events[i];
                if self.stop_now {
                    break;
                }
                if epoll::token(&ev) != SIGNAL_TOKEN {
                    self.dispatch(&ev);
                }
            }
            if !self.stop_now {
                self.run_ready();
                self.flush_dirty();
                self.expire_timers();
            }
            if self.stop_now {
                log::warn!(
                    "second signal: exiting with {} connections open",
                    self.conns.len()
                );
                return Ok(());
            }
            if let Some(deadline) = self.deadline {
                if self.conns.is_empty() {
                    log::info!("shutdown complete");
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    log::warn!("shutdown timeout: closing {} connections", self.conns.len());
                    return Ok(());
                }
            }
        }
    }

    /// How long `epoll_wait` may sleep: not at all with work on the ready
    /// list, else until the earliest deadline.
    fn timeout(&self) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let timer = self.timers.peek().map(|Reverse((t, _))| *t);
        let next = [timer, self.deadline, self.notices_due()]
            .into_iter()
            .flatten()
            .min();
        next.map(|t| t.saturating_duration_since(Instant::now()))
    }

    /// Routes one event to its source.
    fn dispatch(&mut self, ev: &Event) {
        let token = epoll::token(ev);
        if token & FIXED != 0 {
            return self.fixed(token);
        }
        let key = token_key(token);
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if conn_token(key, c.gen) != token {
            return; // an event for a connection that has since been replaced
        }
        if epoll::is_readable(ev) || epoll::is_read_closed(ev) || epoll::is_error(ev) {
            c.readable = true;
        }
        if epoll::is_read_closed(ev) {
            c.peer_fin = true;
        }
        if epoll::is_writable(ev) || epoll::is_error(ev) {
            c.writable = true;
        }
        self.service(key);
    }

    fn fixed(&mut self, token: u64) {
        let index = token_key(token);
        match token & !FIXED & !0xffff_ffff {
            0 => self.on_signals(),
            LISTENER_KIND => self.accept_all(index),
            UDP_KIND => self.serve_udp(index),
            _ => {}
        }
    }

    /// Gives each source on the ready list one more turn. Sources that still
    /// have work go to the back, for the next round.
    fn run_ready(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(token) = self.ready.pop_front() else {
                break;
            };
            if token & FIXED != 0 {
                self.fixed(token);
                continue;
            }
            let key = token_key(token);
            match self.conns.get_mut(key) {
                Some(c) if conn_token(key, c.gen) == token => {
                    c.queued = false;
                    self.service(key);
                }
                _ => {}
            }
        }
    }

    /// One budgeted turn for a connection: flush what is owed, read and
    /// serve, then close it, requeue it, or leave it for the next edge.
    #[inline]
    fn service(&mut self, key: usize) {
        let max_output = self.cfg.max_output;
        let turn = match self.conns.get_mut(key) {
            None => return,
            Some(c) if c.phase == Phase::Closing => c.flush(&self.turn).map(|()| false),
            Some(_) if self.chat.is_some() => self.serve_chat(key),
            // Echo, the hot path: one slab lookup for the whole turn.
            Some(c) => match c
                .flush(&self.turn)
                .and_then(|()| echo::serve_stream(c, &mut self.buf, max_output))
            {
                // Echo never moves a connection to CLOSING by itself: only
                // EOF and errors leave this path.
                Ok(more) if !c.read_closed => {
                    if more && !c.queued {
                        c.queued = true;
                        self.ready.push_back(conn_token(key, c.gen));
                    }
                    return;
                }
                turn => turn,
            },
        };
        self.after_turn(key, turn);
    }

    fn serve_udp(&mut self, index: usize) {
        let Some(l) = self.udp.get(index) else {
            return;
        };
        let buf = &mut self.buf[..self.cfg.max_datagram];
        match echo::serve_datagrams(l.fd.as_fd(), buf, &mut self.udp_guard, self.now) {
            Ok(true) => self.ready.push_back(FIXED | UDP_KIND | index as u64),
            Ok(false) => {}
            Err(e) => log::warn!("udp recvfrom on {}: {e}", l.addr),
        }
        if let Some(chat) = self.chat.as_deref_mut() {
            chat.router.stats.udp = Some(self.udp_guard.stats);
        }
    }
}
