//! A connection's output queue: bytes owed to one client, in order, as
//! owned buffers or references to lines shared by many recipients, flushed
//! with one `sendmsg` of many buffers (or handed to TLS a batch at a time).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;
use std::rc::Rc;

use crate::sys::{socket, would_block};

mod spares;

/// At most this many buffers go to one `sendmsg` call.
const MAX_IOV: usize = 64;
/// The reactor sends a chat queue at once when it holds this many buffers,
/// so a client that keeps up never needs a bigger array (see `spares`).
pub const EARLY_FLUSH: usize = 32;

/// Sets aside the spare queue arrays that let a client sent a burst cost
/// no allocation (see `spares`); the chat reactor calls it at start, on
/// its own thread. No more than `clients` are set aside: no more clients
/// can need one at once.
pub fn reserve_spares(clients: usize) {
    spares::reserve(clients);
}

/// What one queued buffer costs beyond its bytes. `--max-output` bounds a
/// client's bytes plus this much per buffer, so that it bounds memory: a
/// client owed a million tiny lines holds a million of these.
/// - Its slot in the queue's array: 24 bytes (a [`Chunk`]), counted twice,
///   as the array grows by doubling and so may be half spare slots: 48.
/// - A shared line's allocation beyond its bytes (a slow client may be the
///   last to hold it): the `Rc`'s strong and weak counts, 16; malloc's size
///   word, 8; rounding up to 8 bytes (the `Rc`'s layout), then to malloc's
///   16-byte granules, at most 15 in all.
///
/// 48 + 16 + 8 + 15 = 87, rounded up to 88.
pub const CHUNK_COST: usize = 88;
const _: () = assert!(CHUNK_COST > 2 * std::mem::size_of::<Chunk>() + 16 + 8 + 15);

/// One buffer waiting in an output queue.
#[derive(Debug)]
pub enum Chunk {
    /// Bytes only this connection needs (the rest of a partial echo write).
    Owned(Vec<u8>),
    /// A line encoded once and shared by every recipient.
    Shared(Rc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(r) => r,
        }
    }
}

/// Bytes owed to a client, in order, flushed with one `sendmsg` per call.
#[derive(Debug, Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already sent.
    head: usize,
    /// Bytes owed in total.
    len: usize,
    /// The queue's own small array while `chunks` holds a borrowed big one
    /// (see `spares`).
    parked: VecDeque<Chunk>,
    /// Whether `chunks`' array is borrowed from the spares.
    lent: bool,
}

