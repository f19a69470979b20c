//! What the server owes each client, and how a turn's chat lines reach
//! every recipient in one syscall.
//!
//! A chat line is encoded once into the [`Turn`], the reactor's buffer of
//! the lines of the current loop iteration. A recipient's [`OutQueue`]
//! holds no copy: it links *spans* of the turn, and a line that follows the
//! recipient's previous one in the turn's buffer (every line of a busy room,
//! in order) only stretches its last span. At the end of the turn the
//! reactor flushes each queue that was given lines: one `send` for one span
//! however many lines it holds, one `sendmsg` of up to `UIO_MAXIOV` buffers
//! for more. Whatever a socket does not take is copied into that
//! connection's own buffer ([`OutQueue::settle`]) before the turn's buffer is
//! reused, and goes out first next time.
//!
//! So a recipient that keeps up costs no copy and no allocation, and an
//! idle one holds no buffer at all. A turn that grows past its bounds (a
//! storm of thousands of joins) is flushed and settled early, so its size
//! stays bounded too.

use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;

use crate::sys::{socket, would_block};

/// At most this many buffers go to one `sendmsg` (the kernel's
/// `UIO_MAXIOV`).
const MAX_IOV: usize = 1024;
/// A turn holding this many bytes of lines is flushed and settled early.
const TURN_BYTES: usize = 256 * 1024;
/// Or this many spans (16 bytes each).
const TURN_SPANS: usize = 64 * 1024;
/// The end of a list of spans.
const NONE: u32 = u32::MAX;

/// A line posted to a [`Turn`]: where its bytes are. Lines are whole:
/// each ends in `\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// In the buffer of lines for one recipient (see [`Turn::post`]).
    one: bool,
    start: u32,
    end: u32,
}

impl Line {
    /// The line's length in bytes.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// The line without its first `skip` bytes.
    pub fn suffix(&self, skip: usize) -> Line {
        let start = (self.start + skip as u32).min(self.end);
        Line { start, ..*self }
    }

    /// True for a line of no bytes.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Consecutive bytes of one of the turn's buffers owed to one recipient,
/// and the next span owed to it.
#[derive(Debug, Clone, Copy)]
struct Span {
    one: bool,
    start: u32,
    end: u32,
    next: u32,
}

/// The lines of the current turn, each encoded once, and every recipient's
/// spans of them.
#[derive(Debug, Default)]
pub struct Turn {
    /// Lines for many recipients (room lines and notices).
    many: Vec<u8>,
    /// Lines for one (replies, `HELLO`, `DM`): kept apart so they never
    /// break up a run of room lines, which each member then owes as one
    /// span (a storm of `JOIN`s, each new client's `HELLO` between them).
    one: Vec<u8>,
    spans: Vec<Span>,
}

impl Turn {
    /// Copies `line` into the turn, once, for one recipient or for many.
    pub fn post(&mut self, line: &[u8], many: bool) -> Line {
        debug_assert!(line.ends_with(b"\n"), "whole lines only");
        let buf = if many { &mut self.many } else { &mut self.one };
        let start = buf.len() as u32;
        buf.extend_from_slice(line);
        Line {
            one: !many,
            start,
            end: buf.len() as u32,
        }
    }

    /// True once the turn is over its bounds: time to settle it.
    pub fn is_full(&self) -> bool {
        self.many.len() + self.one.len() >= TURN_BYTES || self.spans.len() >= TURN_SPANS
    }

    /// True when nothing has been posted since the last [`Turn::clear`].
    pub fn is_empty(&self) -> bool {
        self.many.is_empty() && self.one.is_empty()
    }

    /// Forgets every line and span, keeping the buffers. Every queue given
    /// lines must have been settled first.
    pub fn clear(&mut self) {
        self.many.clear();
        self.one.clear();
        self.spans.clear();
    }

    fn bytes(&self, s: &Span) -> &[u8] {
        let buf = if s.one { &self.one } else { &self.many };
        &buf[s.start as usize..s.end as usize]
    }
}

/// What a flush achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything owed was handed to the kernel.
    All,
    /// The socket's send buffer is full; wait for `EPOLLOUT`.
    Blocked,
}

/// Bytes owed to one client, in order: first its own buffer (what earlier
/// turns left unsent, or the rest of a partial echo write), then its spans
/// of the current turn.
#[derive(Debug)]
pub struct OutQueue {
    /// Owed ahead of the spans: `buf[head..]`. Freed once sent, so an idle
    /// client holds no buffer.
    buf: Vec<u8>,
    head: usize,
    /// The first and last of this turn's spans owed to the client.
    first: u32,
    last: u32,
    /// Spans in that list, and bytes of the first one already sent.
    spans: u32,
    skip: u32,
    /// Bytes owed in those spans.
    queued: usize,
    /// The last byte sent was not the end of a line.
    mid_line: bool,
}

