//! One client connection: its socket, what the server still owes it, and
//! the few bits of state the edge-triggered loop must remember.
//!
//! Edge-triggered epoll reports a change once, so the connection remembers
//! what the last edge said until the server has acted on all of it:
//! `readable` until a read comes back short or `EAGAIN`, `writable` until a
//! write comes back `EAGAIN`.
//!
//! Whether the bytes travel in the clear or inside TLS is the
//! [`Transport`]'s business; the connection only asks it to read, write,
//! flush and close. What is owed waits in an [`OutQueue`] (`crate::queue`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::queue::{Flushed, OutQueue, Turn};
use crate::transport::{Input, Transport};

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
    /// What the server still owes the client (plaintext).
    pub out: OutQueue,
    /// Plain TCP or TLS.
    pub transport: Transport,
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
    /// `shutdown(SHUT_WR)` was sent: the connection only waits until
    /// closing it can no longer destroy bytes still in flight.
    pub fin_sent: bool,
    /// A re-check of that is on the timer heap.
    pub recheck: bool,
    /// Re-checks so far: each waits twice as long as the one before.
    pub rechecks: u8,
    /// Over `--max-rate`: not read from until its timer entry comes.
    pub paused: bool,
}

impl Conn {
    /// A freshly accepted connection, about to be registered.
    ///
    /// Not `readable`: `EPOLL_CTL_ADD` reports the socket's state at that
    /// moment, edge-triggered or not (the kernel polls the file as it adds
    /// it), so bytes that arrived before registration, even before
    /// `accept4`, come as the first event's `EPOLLIN`, and the ones after
    /// as an edge. Assuming readable would cost a `recv` that returns
    /// `EAGAIN` for every client that has not spoken yet, one syscall per
    /// accept. `writable`, because a new socket's send buffer is empty: the
    /// chat `HELLO` goes out at once, and a `send` that finds it full
    /// clears the bit.
    pub fn new(fd: OwnedFd, gen: u32, transport: Transport) -> Conn {
        Conn {
            fd,
            gen,
            out: OutQueue::default(),
            transport,
            phase: Phase::Open,
            readable: false,
            writable: true,
            peer_fin: false,
            read_closed: false,
            fin_sent: false,
            recheck: false,
            rechecks: 0,
            paused: false,
            queued: false,
            dirty: false,
            cut: false,
        }
    }

    /// Whether the server should read now: the client has something to say
    /// (an edge not yet drained, or decrypted bytes held by TLS), and the
    /// server owes it no more than `max_output` (backpressure).
    #[inline]
    pub fn wants_read(&self, max_output: usize) -> bool {
        (self.readable || self.transport.pending())
            && !self.read_closed
            && self.owed() <= max_output
    }

    /// What the client is owed, as counted against `--max-output`: the
    /// queue's cost (see [`OutQueue::cost`]) plus what TLS has not sent yet.
    #[inline]
    pub fn owed(&self) -> usize {
        self.out.cost() + self.transport.in_flight()
    }

    /// Reads what the client sent into `buf`; 0 means nothing more for now
    /// (and `read_closed` says whether the client is done).
    #[inline]
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.fd.as_fd();
        match self
            .transport
            .read(fd, buf, &mut self.readable, self.peer_fin)?
        {
            Input::Data(n) => Ok(n),
            Input::Nothing => Ok(0),
            Input::Eof => {
                self.read_closed = true;
                self.readable = false;
                Ok(0)
            }
        }
    }

    /// Sends `data` now if nothing is queued ahead of it, and queues what the
    /// socket did not take. Order is kept: queued bytes always go first.
    #[inline]
    pub fn send_or_queue(&mut self, data: &[u8]) -> io::Result<()> {
        let fd = self.fd.as_fd();
        self.transport
            .write(fd, &mut self.out, data, &mut self.writable)
    }

    /// Flushes what is owed (its own buffer, then its lines of `turn`) if
    /// the socket may take more; once closing and nothing else is owed, TLS
    /// sends `close_notify`.
    #[inline]
    pub fn flush(&mut self, turn: &Turn) -> io::Result<()> {
        if !self.writable {
            return Ok(());
        }
        let closing = self.phase == Phase::Closing;
        let work = !self.out.is_empty()
            || match &self.transport {
                Transport::Plain => false,
                Transport::Tls(t) => t.wants_write() || (closing && !t.closed()),
            };
        if work {
            let fd = self.fd.as_fd();
            if self.transport.flush(fd, &mut self.out, turn, closing)? == Flushed::Blocked {
                self.writable = false;
            }
        }
        Ok(())
    }

    /// True when the connection has finished: closing, nothing owed, and
    /// (for TLS) `close_notify` sent.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Closing
            && self.out.is_empty()
            && !self.transport.wants_write()
            && self.transport.closed()
    }
}
