//! One client connection: its socket, what the server still owes it, and
//! the few bits of state the edge-triggered loop must remember.
//!
//! Edge-triggered epoll reports a change once, so the connection remembers
//! what the last edge said until the server has acted on all of it:
//! `readable` until a read comes back short or `EAGAIN`, `writable` until a
//! write comes back `EAGAIN`.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use crate::sys::{socket, would_block};

/// At most this many buffers go to one `sendmsg` call.
const MAX_IOV: usize = 64;
/// A drained queue keeps its buffer up to this many chunks (the smallest
/// a `VecDeque` allocates: 4 x 24 bytes).
const KEEP_CHUNKS: usize = 4;

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
        self.chunks.push_back(Chunk::Owned(data.to_vec()));
    }

    /// Queues a reference to a shared buffer (no copy).
    pub fn push_shared(&mut self, data: Rc<[u8]>) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        self.chunks.push_back(Chunk::Shared(data));
    }

    /// Sends as much as the socket takes, many buffers per `sendmsg`, or
    /// one `send` when only one buffer is owed (the common case of a line
    /// per turn: no iovec array to fill, no msghdr for the kernel to copy).
    pub fn flush(&mut self, fd: &OwnedFd) -> io::Result<Flushed> {
        while !self.is_empty() {
            if self.chunks.len() == 1 {
                let bytes = &self.chunks[0].bytes()[self.head..];
                match socket::send(fd.as_fd(), bytes) {
                    Ok(sent) => self.consume(sent),
                    Err(e) if would_block(&e) => return Ok(Flushed::Blocked),
                    Err(e) => return Err(e),
                }
                continue;
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (i, c) in self.chunks.iter().take(MAX_IOV).enumerate() {
                let bytes = if i == 0 {
                    &c.bytes()[self.head..]
                } else {
                    c.bytes()
                };
                iov[n] = IoSlice::new(bytes);
                n += 1;
            }
            let sent = match socket::send_vectored(fd.as_fd(), &iov[..n]) {
                Ok(sent) => sent,
                Err(e) if would_block(&e) => return Ok(Flushed::Blocked),
                Err(e) => return Err(e),
            };
            self.consume(sent);
        }
        Ok(Flushed::All)
    }

    /// Drops `n` sent bytes from the front.
    fn consume(&mut self, mut n: usize) {
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
        if self.chunks.is_empty() && self.chunks.capacity() > KEEP_CHUNKS {
            // A queue that drained after a burst gives its memory back; a
            // small one is kept, so a line per turn allocates nothing.
            self.chunks = VecDeque::new();
        }
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and writing.
    Open,
    /// The peer half-closed, or the server is shutting down: finish
    /// sending what is owed, then `shutdown(SHUT_WR)` and close.
    Closing,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Open => "OPEN",
            Phase::Closing => "CLOSING",
        })
    }
}

/// One accepted client.
#[derive(Debug)]
pub struct Conn {
    /// The socket; dropping the connection closes it.
    pub fd: OwnedFd,
    /// Matches the generation in this connection's epoll token.
    pub gen: u32,
    /// What the server still owes the client.
    pub out: OutQueue,
    pub phase: Phase,
    /// The last edge said "readable" and no read has come back short since.
    pub readable: bool,
    /// The send buffer had room at the last write.
    pub writable: bool,
    /// The peer's FIN was reported: read until `recv` returns 0.
    pub peer_fin: bool,
    /// Read returned 0: the client sends nothing more.
    pub read_closed: bool,
    /// Sitting in the reactor's ready list.
    pub queued: bool,
    /// Has new output since the last flush (on the reactor's dirty list).
    pub dirty: bool,
    /// Marked to be cut (slow consumer): takes no more output.
    pub cut: bool,
}

impl Conn {
    /// A freshly accepted connection: assume both directions are ready, as
    /// the first edge may have come before registration.
    pub fn new(fd: OwnedFd, gen: u32) -> Conn {
        Conn {
            fd,
            gen,
            out: OutQueue::default(),
            phase: Phase::Open,
            readable: true,
            writable: true,
            peer_fin: false,
            read_closed: false,
            queued: false,
            dirty: false,
            cut: false,
        }
    }

    /// Whether the server should read now: the client has something to say,
    /// and the server owes it no more than `max_output` (backpressure).
    #[inline]
    pub fn wants_read(&self, max_output: usize) -> bool {
        self.readable && !self.read_closed && self.out.len() <= max_output
    }

    /// Sends `data` now if nothing is queued ahead of it, and queues what the
    /// socket did not take. Order is kept: queued bytes always go first.
    #[inline]
    pub fn send_or_queue(&mut self, data: &[u8]) -> io::Result<()> {
        if self.out.is_empty() && self.writable {
            match socket::send(self.fd.as_fd(), data) {
                Ok(n) if n == data.len() => return Ok(()),
                Ok(n) => {
                    self.writable = false;
                    self.out.push_copy(&data[n..]);
                }
                Err(e) if would_block(&e) => {
                    self.writable = false;
                    self.out.push_copy(data);
                }
                Err(e) => return Err(e),
            }
            return Ok(());
        }
        self.out.push_copy(data);
        self.flush()
    }

    /// Flushes the output queue if the socket may take more.
    #[inline]
    pub fn flush(&mut self) -> io::Result<()> {
        if self.writable && !self.out.is_empty() && self.out.flush(&self.fd)? == Flushed::Blocked {
            self.writable = false;
        }
        Ok(())
    }

    /// True when the connection has finished: closing and nothing owed.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Closing && self.out.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(q.flush(&fd).unwrap(), Flushed::All);
        assert!(q.is_empty());
        let mut got = [0u8; 7];
        std::io::Read::read_exact(&mut peer, &mut got).unwrap();
        assert_eq!(&got, b"abcdefg");
    }

    #[test]
    fn a_drained_queue_keeps_only_a_small_buffer() {
        let (fd, _peer) = pair();
        let mut q = OutQueue::default();
        q.push_shared(Rc::from(&b"one line\n"[..]));
        assert_eq!(q.flush(&fd).unwrap(), Flushed::All);
        assert!((1..=KEEP_CHUNKS).contains(&q.chunks.capacity()));
        assert_eq!(
            std::mem::size_of::<Chunk>(),
            24,
            "the buffer kept is 4 x 24 bytes"
        );
        for _ in 0..10 {
            q.push_shared(Rc::from(&b"x\n"[..]));
        }
        assert_eq!(q.flush(&fd).unwrap(), Flushed::All);
        assert_eq!(q.chunks.capacity(), 0, "a burst's buffer is given back");
    }

    #[test]
    fn partial_flush_resumes_mid_chunk() {
        let (fd, mut peer) = pair();
        let mut q = OutQueue::default();
        let big = vec![7u8; 4 << 20];
        q.push_copy(&big);
        q.push_shared(Rc::from(&b"tail"[..]));
        assert_eq!(q.flush(&fd).unwrap(), Flushed::Blocked);
        assert!(!q.is_empty() && q.len() < big.len() + 4);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while got.len() < big.len() + 4 {
            let n = std::io::Read::read(&mut peer, &mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            q.flush(&fd).unwrap();
        }
        assert!(q.is_empty());
        assert_eq!(&got[..big.len()], &big[..]);
        assert_eq!(&got[big.len()..], b"tail");
    }
}