impl Default for OutQueue {
    fn default() -> Self {
        OutQueue {
            buf: Vec::new(),
            head: 0,
            first: NONE,
            last: NONE,
            spans: 0,
            skip: 0,
            queued: 0,
            mid_line: false,
        }
    }
}

impl OutQueue {
    /// Bytes owed.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len() - self.head + self.queued
    }

    /// What the queue costs, as counted against `--max-output`: the memory
    /// its own buffer holds (sent bytes at its front and spare capacity
    /// included), plus the bytes it owes in the turn.
    #[inline]
    pub fn cost(&self) -> usize {
        self.buf.capacity() + self.queued
    }

    /// True when nothing is owed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether spans of the current turn are owed (the queue must be
    /// settled before the turn is cleared).
    #[inline]
    pub fn in_turn(&self) -> bool {
        self.first != NONE
    }

    /// Queues a copy of `data`. Only for a queue with no spans in the
    /// turn (echo; chat output always goes through the turn), so order
    /// holds.
    pub fn push_copy(&mut self, data: &[u8]) {
        debug_assert!(!self.in_turn(), "bytes would pass the turn's lines");
        self.buf.extend_from_slice(data);
    }

    /// Owes `line`, posted to `turn`: stretches the last span if the line
    /// follows it, else links a new one.
    #[inline]
    pub fn push_line(&mut self, turn: &mut Turn, line: Line) {
        if line.is_empty() {
            return;
        }
        self.queued += line.len();
        if let Some(s) = turn.spans.get_mut(self.last as usize) {
            if s.one == line.one && s.end == line.start {
                s.end = line.end;
                return;
            }
        }
        let at = turn.spans.len() as u32;
        turn.spans.push(Span {
            one: line.one,
            start: line.start,
            end: line.end,
            next: NONE,
        });
        match turn.spans.get_mut(self.last as usize) {
            Some(s) => s.next = at,
            None => {
                self.first = at;
                self.skip = 0;
            }
        }
        self.last = at;
        self.spans += 1;
    }

    /// True when the bytes sent so far end inside a line: a last line
    /// added now would land in the middle of it.
    #[inline]
    pub fn partly_sent(&self) -> bool {
        self.mid_line
    }

    /// Fills `iov` with what is owed, in order, up to about `max` bytes
    /// (whole buffers; the first may be partly sent). Returns how many
    /// entries were filled.
    pub fn slices<'a>(&'a self, turn: &'a Turn, iov: &mut [IoSlice<'a>], max: usize) -> usize {
        let mut n = 0;
        let mut total = 0;
        let own = &self.buf[self.head..];
        if !own.is_empty() && n < iov.len() {
            iov[n] = IoSlice::new(own);
            n += 1;
            total += own.len();
        }
        let mut at = self.first;
        let mut skip = self.skip as usize;
        while let Some(s) = turn.spans.get(at as usize) {
            if n == iov.len() || total >= max {
                break;
            }
            let bytes = &turn.bytes(s)[skip..];
            iov[n] = IoSlice::new(bytes);
            n += 1;
            total += bytes.len();
            at = s.next;
            skip = 0;
        }
        n
    }

    /// Sends as much as the socket takes: one `send` when one buffer is
    /// owed (a run of lines in one span), one `sendmsg` of up to
    /// `UIO_MAXIOV` buffers otherwise, until all is sent or `EAGAIN`.
    pub fn flush(&mut self, fd: BorrowedFd<'_>, turn: &Turn) -> io::Result<Flushed> {
        loop {
            let pieces = self.spans as usize + usize::from(self.head < self.buf.len());
            // The iovec array is as small as the work: filling it costs
            // 16 bytes an entry.
            let sent = match pieces {
                0 => return Ok(Flushed::All),
                1 => {
                    let front = self.front(turn);
                    match socket::send(fd, front) {
                        // All of it (a receiver that keeps up): no walk.
                        Ok(n) if n == front.len() => {
                            self.drained();
                            return Ok(Flushed::All);
                        }
                        sent => sent,
                    }
                }
                2..=8 => self.send_pieces::<8>(fd, turn),
                9..=64 => self.send_pieces::<64>(fd, turn),
                _ => self.send_pieces::<MAX_IOV>(fd, turn),
            };
            match sent {
                Ok(n) => self.consume(n, turn),
                Err(e) if would_block(&e) => return Ok(Flushed::Blocked),
                Err(e) => return Err(e),
            }
        }
    }

    /// Everything owed was sent: back to empty, the own buffer freed.
    #[inline]
    fn drained(&mut self) {
        // The turn's lines end in `\n`, so only the own buffer can end
        // mid-line.
        self.mid_line = !self.in_turn() && self.buf.last() != Some(&b'\n');
        if self.buf.capacity() > 0 {
            self.buf = Vec::new();
        }
        self.head = 0;
        self.first = NONE;
        self.last = NONE;
        self.spans = 0;
        self.skip = 0;
        self.queued = 0;
    }

    /// The first buffer owed: the rest of the own buffer, else of the
    /// first span.
    #[inline]
    fn front<'a>(&'a self, turn: &'a Turn) -> &'a [u8] {
        if self.head < self.buf.len() {
            return &self.buf[self.head..];
        }
        match turn.spans.get(self.first as usize) {
            Some(s) => &turn.bytes(s)[self.skip as usize..],
            None => &[],
        }
    }

    fn send_pieces<const N: usize>(&self, fd: BorrowedFd<'_>, turn: &Turn) -> io::Result<usize> {
        let mut iov = [IoSlice::new(&[]); N];
        match self.slices(turn, &mut iov, usize::MAX) {
            1 => socket::send(fd, &iov[0]),
            n => socket::send_vectored(fd, &iov[..n]),
        }
    }

    /// Drops `n` sent bytes from the front.
    pub fn consume(&mut self, mut n: usize, turn: &Turn) {
        if n == 0 {
            return;
        }
        if n == self.len() {
            return self.drained();
        }
        let own = self.buf.len() - self.head;
        if own > 0 {
            let k = n.min(own);
            self.head += k;
            n -= k;
            self.mid_line = self.buf[self.head - 1] != b'\n';
            if self.head == self.buf.len() {
                // Drained: give the memory back (an idle client holds none).
                self.buf = Vec::new();
                self.head = 0;
            }
        }
        while n > 0 {
            let Some(s) = turn.spans.get(self.first as usize) else {
                break;
            };
            let bytes = &turn.bytes(s)[self.skip as usize..];
            let k = n.min(bytes.len());
            self.mid_line = bytes[k - 1] != b'\n';
            self.queued -= k;
            n -= k;
            if k < bytes.len() {
                self.skip += k as u32;
                break;
            }
            self.first = s.next;
            self.skip = 0;
            self.spans -= 1;
        }
        if self.first == NONE {
            self.last = NONE;
        }
    }

    /// Copies what is still owed of the turn into the queue's own buffer,
    /// so the turn can be cleared. (Only for a client the socket did not
    /// take everything from: the others owe nothing by now.)
    #[inline]
    pub fn settle(&mut self, turn: &Turn) {
        if self.in_turn() {
            self.copy_out(turn);
        }
    }

    #[cold]
    #[inline(never)]
    fn copy_out(&mut self, turn: &Turn) {
        if self.head > 0 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.reserve(self.queued);
        let mut at = self.first;
        let mut skip = self.skip as usize;
        while let Some(s) = turn.spans.get(at as usize) {
            self.buf.extend_from_slice(&turn.bytes(s)[skip..]);
            at = s.next;
            skip = 0;
        }
        self.first = NONE;
        self.last = NONE;
        self.spans = 0;
        self.skip = 0;
        self.queued = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::net::UnixStream;

    fn pair() -> (OwnedFd, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (OwnedFd::from(a), b)
    }

    fn read_n(peer: &mut UnixStream, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        peer.read_exact(&mut got).unwrap();
        got
    }

    #[test]
    fn own_bytes_go_before_the_turns_lines() {
        let (fd, mut peer) = pair();
        let mut turn = Turn::default();
        let mut q = OutQueue::default();
        q.push_copy(b"ab");
        q.push_copy(b"cd");
        let l = turn.post(b"ef\n", true);
        q.push_line(&mut turn, l);
        let l = turn.post(b"g\n", false);
        q.push_line(&mut turn, l);
        assert_eq!(q.len(), 9);
        assert_eq!(q.flush(fd.as_fd(), &turn).unwrap(), Flushed::All);
        assert!(q.is_empty() && !q.in_turn());
        assert_eq!(read_n(&mut peer, 9), b"abcdef\ng\n");
    }

    #[test]
    fn consecutive_lines_share_one_span() {
        let mut turn = Turn::default();
        let (mut a, mut b) = (OutQueue::default(), OutQueue::default());
        for i in 0..256 {
            let l = turn.post(format!("MSG x {i}\n").as_bytes(), true);
            a.push_line(&mut turn, l);
            b.push_line(&mut turn, l);
            // A reply to `a` alone, between them, breaks no run.
            let r = turn.post(b"OK\n", false);
            a.push_line(&mut turn, r);
        }
        assert_eq!(b.spans, 1, "b owes one run of 256 lines");
        assert_eq!(a.spans, 512, "a's lines alternate between buffers");
        let (fd, mut peer) = pair();
        assert_eq!(b.flush(fd.as_fd(), &turn).unwrap(), Flushed::All);
        let want: Vec<u8> = (0..256)
            .flat_map(|i| format!("MSG x {i}\n").into_bytes())
            .collect();
        assert_eq!(read_n(&mut peer, want.len()), want);
        assert_eq!(a.flush(fd.as_fd(), &turn).unwrap(), Flushed::All);
        let want: Vec<u8> = (0..256)
            .flat_map(|i| format!("MSG x {i}\nOK\n").into_bytes())
            .collect();
        assert_eq!(read_n(&mut peer, want.len()), want);
    }

    #[test]
    fn a_blocked_queue_settles_and_resumes_mid_line() {
        let (fd, mut peer) = pair();
        let mut turn = Turn::default();
        let mut q = OutQueue::default();
        let line: Vec<u8> = [vec![7u8; 999], vec![b'\n']].concat();
        let mut want = Vec::new();
        while q.flush(fd.as_fd(), &turn).unwrap() == Flushed::All {
            let l = turn.post(&line, true);
            q.push_line(&mut turn, l);
            want.extend_from_slice(&line);
        }
        assert!(q.partly_sent() || q.len() % line.len() == 0);
        let owed = q.len();
        q.settle(&turn);
        turn.clear();
        assert_eq!(q.len(), owed, "settling keeps every byte owed");
        assert!(!q.in_turn());
        // The next turn's lines go after the settled ones.
        let l = turn.post(b"tail\n", true);
        q.push_line(&mut turn, l);
        want.extend_from_slice(b"tail\n");
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while got.len() < want.len() {
            let n = peer.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            q.flush(fd.as_fd(), &turn).unwrap();
        }
        assert!(q.is_empty());
        assert_eq!(q.cost(), 0, "a drained queue frees its buffer");
        assert!(!q.partly_sent());
        assert_eq!(got, want);
    }

    #[test]
    fn slices_stop_near_the_byte_limit() {
        let mut turn = Turn::default();
        let mut q = OutQueue::default();
        for _ in 0..10 {
            let l = turn.post(b"0123456789\n", false);
            q.push_line(&mut turn, l);
            let r = turn.post(b"x\n", true);
            q.push_line(&mut turn, r);
        }
        let mut iov = [IoSlice::new(&[]); 64];
        let n = q.slices(&turn, &mut iov, 20);
        assert_eq!(n, 3, "11 + 2 + 11 bytes reach the limit");
        let n = q.slices(&turn, &mut iov, usize::MAX);
        assert_eq!(n, 20);
        q.consume(12, &turn);
        assert!(q.partly_sent());
        q.consume(1, &turn);
        assert!(!q.partly_sent());
        assert_eq!(q.len(), 10 * 13 - 13);
    }

    #[test]
    fn a_turn_is_full_past_its_bounds() {
        let mut turn = Turn::default();
        let mut q = OutQueue::default();
        let mut line = vec![b'x'; 1023];
        line.push(b'\n');
        while !turn.is_full() {
            let l = turn.post(&line, true);
            q.push_line(&mut turn, l);
        }
        assert!(turn.many.len() >= TURN_BYTES);
        q.settle(&turn);
        turn.clear();
        assert!(turn.is_empty() && !turn.is_full());
        // Spans count too: short lines to many recipients, each line
        // breaking the previous one's run.
        let mut qs: Vec<OutQueue> = (0..64).map(|_| OutQueue::default()).collect();
        let mut i = 0;
        while !turn.is_full() {
            let l = turn.post(b"x\n", true);
            qs[i % 64].push_line(&mut turn, l);
            i += 1;
        }
        assert!(turn.spans.len() >= TURN_SPANS);
        assert!(turn.many.len() < TURN_BYTES, "full by its spans alone");
    }
}
