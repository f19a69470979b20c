//! The router's commands other than plain text: `/nick`, `/msg`, `/join`,
//! `/who`, `/rooms`, `/stats`, `/quit`, and the server's `PING`.

use super::command::valid_name;
use super::router::{encode, scrub, Outbox, Router};

impl Router {
    /// `/nick NAME`: `OK nick NAME` to the sender, `NICK OLD NAME` to its room.
    pub(super) fn rename(&mut self, key: usize, new: &str, out: &mut impl Outbox) {
        let holder = self.client(key).is_some_and(|c| c.reserved);
        if holder || !valid_name(new) {
            return self.error(key, "bad-nick", out);
        }
        let lower = new.to_ascii_lowercase();
        if self.nicks.get(lower.as_str()).is_some_and(|&k| k != key) {
            return self.error(key, "nick-in-use", out);
        }
        let Some(c) = self.clients.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        let old = std::mem::replace(&mut c.nick, new.into());
        let room = c.room.clone();
        self.nicks.remove(old.to_ascii_lowercase().as_str());
        self.nicks.insert(lower.into(), key);
        self.reply(key, &["OK", "nick", new], out);
        if *old != *new {
            self.broadcast(&room, key, &["NICK", &old, new], out);
        }
    }

    /// `/msg NAME TEXT`: `OK msg NAME` to the sender, `DM FROM TEXT` to NAME.
    pub(super) fn direct(&mut self, key: usize, to: &str, text: &str, out: &mut impl Outbox) {
        let Some(&target) = self.nicks.get(to.to_ascii_lowercase().as_str()) else {
            return self.error(key, "no-such-nick", out);
        };
        let (Some(from), Some(name)) = (self.nick(key), self.nick(target)) else {
            return;
        };
        let (from, name) = (from.to_string(), name.to_string());
        self.reply(key, &["OK", "msg", &name], out);
        self.reply(target, &["DM", &from, &scrub(text)], out);
    }

    /// `/join ROOM`: `OK join ROOM` and `WHO` to the sender, `PART` to the
    /// old room, `JOIN` to the new one.
    pub(super) fn join(&mut self, key: usize, room: &str, out: &mut impl Outbox) {
        if !valid_name(room) {
            return self.error(key, "bad-room", out);
        }
        let Some(c) = self.client(key) else { return };
        let (old, nick) = (c.room.clone(), c.nick.clone());
        if *old != *room.to_ascii_lowercase() {
            self.exit(&old, key);
            self.broadcast(&old, key, &["PART", &nick], out);
            let new = self.enter(room, key);
            if let Some(c) = self.clients.get_mut(key).and_then(Option::as_mut) {
                c.room = new;
            }
        }
        let Some(c) = self.client(key) else { return };
        let new = c.room.clone();
        let name = self.room_name(&new);
        self.reply(key, &["OK", "join", &name], out);
        self.who(key, out);
        if *old != *new {
            self.broadcast(&new, key, &["JOIN", &nick], out);
        }
    }

    /// `/who`: `WHO ROOM NICK...`, sorted, the sender included.
    pub(super) fn who(&mut self, key: usize, out: &mut impl Outbox) {
        let Some(c) = self.client(key) else { return };
        let Some(room) = self.rooms.get(&c.room) else {
            return;
        };
        let mut nicks: Vec<&str> = room
            .members
            .iter()
            .filter_map(|&m| self.clients.get(m).and_then(Option::as_ref))
            .map(|c| &*c.nick)
            .collect();
        nicks.sort_by_cached_key(|n| n.to_ascii_lowercase());
        let mut parts = vec!["WHO", &room.name];
        parts.extend(nicks);
        let bytes = encode(&mut self.scratch, &parts);
        let (line, len) = (out.post(bytes, false), bytes.len());
        self.send(key, &line, len, out);
    }

    /// `/rooms`: `ROOMS ROOM:COUNT...`, sorted.
    pub(super) fn list_rooms(&mut self, key: usize, out: &mut impl Outbox) {
        let mut rooms: Vec<(&str, String)> = self
            .rooms
            .iter()
            .map(|(k, r)| (&**k, format!("{}:{}", r.name, r.members.len())))
            .collect();
        rooms.sort();
        let mut parts = vec!["ROOMS"];
        parts.extend(rooms.iter().map(|(_, s)| s.as_str()));
        let bytes = encode(&mut self.scratch, &parts);
        let (line, len) = (out.post(bytes, false), bytes.len());
        self.send(key, &line, len, out);
    }

    /// `/stats`: `STATS key=value ...`.
    pub(super) fn report(&mut self, key: usize, out: &mut impl Outbox) {
        let s = &self.stats;
        let mut line = format!(
            "clients={} rooms={} msgs_in={} msgs_out={} bytes_in={} bytes_out={} uptime_s={}",
            self.nicks.len(),
            self.rooms.len(),
            s.msgs_in,
            s.msgs_out,
            s.bytes_in,
            s.bytes_out,
            s.started.elapsed().as_secs()
        );
        if let Some(udp) = s.udp {
            line = format!("{line} {udp}");
        }
        self.reply(key, &["STATS", &line], out);
    }

    /// `/quit [REASON]`: `BYE` to the sender, `QUIT NICK [REASON]` to its
    /// room, then the connection closes once `BYE` is sent.
    pub(super) fn quit(&mut self, key: usize, reason: Option<&str>, out: &mut impl Outbox) {
        self.reply(key, &["BYE"], out);
        self.disconnect(key, reason, true, out);
        out.close_after_flush(key);
    }

    /// The server's keepalive: `PING TOKEN`.
    pub fn ping(&mut self, key: usize, token: &str, out: &mut impl Outbox) {
        self.send_notices(out);
        self.reply(key, &["PING", token], out);
    }
}
