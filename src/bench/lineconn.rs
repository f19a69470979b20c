//! One client connection that a server talks to in lines (plain or TLS,
//! through its [`Link`]): reads until `EAGAIN`, lines cut across reads
//! joined again, and the first `HELLO` noticed. With `--proto redis` or
//! `nats` the same connection reads that protocol's frames instead
//! ([`super::pubsub`]): each message's payload goes where a line would, and
//! the reply that shows it is subscribed counts as its `HELLO`.

use std::io;

use super::deframe;
use super::link::Link;
use super::pubsub::{self, Effects, Proto};
use crate::transport::Input;

/// The longest unfinished line kept between reads (a frame: at least).
const MAX_CARRY: usize = 64 * 1024;

/// One connection that the server talks to in lines.
pub struct LineConn {
    pub link: Link,
    /// The unfinished last line (or frame) of the reads so far.
    carry: Vec<u8>,
    /// The first `HELLO` line has arrived (Redis, NATS: the connection is
    /// ready, its subscription registered).
    pub hello: bool,
    proto: Proto,
    /// What this connection owes the server apart from a sender's lines:
    /// its greeting (`SUBSCRIBE`, `CONNECT` ...), a `PONG`.
    pub owed: Vec<u8>,
    /// The longest unfinished line or frame kept between reads.
    max: usize,
}

/// Hands one line (its `\r\n` or `\n` removed) to `f`, except the first
/// `HELLO`, which only sets `hello`.
fn deliver(hello: &mut bool, line: &[u8], f: &mut impl FnMut(&[u8])) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !*hello && line.starts_with(b"HELLO ") {
        *hello = true;
        return;
    }
    f(line);
}

impl LineConn {
    pub(super) fn new(link: Link) -> LineConn {
        LineConn::speaking(link, Proto::Edgechat, Vec::new(), MAX_CARRY)
    }

    /// A connection that speaks `proto`, owes the server `greeting`, and
    /// keeps at most `max` bytes of an unfinished frame (at least 64 KiB).
    pub(super) fn speaking(link: Link, proto: Proto, greeting: Vec<u8>, max: usize) -> LineConn {
        LineConn {
            link,
            carry: Vec::new(),
            hello: false,
            proto,
            owed: greeting,
            max: max.max(MAX_CARRY),
        }
    }

    /// The protocol this connection speaks.
    pub(super) fn proto(&self) -> Proto {
        self.proto
    }

    /// Sends what the socket takes of what is owed ([`LineConn::owed`]).
    pub(super) fn flush_owed(&mut self) -> io::Result<()> {
        if !self.owed.is_empty() {
            let n = self.link.send(&self.owed)?;
            self.owed.drain(..n);
        }
        Ok(())
    }

    /// Reads until the socket is drained, handing every complete line to
    /// `f`. Returns false once the server has closed the connection.
    pub(super) fn read_lines(
        &mut self,
        buf: &mut [u8],
        f: &mut impl FnMut(&[u8]),
    ) -> io::Result<bool> {
        loop {
            match self.link.next_input(buf)? {
                Input::Data(n) => self.split(&buf[..n], f)?,
                Input::Nothing => return Ok(true),
                Input::Eof => return Ok(false),
            }
        }
    }

    /// One read at most (a slow reader): every line it completes goes to
    /// `f`. Returns false once the server has closed the connection.
    pub(super) fn read_once(
        &mut self,
        buf: &mut [u8],
        f: &mut impl FnMut(&[u8]),
    ) -> io::Result<bool> {
        match self.link.next_input(buf)? {
            Input::Data(n) => self.split(&buf[..n], f).map(|()| true),
            Input::Nothing => Ok(true),
            Input::Eof => Ok(false),
        }
    }

    /// Cuts `data` into lines (or frames), joining the unfinished one from
    /// before.
    fn split(&mut self, data: &[u8], f: &mut impl FnMut(&[u8])) -> io::Result<()> {
        let frame = match self.proto {
            Proto::Edgechat => return self.split_lines(data, f),
            Proto::Redis => pubsub::redis_frame,
            Proto::Nats => pubsub::nats_frame,
        };
        let (ready, owed) = (&mut self.hello, &mut self.owed);
        deframe::feed(&mut self.carry, data, self.max, &mut |buf: &[u8]| {
            let fx = Effects {
                ready: &mut *ready,
                owed: &mut *owed,
                payload: &mut *f,
            };
            frame(buf, fx)
        })
    }

    /// Cuts `data` into lines, joining the unfinished one from before.
    fn split_lines(&mut self, mut data: &[u8], f: &mut impl FnMut(&[u8])) -> io::Result<()> {
        let newline = |d: &[u8]| d.iter().position(|&b| b == b'\n');
        if !self.carry.is_empty() {
            let Some(i) = newline(data) else {
                return self.keep(data);
            };
            self.carry.extend_from_slice(&data[..i]);
            deliver(&mut self.hello, &self.carry, f);
            self.carry.clear(); // keeps its capacity for the next one
            data = &data[i + 1..];
        }
        while let Some(i) = newline(data) {
            deliver(&mut self.hello, &data[..i], f);
            data = &data[i + 1..];
        }
        self.keep(data)
    }

    fn keep(&mut self, partial: &[u8]) -> io::Result<()> {
        self.carry.extend_from_slice(partial);
        if self.carry.len() > self.max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a line longer than 64 KiB",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Transport;
    use std::io::Write;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    fn conn() -> (LineConn, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let link = Link {
            fd: OwnedFd::from(a),
            transport: Transport::Plain,
            readable: true,
            writable: true,
            peer_fin: false,
        };
        (LineConn::new(link), b)
    }

    fn lines(c: &mut LineConn, buf: &mut [u8]) -> Vec<String> {
        let mut got = Vec::new();
        c.link.readable = true;
        let open = c
            .read_lines(buf, &mut |l: &[u8]| {
                got.push(String::from_utf8_lossy(l).into_owned())
            })
            .unwrap();
        assert!(open);
        got
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let (mut c, mut peer) = conn();
        peer.write_all(b"HELLO guest1 lobby\nJOIN gue").unwrap();
        let mut buf = [0u8; 8]; // smaller than a line
        assert!(lines(&mut c, &mut buf).is_empty());
        assert!(c.hello);
        peer.write_all(b"st2\r\nMSG a 1 2 3\nHELLO x y\n").unwrap();
        assert_eq!(
            lines(&mut c, &mut buf),
            ["JOIN guest2", "MSG a 1 2 3", "HELLO x y"],
            "only the first HELLO is taken"
        );
    }

    #[test]
    fn close_and_overlong_lines_are_reported() {
        let (mut c, mut peer) = conn();
        peer.write_all(&vec![b'x'; MAX_CARRY + 1]).unwrap();
        c.link.readable = true;
        let err = c.read_lines(&mut [0u8; 4096], &mut |_: &[u8]| {});
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::InvalidData);
        drop(peer);
        c.link.readable = true;
        c.carry.clear();
        assert!(!c.read_lines(&mut [0u8; 4096], &mut |_: &[u8]| {}).unwrap());
    }
}
