//! The chat router: nicks, rooms, and who receives what. Pure: it sees
//! slab keys and lines, and hands every outgoing line to an [`Outbox`].
//!
//! A line is encoded once and posted to the [`Outbox`], which hands back a
//! handle the router then delivers to each recipient: no copy and no
//! allocation per recipient.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use super::command::{parse, Command};
use super::notices::Notices;
use crate::udp::UdpStats;

/// Where the router's lines go. The reactor implements it over its
/// connections; tests implement it over a `Vec`.
pub trait Outbox {
    /// A posted line, as the outbox finds it again.
    type Line;
    /// Stores `line` (ending in `\n`) once, for one recipient or for
    /// `many` (a room).
    fn post(&mut self, line: &[u8], many: bool) -> Self::Line;
    /// The part of a posted line after its first `skip` bytes (a block
    /// of several lines, from one of them on).
    fn suffix(&self, line: &Self::Line, skip: usize) -> Self::Line;
    /// Queue a posted line for client `to`.
    fn deliver(&mut self, to: usize, line: &Self::Line);
    /// Close `key` once everything queued for it is sent (after `/quit`).
    fn close_after_flush(&mut self, key: usize);
    /// Whether lines from `key` are still heard: not once it is cut (a
    /// slow consumer) or closing (after `/quit`), so the rest of a read
    /// full of commands costs nothing.
    fn accepting(&self, _key: usize) -> bool {
        true
    }
}

/// Counters behind `/stats`.
#[derive(Debug)]
pub struct Stats {
    pub msgs_in: u64,
    pub msgs_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub started: Instant,
    /// The server's UDP echo counters, kept current by the reactor when it
    /// has UDP listeners; `/stats` then shows them too.
    pub udp: Option<UdpStats>,
}

pub(super) struct Client {
    pub(super) nick: Box<str>,
    /// The nick came from a client certificate: nobody else may take it,
    /// and its holder may not change it (PROTOCOL.md §3).
    pub(super) reserved: bool,
    /// The lowercased name of the client's room (the key into `rooms`).
    pub(super) room: Rc<str>,
}

pub(super) struct Room {
    /// The name as its creator spelled it.
    pub(super) name: Box<str>,
    pub(super) members: Vec<usize>,
}

/// `/help`: fields are separated by one space, as in every line the
/// server sends (no columns padded with runs of spaces).
pub(super) const HELP: &[&str] = &[
    "HELP text: say text to your room (//text sends /text)",
    "HELP /nick NAME: change your nick",
    "HELP /msg NAME TEXT: send TEXT to NAME only",
    "HELP /join ROOM: leave your room for ROOM",
    "HELP /who, /rooms: who is here, which rooms exist",
    "HELP /ping [T], /pong [T], /stats, /help, /quit [REASON]",
];

/// Nicks, rooms and membership for every connected client.
pub struct Router {
    pub(super) clients: Vec<Option<Client>>,
    pub(super) nicks: HashMap<Box<str>, usize>,
    pub(super) rooms: HashMap<Rc<str>, Room>,
    next_guest: u64,
    pub(super) scratch: Vec<u8>,
    /// `JOIN`s and `QUIT`s held back to go as one block (`notices.rs`).
    pub(super) notices: Notices,
    /// Whether notices wait for a batch. The router's unit tests see each
    /// at once (batches of one); `notices.rs` tests that batches change
    /// nothing a client sees.
    pub(super) batch: bool,
    pub stats: Stats,
}

/// Replaces terminal control codes with U+FFFD: C0 controls (but TAB), DEL,
/// and the C1 controls U+0080 to U+009F (U+009B is an 8-bit CSI).
pub fn scrub(text: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\t';
    if !text.contains(bad) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.replace(bad, "\u{FFFD}"))
}

/// Joins `parts` with spaces and a final `\n` into `scratch`.
pub(super) fn encode<'s>(scratch: &'s mut Vec<u8>, parts: &[&str]) -> &'s [u8] {
    scratch.clear();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            scratch.push(b' ');
        }
        scratch.extend_from_slice(p.as_bytes());
    }
    scratch.push(b'\n');
    scratch
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

