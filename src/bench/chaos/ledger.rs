//! The checkers' books: every numbered line one checker sends another
//! (room lines to all the others, direct messages to one), and what each
//! receiver saw of it. Pure, no I/O, tested in-file.
//!
//! A checker's line carries four numbers: its sender, its number in its
//! stream (the sender's room lines, or its direct messages to one
//! receiver: 0, 1, 2, ...), the sender's count of all lines sent so far,
//! and when it was sent (µs since the soak began). A receiver expects each
//! stream's numbers in order without gaps, and the sender's counts rising
//! across both streams (a room line and a direct message from the same
//! sender keep their order too); it times each line from send to receipt.

use crate::bench::stats::Histogram;

/// Which stream a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// To everyone in the room.
    Room,
    /// To one receiver.
    Direct,
}

impl Stream {
    /// The letter that names the stream inside a line.
    pub fn letter(self) -> char {
        match self {
            Stream::Room => 'r',
            Stream::Direct => 'd',
        }
    }
}

/// One checker line, as sent (`seq <sender> <r|d> <n> <count> <sent_us>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbered {
    pub sender: usize,
    pub stream: Stream,
    pub n: u64,
    pub count: u64,
    pub sent_us: u64,
}

impl Numbered {
    /// Appends the line's text (without `\n`).
    pub fn write(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let letter = self.stream.letter();
        let (sender, n, count, at) = (self.sender, self.n, self.count, self.sent_us);
        let _ = write!(out, "seq {sender} {letter} {n} {count} {at}");
    }

    /// Reads a line's text back; `None` if it is not a checker line.
    pub fn parse(text: &[u8]) -> Option<Numbered> {
        let text = std::str::from_utf8(text).ok()?;
        let mut f = text.split(' ');
        if f.next()? != "seq" {
            return None;
        }
        let sender = f.next()?.parse().ok()?;
        let stream = match f.next()? {
            "r" => Stream::Room,
            "d" => Stream::Direct,
            _ => return None,
        };
        let n = f.next()?.parse().ok()?;
        let count = f.next()?.parse().ok()?;
        let sent_us = f.next()?.parse().ok()?;
        f.next().is_none().then_some(Numbered {
            sender,
            stream,
            n,
            count,
            sent_us,
        })
    }
}

/// What every checker sent and what every checker received.
#[derive(Debug, Clone)]
pub struct Ledger {
    k: usize,
    /// Per sender: room lines sent, and all lines sent.
    room_sent: Vec<u64>,
    counts: Vec<u64>,
    /// `[sender * k + receiver]`: direct messages sent.
    direct_sent: Vec<u64>,
    /// `[receiver * k + sender]`: the next number expected in each stream,
    /// and the last count seen.
    room_next: Vec<u64>,
    direct_next: Vec<u64>,
    last_count: Vec<Option<u64>>,
    /// Lines that arrived with the number expected.
    pub checked: u64,
    /// Lines skipped over by a later number (never seen in order).
    pub skipped: u64,
    /// Lines whose number or count was not the next one (gaps, repeats,
    /// late arrivals, a direct message overtaking a room line).
    pub out_of_order: u64,
    /// Lines that claim a sender other than the nick that sent them, or a
    /// sender that does not exist.
    pub forged: u64,
    /// Per line received in order: receipt time minus send time, ns.
    pub latency: Histogram,
}

impl Ledger {
    /// The books of `k` checkers.
    pub fn new(k: usize) -> Ledger {
        Ledger {
            k,
            room_sent: vec![0; k],
            counts: vec![0; k],
            direct_sent: vec![0; k * k],
            room_next: vec![0; k * k],
            direct_next: vec![0; k * k],
            last_count: vec![None; k * k],
            checked: 0,
            skipped: 0,
            out_of_order: 0,
            forged: 0,
            latency: Histogram::default(),
        }
    }

    /// Numbers the next room line of `sender`, sent at `now_us`.
    pub fn send_room(&mut self, sender: usize, now_us: u64) -> Numbered {
        let n = self.room_sent[sender];
        self.room_sent[sender] += 1;
        self.numbered(sender, Stream::Room, n, now_us)
    }

    /// Numbers the next direct message from `sender` to `receiver`.
    pub fn send_direct(&mut self, sender: usize, receiver: usize, now_us: u64) -> Numbered {
        let at = sender * self.k + receiver;
        let n = self.direct_sent[at];
        self.direct_sent[at] += 1;
        self.numbered(sender, Stream::Direct, n, now_us)
    }

    fn numbered(&mut self, sender: usize, stream: Stream, n: u64, sent_us: u64) -> Numbered {
        let count = self.counts[sender];
        self.counts[sender] += 1;
        Numbered {
            sender,
            stream,
            n,
            count,
            sent_us,
        }
    }

