//! `JOIN` and `QUIT` notices held until the router does anything else, so
//! that a storm of clients arriving or leaving costs each member of the
//! room one delivery per batch, not one per client: 10 000 clients joining
//! one room are 50 million notices either way, but sent every 50 ms over
//! two seconds they are some 400 000 deliveries instead of 50 million.
//!
//! Nothing a client can see changes: every member receives the same lines
//! in the same order as if each had been sent at once. A new client's
//! `HELLO` goes at once; the `JOIN`s of a batch go as one block, each
//! member that was there before the batch receiving all of it, and each
//! newcomer the part after its own `JOIN`. `QUIT`s go as one block to the
//! members still there. The router sends what it holds before it handles
//! anything else (a line, an error, a `PING`, a rename), and the reactor at
//! the end of a turn, at most every 50 ms (`reactor/chat.rs`,
//! `notices_due`). One difference a client could see: a client
//! that leaves (EOF, error, or cut) while `QUIT`s of its room are held does
//! not receive them; it is closing anyway.

use std::rc::Rc;

use super::router::{encode, Outbox, Router};

/// What the router holds back.
#[derive(Debug, Default)]
pub(super) struct Notices {
    /// Clients that joined a room (its key), in order.
    joins: Vec<(Rc<str>, usize)>,
    /// `QUIT` lines, each for a room, in order, as ranges of `bytes`.
    quits: Vec<(Rc<str>, usize, usize)>,
    bytes: Vec<u8>,
    /// The rooms of a batch, in order.
    rooms: Vec<Rc<str>>,
    /// End of each `JOIN` line in a block, and the newcomer it announces.
    ends: Vec<usize>,
    keys: Vec<usize>,
}

impl Notices {
    pub(super) fn joins_held(&self) -> bool {
        !self.joins.is_empty()
    }

    pub(super) fn quits_held(&self) -> bool {
        !self.quits.is_empty()
    }
}

impl Router {
    /// True while notices are held back.
    pub fn holds_notices(&self) -> bool {
        !self.notices.joins.is_empty() || !self.notices.quits.is_empty()
    }

    /// `key` has joined `room`: its `JOIN` waits for the batch.
    pub(super) fn hold_join(&mut self, room: Rc<str>, key: usize, out: &mut impl Outbox) {
        if !self.notices.quits.is_empty() {
            self.send_notices(out);
        }
        self.notices.joins.push((room, key));
        if !self.batch {
            self.send_notices(out);
        }
    }

    /// `QUIT` (`parts`) for the members of `room`: waits for the batch.
    pub(super) fn hold_quit(&mut self, room: Rc<str>, parts: &[&str], out: &mut impl Outbox) {
        if !self.notices.joins.is_empty() {
            self.send_notices(out);
        }
        let line = encode(&mut self.scratch, parts);
        let n = &mut self.notices;
        let start = n.bytes.len();
        n.bytes.extend_from_slice(line);
        n.quits.push((room, start, n.bytes.len()));
        if !self.batch {
            self.send_notices(out);
        }
    }

    /// Sends every notice held back, a block per room.
    pub fn send_notices(&mut self, out: &mut impl Outbox) {
        if !self.holds_notices() {
            return;
        }
        let mut n = std::mem::take(&mut self.notices);
        n.rooms.clear();
        for room in n
            .joins
            .iter()
            .map(|j| &j.0)
            .chain(n.quits.iter().map(|q| &q.0))
        {
            if !n.rooms.contains(room) {
                n.rooms.push(room.clone());
            }
        }
        for room in &n.rooms {
            if n.joins.is_empty() {
                self.send_quits(room, &n, out);
            } else {
                self.send_joins(room, (&mut n.ends, &mut n.keys), &n.joins, out);
            }
        }
        n.joins.clear();
        n.quits.clear();
        n.bytes.clear();
        self.notices = n;
    }

    /// One block of the `QUIT`s for `room` to everyone still in it.
    fn send_quits(&mut self, room: &Rc<str>, n: &Notices, out: &mut impl Outbox) {
        self.scratch.clear();
        let mut lines = 0;
        for (_, start, end) in n.quits.iter().filter(|q| q.0 == *room) {
            self.scratch.extend_from_slice(&n.bytes[*start..*end]);
            lines += 1;
        }
        let Some(r) = self.rooms.get(&**room) else {
            return; // everyone left
        };
        let line = out.post(&self.scratch, true);
        for &m in &r.members {
            out.deliver(m, &line);
        }
        let members = r.members.len() as u64;
        self.stats.msgs_out += lines * members;
        self.stats.bytes_out += self.scratch.len() as u64 * members;
    }