impl Drop for OutQueue {
    fn drop(&mut self) {
        if self.lent {
            spares::give_back(&mut self.chunks);
        }
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

impl OutQueue {
    /// Bytes owed.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// What the queue costs, as counted against `--max-output`: its bytes
    /// plus [`CHUNK_COST`] per buffer.
    #[inline]
    pub fn cost(&self) -> usize {
        self.len + self.chunks.len() * CHUNK_COST
    }

    /// True when nothing is owed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a copy of `data`, appending to the last owned buffer if any.
    pub fn push_copy(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        if let Some(Chunk::Owned(v)) = self.chunks.back_mut() {
            v.extend_from_slice(data);
            return;
        }
        self.push(Chunk::Owned(data.to_vec()));
    }

    /// Queues a reference to a shared buffer (no copy).
    #[inline]
    pub fn push_shared(&mut self, data: Rc<[u8]>) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        self.push(Chunk::Shared(data));
    }

    #[inline]
    fn push(&mut self, c: Chunk) {
        if self.chunks.len() == self.chunks.capacity() {
            spares::trade_up(&mut self.chunks, &mut self.parked, &mut self.lent);
        }
        self.chunks.push_back(c);
    }

    /// Fills `iov` with the queued buffers, in order, up to about `max`
    /// bytes (whole buffers; the first may be partly sent). Returns how
    /// many entries were filled.
    pub fn slices<'a>(&'a self, iov: &mut [IoSlice<'a>], max: usize) -> usize {
        let mut n = 0;
        let mut total = 0;
        for (i, c) in self.chunks.iter().take(iov.len()).enumerate() {
            if total >= max {
                break;
            }
            let bytes = if i == 0 {
                &c.bytes()[self.head..]
            } else {
                c.bytes()
            };
            iov[n] = IoSlice::new(bytes);
            n += 1;
            total += bytes.len();
        }
        n
    }

    /// True when the front buffer is partly sent: the bytes that went out
    /// end inside it (for chat, inside a line).
    #[inline]
    pub fn partly_sent(&self) -> bool {
        self.head > 0
    }

    /// Buffers queued.
    #[inline]
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Sends as much as the socket takes, many buffers per `sendmsg`.
    pub fn flush(&mut self, fd: BorrowedFd<'_>) -> io::Result<Flushed> {
        while !self.is_empty() {
            if self.chunks.len() == 1 {
                // One buffer owed (a line per turn, the common case): a plain
                // send, no iovec array to fill, no msghdr for the kernel.
                match socket::send(fd, &self.chunks[0].bytes()[self.head..]) {
                    Ok(sent) => self.consume(sent),
                    Err(e) if would_block(&e) => return Ok(Flushed::Blocked),
                    Err(e) => return Err(e),
                }
                continue;
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = self.slices(&mut iov, usize::MAX);
            let sent = match socket::send_vectored(fd, &iov[..n]) {
                Ok(sent) => sent,
                Err(e) if would_block(&e) => return Ok(Flushed::Blocked),
                Err(e) => return Err(e),
            };
            self.consume(sent);
        }
        Ok(Flushed::All)
    }

    /// Drops `n` sent bytes from the front.
    pub fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.head = 0;
            self.chunks.pop_front();
        }
        if self.chunks.is_empty() && self.chunks.capacity() > spares::SMALL {
            // A queue that drained after a burst gives its big array back
            // (see `spares`) and takes its small one again, so a line per
            // turn allocates nothing.
            spares::trade_down(&mut self.chunks, &mut self.parked, &mut self.lent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::net::UnixStream;

    fn pair() -> (OwnedFd, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (OwnedFd::from(a), b)
    }

    #[test]
    fn queue_keeps_order_across_owned_and_shared() {
        let (fd, mut peer) = pair();
        let mut q = OutQueue::default();
        q.push_copy(b"ab");
        q.push_copy(b"cd");
        q.push_shared(Rc::from(&b"ef"[..]));
        q.push_copy(b"g");
        assert_eq!(q.len(), 7);
        assert_eq!(q.flush(fd.as_fd()).unwrap(), Flushed::All);
        assert!(q.is_empty());
        let mut got = [0u8; 7];
        std::io::Read::read_exact(&mut peer, &mut got).unwrap();
        assert_eq!(&got, b"abcdefg");
    }

    #[test]
    fn partial_flush_resumes_mid_chunk() {
        let (fd, mut peer) = pair();
        let mut q = OutQueue::default();
        let big = vec![7u8; 4 << 20];
        q.push_copy(&big);
        q.push_shared(Rc::from(&b"tail"[..]));
        assert_eq!(q.flush(fd.as_fd()).unwrap(), Flushed::Blocked);
        assert!(!q.is_empty() && q.len() < big.len() + 4);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while got.len() < big.len() + 4 {
            let n = std::io::Read::read(&mut peer, &mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            q.flush(fd.as_fd()).unwrap();
        }
        assert!(q.is_empty());
        assert_eq!(&got[..big.len()], &big[..]);
        assert_eq!(&got[big.len()..], b"tail");
    }

    fn burst(q: &mut OutQueue, fd: &OwnedFd, n: usize) {
        for _ in 0..n {
            q.push_shared(Rc::from(&b"x\n"[..]));
        }
        assert_eq!(q.flush(fd.as_fd()).unwrap(), Flushed::All);
    }

    /// Without the spares set aside, a burst grows the array as any
    /// `VecDeque` does, and a drained queue frees it.
    #[test]
    fn a_drained_queue_keeps_only_a_small_array() {
        let (fd, _peer) = pair();
        let mut q = OutQueue::default();
        burst(&mut q, &fd, 1);
        assert_eq!(q.chunks.capacity(), spares::SMALL);
        assert_eq!(
            std::mem::size_of::<Chunk>(),
            24,
            "the array kept is 4 x 24 bytes"
        );
        q.push_shared(Rc::from(&b"x\n"[..]));
        burst(&mut q, &fd, 9);
        assert_eq!(q.chunks.capacity(), 0, "a burst's array is freed");
        assert_eq!(spares::stocked(), 0);
    }

    /// With them, a queue borrows a big array for a burst and gives it
    /// back, keeping its own small array; nothing is allocated.
    #[test]
    fn a_burst_borrows_a_spare_array_and_gives_it_back() {
        spares::reserve(usize::MAX);
        let full = spares::stocked();
        let (fd, _peer) = pair();
        let mut q = OutQueue::default();
        burst(&mut q, &fd, 1);
        assert_eq!(q.chunks.capacity(), spares::SMALL);
        assert_eq!(spares::stocked(), full);
        for _ in 0..3 {
            for _ in 0..10 {
                q.push_shared(Rc::from(&b"x\n"[..]));
            }
            assert_eq!(q.chunks.capacity(), EARLY_FLUSH);
            assert_eq!(q.parked.capacity(), spares::SMALL);
            assert_eq!(spares::stocked(), full - 1);
            assert_eq!(q.flush(fd.as_fd()).unwrap(), Flushed::All);
            assert_eq!(q.chunks.capacity(), spares::SMALL);
            assert_eq!(spares::stocked(), full);
        }
        q.push_shared(Rc::from(&b"x\n"[..]));
        for _ in 0..10 {
            q.push_shared(Rc::from(&b"x\n"[..]));
        }
        drop(q);
        assert_eq!(spares::stocked(), full, "a closed queue gives it back");
    }

    /// A borrowed array that fills (its client fell behind) is traded for
    /// one of the queue's own at once: the stock never shrinks, and the
    /// queue's own array is freed once drained.
    #[test]
    fn a_full_borrowed_array_goes_back_at_once() {
        spares::reserve(usize::MAX);
        let full = spares::stocked();
        let (fd, _peer) = pair();
        let mut q = OutQueue::default();
        for _ in 0..EARLY_FLUSH + 1 {
            q.push_shared(Rc::from(&b"x\n"[..]));
        }
        assert_eq!(q.chunks.capacity(), 2 * EARLY_FLUSH);
        assert_eq!(spares::stocked(), full, "the borrowed array went back");
        assert_eq!(q.flush(fd.as_fd()).unwrap(), Flushed::All);
        assert_eq!(q.chunks.capacity(), spares::SMALL);
        burst(&mut q, &fd, 10);
        assert_eq!(spares::stocked(), full);
        drop(q);
        assert_eq!(spares::stocked(), full);
    }
}