    /// `receiver` got `line` from the checker `from` (by its nick), in the
    /// room or as a direct message (`via`), at `now_us`.
    pub fn receive(
        &mut self,
        receiver: usize,
        from: usize,
        via: Stream,
        line: Numbered,
        now_us: u64,
    ) {
        let wrong = line.sender != from || line.stream != via || receiver == from;
        if wrong || from >= self.k || receiver >= self.k {
            self.forged += 1;
            return;
        }
        let at = receiver * self.k + from;
        let next = match line.stream {
            Stream::Room => &mut self.room_next[at],
            Stream::Direct => &mut self.direct_next[at],
        };
        if line.n == *next {
            self.checked += 1;
            let took_us = now_us.saturating_sub(line.sent_us);
            self.latency.record(took_us.saturating_mul(1000));
        } else {
            self.out_of_order += 1;
            self.skipped += line.n.saturating_sub(*next);
        }
        *next = (*next).max(line.n + 1);
        let last = &mut self.last_count[at];
        if last.is_some_and(|c| line.count <= c) {
            self.out_of_order += 1;
        }
        *last = Some(last.map_or(line.count, |c| c.max(line.count)));
    }

    /// Lines sent between two checkers that are both still `alive` and not
    /// (yet) received: zero once everything in flight has arrived.
    pub fn missing(&self, alive: &[bool]) -> u64 {
        let mut missing = 0;
        for s in (0..self.k).filter(|&s| alive[s]) {
            for r in (0..self.k).filter(|&r| r != s && alive[r]) {
                let at = r * self.k + s;
                missing += self.room_sent[s].saturating_sub(self.room_next[at]);
                missing += self.direct_sent[s * self.k + r].saturating_sub(self.direct_next[at]);
            }
        }
        missing
    }

    /// Lines lost: skipped in order, or still missing.
    pub fn lost(&self, alive: &[bool]) -> u64 {
        self.skipped + self.missing(alive)
    }

    /// Every line any checker sent (room lines once, not per receiver).
    pub fn sent(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_back() {
        let line = Numbered {
            sender: 3,
            stream: Stream::Direct,
            n: 17,
            count: 40,
            sent_us: 1234,
        };
        let mut text = Vec::new();
        line.write(&mut text);
        assert_eq!(text, b"seq 3 d 17 40 1234");
        assert_eq!(Numbered::parse(&text), Some(line));
        for bad in [
            &b"seq 3 x 1 2 3"[..],
            b"seq 3 r 1 2",
            b"seq 3 r 1 2 3 4",
            b"hello",
            b"seq a r 1 2 3",
            b"\xff",
        ] {
            assert_eq!(Numbered::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn in_order_lines_are_checked_and_nothing_is_missing() {
        let mut l = Ledger::new(3);
        let alive = [true; 3];
        let a = l.send_room(0, 100);
        let b = l.send_direct(0, 2, 100);
        assert_eq!(l.missing(&alive), 3, "a room line for 1 and 2, a DM for 2");
        l.receive(1, 0, Stream::Room, a, 0);
        l.receive(2, 0, Stream::Room, a, 0);
        l.receive(2, 0, Stream::Direct, b, 350);
        assert_eq!((l.checked, l.out_of_order, l.lost(&alive)), (3, 0, 0));
        assert_eq!(l.latency.count(), 3);
        assert!(l.latency.max() >= 250_000, "250 µs, in ns");
        assert_eq!(l.sent(), 2);
    }

    #[test]
    fn gaps_repeats_and_overtaking_are_counted() {
        let mut l = Ledger::new(2);
        let alive = [true; 2];
        let lines: Vec<_> = (0..3).map(|_| l.send_room(0, 0)).collect();
        l.receive(1, 0, Stream::Room, lines[0], 0);
        l.receive(1, 0, Stream::Room, lines[2], 0); // line 1 skipped
        assert_eq!((l.checked, l.out_of_order, l.skipped), (1, 1, 1));
        assert_eq!(l.lost(&alive), 1);
        l.receive(1, 0, Stream::Room, lines[2], 0); // a repeat
        assert_eq!(l.out_of_order, 3, "its number and its count are old");
        let mut l = Ledger::new(2);
        let room = l.send_room(0, 0);
        let dm = l.send_direct(0, 1, 0);
        l.receive(1, 0, Stream::Direct, dm, 0);
        l.receive(1, 0, Stream::Room, room, 0); // in order in its stream, but overtaken
        assert_eq!((l.checked, l.out_of_order, l.lost(&alive)), (2, 1, 0));
    }

    #[test]
    fn forged_senders_and_dead_checkers() {
        let mut l = Ledger::new(3);
        let a = l.send_room(0, 0);
        l.receive(1, 2, Stream::Room, a, 0);
        l.receive(1, 0, Stream::Direct, a, 0);
        l.receive(0, 0, Stream::Room, a, 0);
        assert_eq!(
            (l.forged, l.checked),
            (3, 0),
            "wrong nick, wrong stream, own line"
        );
        assert_eq!(l.missing(&[true, true, true]), 2);
        assert_eq!(
            l.missing(&[true, false, false]),
            0,
            "nobody left to miss it"
        );
    }
}
