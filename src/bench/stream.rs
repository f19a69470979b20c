//! One benchmark connection: a window of messages in flight, the bytes they
//! must come back as, and when each was sent.
//!
//! Every message on a connection is the same `size` bytes of a pattern
//! seeded by the connection's index, so the stream sent is that pattern
//! repeated, and an echo is checked byte for byte against it at offset
//! `received % size` (a shifted, dropped, corrupted or foreign byte shows
//! up as a mismatch). The send buffer holds the pattern `depth` times, so
//! any window of whole or partial messages leaves in one `send` (with TLS:
//! is handed to rustls in one write). Nothing is allocated after
//! [`Stream::new`].

use std::io;
use std::time::Instant;

use super::link::Link;
use super::stats::Histogram;
use crate::transport::Input;

/// What the measured window has seen, over all connections.
#[derive(Debug, Default)]
pub struct Tally {
    /// Messages fully echoed.
    pub msgs: u64,
    /// Bytes echoed in those messages.
    pub bytes: u64,
    /// Messages whose echo did not match what was sent (kept across
    /// [`Tally::clear`]: a bad echo in the warm-up is still an error).
    pub mismatches: u64,
    /// Round-trip time of each message, send to full echo, in ns.
    pub latency: Histogram,
}

impl Tally {
    /// Starts the measured window: forgets counts and latencies.
    pub fn clear(&mut self) {
        self.msgs = 0;
        self.bytes = 0;
        self.latency.clear();
    }
}

/// One connection to the server under test.
pub struct Stream {
    pub link: Link,
    size: u64,
    depth: u64,
    /// The message pattern, `depth` times over.
    tx: Box<[u8]>,
    /// When each message in flight started to leave: slot `seq % depth`.
    sent_at: Box<[Instant]>,
    /// Bytes handed to the kernel / bytes echoed back.
    sent: u64,
    recv: u64,
    /// The message being received has a byte that does not match.
    bad: bool,
}

/// A small xorshift generator: cheap, deterministic pattern bytes.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

impl Stream {
    /// A connection sending `size`-byte messages, at most `depth` in flight.
    pub fn new(link: Link, index: usize, size: usize, depth: usize) -> Stream {
        let one = pattern(index as u64 + 1, size);
        let tx = one.repeat(depth).into_boxed_slice();
        Stream {
            link,
            size: size as u64,
            depth: depth as u64,
            tx,
            sent_at: vec![Instant::now(); depth].into_boxed_slice(),
            sent: 0,
            recv: 0,
            bad: false,
        }
    }

    /// Messages started but not yet fully echoed.
    pub fn in_flight(&self) -> u64 {
        self.sent.div_ceil(self.size) - self.recv / self.size
    }

    /// Sends as much of the window as the socket takes, starting at most
    /// `*budget` new messages (and taking them off it). One `send` call
    /// (TLS: what rustls owes, then the window in one write to rustls).
    pub fn send_some(&mut self, now: Instant, budget: &mut u64) -> io::Result<()> {
        if !self.link.writable {
            return Ok(());
        }
        let started = self.sent.div_ceil(self.size);
        let window = self.recv / self.size + self.depth;
        let limit = window.min(started.saturating_add(*budget)) * self.size;
        // The window never spans more than `depth` messages from a message
        // boundary at or before `sent`, so this slice is inside `tx`. An
        // empty one still lets TLS send the records it owes.
        let off = (self.sent % self.size) as usize;
        let len = limit.saturating_sub(self.sent) as usize;
        let n = self.link.send(&self.tx[off..off + len])?;
        if n == 0 {
            return Ok(());
        }
        self.sent += n as u64;
        let now_started = self.sent.div_ceil(self.size);
        for seq in started..now_started {
            self.sent_at[(seq % self.depth) as usize] = now;
        }
        *budget -= now_started - started;
        Ok(())
    }