    /// One block of the `JOIN`s of `room`'s newcomers: all of it to the
    /// members from before, and to each newcomer what follows its own.
    fn send_joins(
        &mut self,
        room: &Rc<str>,
        (ends, keys): (&mut Vec<usize>, &mut Vec<usize>),
        joins: &[(Rc<str>, usize)],
        out: &mut impl Outbox,
    ) {
        self.scratch.clear();
        ends.clear();
        keys.clear();
        for &(_, key) in joins.iter().filter(|j| j.0 == *room) {
            let Some(c) = self.clients.get(key).and_then(Option::as_ref) else {
                continue;
            };
            self.scratch.extend_from_slice(b"JOIN ");
            self.scratch.extend_from_slice(c.nick.as_bytes());
            self.scratch.push(b'\n');
            ends.push(self.scratch.len());
            keys.push(key);
        }
        let Some(r) = self.rooms.get(&**room) else {
            return;
        };
        if keys.is_empty() {
            return;
        }
        let block = out.post(&self.scratch, true);
        // The newcomers entered the room last, in order.
        let k = keys.len();
        let others: Vec<usize>;
        let before = match r.members.len().checked_sub(k) {
            Some(b) if r.members[b..] == keys[..] => &r.members[..b],
            _ => {
                // Not expected (nothing else changes a room while notices
                // wait), but never wrong: everyone who is no newcomer.
                others = r
                    .members
                    .iter()
                    .copied()
                    .filter(|m| !keys.contains(m))
                    .collect();
                &others[..]
            }
        };
        for &m in before {
            out.deliver(m, &block);
        }
        let (mut lines, mut bytes) = (before.len() * k, before.len() * self.scratch.len());
        for (i, &key) in keys.iter().enumerate().take(k - 1) {
            out.deliver(key, &out.suffix(&block, ends[i]));
            lines += k - 1 - i;
            bytes += self.scratch.len() - ends[i];
        }
        self.stats.msgs_out += lines as u64;
        self.stats.bytes_out += bytes as u64;
    }
}

#[cfg(test)]
mod tests {
    use crate::chat::record::Record;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    use proptest::prelude::*;

    use super::*;

    /// Every line per recipient.
    #[derive(Default)]
    struct Rec(BTreeMap<usize, String>);

    impl Record for Rec {
        fn record(&mut self, to: usize, line: &Rc<[u8]>) {
            self.0
                .entry(to)
                .or_default()
                .push_str(&String::from_utf8_lossy(line));
        }
    }

    /// What one step of a run does.
    #[derive(Debug, Clone)]
    enum Op {
        Connect(usize),
        Leave(usize),
        Say(usize),
        Join(usize, bool),
        EndTurn,
    }

    /// Runs `ops` on a router that batches notices (or not) and returns
    /// what each client received, a session at a time, with whether it
    /// left.
    fn run(ops: &[Op], batch: bool) -> Vec<(String, bool)> {
        let (mut r, mut o) = (Router::new(), Rec::default());
        r.batch = batch;
        let mut sessions = Vec::new();
        for op in ops {
            match *op {
                Op::Connect(k) if r.client(k).is_none() => r.connect(k, &mut o),
                Op::Leave(k) if r.client(k).is_some() => {
                    r.disconnect(k, Some("bye"), true, &mut o);
                    sessions.push((o.0.remove(&k).unwrap_or_default(), true));
                }
                Op::Say(k) => r.line(k, b"hello", &mut o),
                Op::Join(k, den) => {
                    r.line(k, if den { b"/join den" } else { b"/join lobby" }, &mut o)
                }
                _ => r.send_notices(&mut o),
            }
        }
        r.send_notices(&mut o);
        sessions.extend(o.0.into_values().map(|s| (s, false)));
        sessions
    }

    /// Batched and unbatched runs give every session the same lines, but
    /// for the `QUIT`s a leaving client may miss at its end.
    fn same(ops: &[Op]) -> Result<(), String> {
        let (batched, single) = (run(ops, true), run(ops, false));
        if batched.len() != single.len() {
            return Err(format!("sessions {batched:?} vs {single:?}"));
        }
        for ((b, left), (s, _)) in batched.iter().zip(&single) {
            let missed = s.strip_prefix(b.as_str());
            let ok = match missed {
                Some("") => true,
                Some(rest) if *left => rest.lines().all(|l| l.starts_with("QUIT ")),
                _ => false,
            };
            if !ok {
                return Err(format!("batched {b:?}, one at a time {s:?}"));
            }
        }
        Ok(())
    }

    #[test]
    fn a_batch_of_joins_reaches_everyone_as_single_joins_would() {
        let mut ops: Vec<Op> = (0..3).map(Op::Connect).collect();
        ops.push(Op::EndTurn);
        ops.extend((3..8).map(Op::Connect));
        ops.push(Op::Say(5));
        ops.extend((8..10).map(Op::Connect));
        ops.extend([Op::Leave(1), Op::Leave(9), Op::Leave(4), Op::Connect(1)]);
        same(&ops).unwrap();
        let batched = run(&ops, true);
        // Client 3 came in a batch: it hears the JOINs after its own.
        let three = batched
            .iter()
            .find(|s| s.0.starts_with("HELLO guest4 "))
            .unwrap();
        assert!(three.0.starts_with("HELLO guest4 lobby\nJOIN guest5\n"));
    }

    proptest! {
        #[test]
        fn batches_change_nothing_a_client_sees(
            ops in proptest::collection::vec(
                prop_oneof![
                    (0usize..12).prop_map(Op::Connect),
                    (0usize..12).prop_map(Op::Leave),
                    (0usize..12).prop_map(Op::Say),
                    (0usize..12, any::<bool>()).prop_map(|(k, d)| Op::Join(k, d)),
                    Just(Op::EndTurn),
                ],
                0..80,
            )
        ) {
            prop_assert_eq!(same(&ops), Ok(()));
        }
    }
}