impl Router {
    pub fn new() -> Router {
        Router {
            clients: Vec::new(),
            nicks: HashMap::new(),
            rooms: HashMap::new(),
            next_guest: 1,
            scratch: Vec::with_capacity(512),
            notices: Notices::default(),
            batch: !cfg!(test),
            stats: Stats {
                msgs_in: 0,
                msgs_out: 0,
                bytes_in: 0,
                bytes_out: 0,
                started: Instant::now(),
                udp: None,
            },
        }
    }

    /// Clients connected.
    pub fn clients(&self) -> usize {
        self.nicks.len()
    }

    /// The nick of `key`, if it is connected.
    pub fn nick(&self, key: usize) -> Option<&str> {
        self.client(key).map(|c| &*c.nick)
    }

    pub(super) fn client(&self, key: usize) -> Option<&Client> {
        self.clients.get(key).and_then(Option::as_ref)
    }

    /// Encodes `parts` joined by spaces, plus `\n`, and posts it once.
    fn post<O: Outbox>(&mut self, parts: &[&str], many: bool, out: &mut O) -> (O::Line, usize) {
        let line = encode(&mut self.scratch, parts);
        (out.post(line, many), line.len())
    }

    /// Sends `parts` to `to` alone.
    pub(super) fn reply(&mut self, to: usize, parts: &[&str], out: &mut impl Outbox) {
        let (line, len) = self.post(parts, false, out);
        self.send(to, &line, len, out);
    }

    /// Sends a posted `line` of `len` bytes to `to`.
    pub(super) fn send<O: Outbox>(&mut self, to: usize, line: &O::Line, len: usize, out: &mut O) {
        self.stats.msgs_out += 1;
        self.stats.bytes_out += len as u64;
        out.deliver(to, line);
    }

    /// Sends `ERR <code>` to `to`.
    pub fn error(&mut self, to: usize, code: &str, out: &mut impl Outbox) {
        self.send_notices(out);
        self.reply(to, &["ERR", code], out);
    }

    /// Sends `parts` to everyone in `room` but `except`.
    pub(super) fn broadcast(
        &mut self,
        room: &str,
        except: usize,
        parts: &[&str],
        out: &mut impl Outbox,
    ) {
        let (line, len) = self.post(parts, true, out);
        self.fan_out(room, except, &line, len, out);
    }