    /// Reads what has arrived, checking it and timing every message it
    /// completes. Returns false once the server has closed the connection.
    pub fn recv_some(
        &mut self,
        buf: &mut [u8],
        now: Instant,
        tally: &mut Tally,
    ) -> io::Result<bool> {
        loop {
            let n = match self.link.next_input(buf)? {
                Input::Data(n) => n,
                Input::Nothing => return Ok(true),
                Input::Eof => return Ok(false),
            };
            if self.recv == 0 {
                super::greeting::check(&buf[..n])?;
            }
            if self.recv + n as u64 > self.sent {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "echoed more bytes than were sent",
                ));
            }
            self.check(&buf[..n], now, tally);
        }
    }

    /// Compares echoed bytes with the pattern and counts whole messages.
    fn check(&mut self, mut data: &[u8], now: Instant, tally: &mut Tally) {
        while !data.is_empty() {
            let off = (self.recv % self.size) as usize;
            let n = data.len().min(self.size as usize - off);
            if data[..n] != self.tx[off..off + n] {
                self.bad = true;
            }
            self.recv += n as u64;
            data = &data[n..];
            if off + n == self.size as usize {
                let seq = self.recv / self.size - 1;
                let rtt = now.duration_since(self.sent_at[(seq % self.depth) as usize]);
                tally.msgs += 1;
                tally.bytes += self.size;
                tally.latency.record(rtt.as_nanos() as u64);
                if std::mem::take(&mut self.bad) {
                    tally.mismatches += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Transport;
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    fn pair(size: usize, depth: usize) -> (Stream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let link = Link {
            fd: OwnedFd::from(a),
            transport: Transport::Plain,
            readable: true,
            writable: true,
            peer_fin: false,
        };
        (Stream::new(link, 3, size, depth), b)
    }

    /// Plays the echo server: reads what is there and sends it back,
    /// changing byte `corrupt` if asked.
    fn echo(peer: &mut UnixStream, want: usize, corrupt: Option<usize>) -> Vec<u8> {
        let mut got = vec![0u8; want];
        peer.read_exact(&mut got).unwrap();
        let mut back = got.clone();
        if let Some(i) = corrupt {
            back[i] ^= 0xff;
        }
        peer.write_all(&back).unwrap();
        got
    }

    #[test]
    fn window_limits_messages_in_flight() {
        let (mut s, mut peer) = pair(10, 4);
        let mut budget = u64::MAX;
        s.send_some(Instant::now(), &mut budget).unwrap();
        assert_eq!(s.in_flight(), 4);
        s.send_some(Instant::now(), &mut budget).unwrap();
        assert_eq!(s.in_flight(), 4, "a full window sends nothing more");
        echo(&mut peer, 40, None);
        let mut tally = Tally::default();
        let mut buf = [0u8; 7]; // smaller than a message: exercises partial reads
        assert!(s.recv_some(&mut buf, Instant::now(), &mut tally).unwrap());
        assert_eq!((tally.msgs, tally.bytes, tally.mismatches), (4, 40, 0));
        assert_eq!(tally.latency.count(), 4);
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn budget_caps_messages_started() {
        let (mut s, mut peer) = pair(5, 16);
        let mut budget = 3;
        s.send_some(Instant::now(), &mut budget).unwrap();
        assert_eq!((budget, s.in_flight()), (0, 3));
        let sent = echo(&mut peer, 15, None);
        assert_eq!(&sent[..5], &sent[5..10], "every message has the same bytes");
        let mut tally = Tally::default();
        s.recv_some(&mut [0u8; 64], Instant::now(), &mut tally)
            .unwrap();
        s.send_some(Instant::now(), &mut budget).unwrap();
        assert_eq!((tally.msgs, s.in_flight()), (3, 0));
    }

    #[test]
    fn a_changed_byte_is_one_mismatch() {
        let (mut s, mut peer) = pair(8, 2);
        s.send_some(Instant::now(), &mut u64::MAX.clone()).unwrap();
        echo(&mut peer, 16, Some(9));
        let mut tally = Tally::default();
        s.recv_some(&mut [0u8; 64], Instant::now(), &mut tally)
            .unwrap();
        assert_eq!((tally.msgs, tally.mismatches), (2, 1));
    }

    #[test]
    fn extra_bytes_and_close_are_reported() {
        let (mut s, mut peer) = pair(4, 1);
        s.send_some(Instant::now(), &mut u64::MAX.clone()).unwrap();
        let mut sent = [0u8; 4];
        peer.read_exact(&mut sent).unwrap();
        peer.write_all(b"12345").unwrap();
        let err = s.recv_some(&mut [0u8; 64], Instant::now(), &mut Tally::default());
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::InvalidData);
        drop(peer);
        s.link.readable = true;
        assert!(!s
            .recv_some(&mut [0u8; 64], Instant::now(), &mut Tally::default())
            .unwrap());
    }
}