    /// Queues one posted `line` of `len` bytes for everyone in `room` but
    /// `except`.
    fn fan_out<O: Outbox>(
        &mut self,
        room: &str,
        except: usize,
        line: &O::Line,
        len: usize,
        out: &mut O,
    ) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let mut sent = 0u64;
        for &m in r.members.iter().filter(|&&m| m != except) {
            out.deliver(m, line);
            sent += 1;
        }
        self.stats.msgs_out += sent;
        self.stats.bytes_out += sent * len as u64;
    }
    /// A new client: gets a fresh `guest<N>`, `HELLO`, and joins `lobby`.
    pub fn connect(&mut self, key: usize, out: &mut impl Outbox) {
        let nick = self.fresh_guest();
        self.admit(key, nick, false, out);
    }

    /// A `guest<N>` nobody holds; N is never reused.
    pub(super) fn fresh_guest(&mut self) -> String {
        loop {
            let n = format!("guest{}", self.next_guest);
            self.next_guest += 1;
            if !self.nicks.contains_key(n.as_str()) {
                return n;
            }
        }
    }

    /// Adds `key` as `nick` to `lobby`: `HELLO` to it, `JOIN` to the room.
    pub(super) fn admit(
        &mut self,
        key: usize,
        nick: String,
        reserved: bool,
        out: &mut impl Outbox,
    ) {
        // Held QUITs are for those who were there before the newcomer.
        if self.notices.quits_held() {
            self.send_notices(out);
        }
        if self.clients.len() <= key {
            self.clients.resize_with(key + 1, || None);
        }
        self.nicks.insert(nick.to_ascii_lowercase().into(), key);
        let room = self.enter("lobby", key);
        self.clients[key] = Some(Client {
            nick: nick.as_str().into(),
            reserved,
            room: room.clone(),
        });
        let name = self.room_name(&room);
        self.reply(key, &["HELLO", &nick, &name], out);
        self.hold_join(room, key, out);
    }

    pub(super) fn room_name(&self, room: &str) -> String {
        self.rooms
            .get(room)
            .map(|r| r.name.to_string())
            .unwrap_or_default()
    }

    /// Adds `key` to room `name`, creating it; returns the room's key.
    pub(super) fn enter(&mut self, name: &str, key: usize) -> Rc<str> {
        let lower: Rc<str> = name.to_ascii_lowercase().into();
        let room = self.rooms.entry(lower.clone()).or_insert_with(|| Room {
            name: name.into(),
            members: Vec::new(),
        });
        room.members.push(key);
        lower
    }

    /// Removes `key` from its room; the room goes when it is empty.
    pub(super) fn exit(&mut self, room: &str, key: usize) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.members.retain(|&m| m != key);
            if r.members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// A client leaves. With `announce`, its room hears `QUIT <nick>
    /// [reason]`; on shutdown nobody is told.
    pub fn disconnect(
        &mut self,
        key: usize,
        reason: Option<&str>,
        announce: bool,
        out: &mut impl Outbox,
    ) {
        if self.client(key).is_none() {
            return;
        }
        // Held JOINs reach the leaver too, as they would have had they gone
        // at once.
        if self.notices.joins_held() {
            self.send_notices(out);
        }
        let Some(c) = self.clients.get_mut(key).and_then(Option::take) else {
            return;
        };
        self.nicks.remove(c.nick.to_ascii_lowercase().as_str());
        self.exit(&c.room, key);
        if announce {
            let reason = reason.map(scrub);
            let mut parts = vec!["QUIT", &c.nick];
            if let Some(r) = reason.as_deref() {
                parts.push(r);
            }
            self.hold_quit(c.room.clone(), &parts, out);
        }
    }

    /// Handles one complete line from `key` (without its `\n`).
    pub fn line(&mut self, key: usize, line: &[u8], out: &mut impl Outbox) {
        if line.is_empty() || self.client(key).is_none() {
            return;
        }
        self.send_notices(out);
        self.stats.msgs_in += 1;
        let Ok(text) = std::str::from_utf8(line) else {
            return self.error(key, "bad-utf8", out);
        };
        match parse(text) {
            Command::Say(t) => self.say(key, t, out),
            Command::Nick(n) => self.rename(key, n, out),
            Command::Msg(to, t) => self.direct(key, to, t, out),
            Command::Join(r) => self.join(key, r, out),
            Command::Who => self.who(key, out),
            Command::Rooms => self.list_rooms(key, out),
            Command::Ping(None) => self.reply(key, &["PONG"], out),
            Command::Ping(Some(t)) => self.reply(key, &["PONG", &scrub(t)], out),
            Command::Pong => {}
            Command::Stats => self.report(key, out),
            Command::Help => {
                for h in HELP {
                    self.reply(key, &[h], out);
                }
            }
            Command::Quit(reason) => self.quit(key, reason, out),
            Command::BadArgs => self.error(key, "bad-args", out),
            // The command as sent, so the user sees which one.
            Command::Unknown(name) => {
                self.reply(key, &["ERR", "unknown-command", &scrub(name)], out)
            }
        }
    }

    fn say(&mut self, key: usize, text: &str, out: &mut impl Outbox) {
        // Encoded straight from the sender's entry: no copy of its nick per
        // message (the room is an `Rc`: cloning it only counts).
        let Some(c) = self.clients.get(key).and_then(Option::as_ref) else {
            return;
        };
        let bytes = encode(&mut self.scratch, &["MSG", &c.nick, &scrub(text)]);
        let (line, len) = (out.post(bytes, true), bytes.len());
        let room = c.room.clone();
        self.fan_out(&room, key, &line, len, out);
    }
}
