//! Peer for side-by-side measurements: an edge-triggered echo server on
//! mio, in the shape of mio's own `tcp_server` example.
//!
//! ```text
//! cargo run --release --example peer_mio_echo -- 127.0.0.1:7001
//! ```
//!
//! Connections live in a `Slab`, registered once for both directions (mio
//! is edge-triggered). On an event: send what is owed, then read into one
//! shared 64 KiB buffer until `WouldBlock`, writing each read straight back
//! and keeping what the socket did not take. Prints `listening on
//! tcp://ADDR` to stderr.

use std::io::{self, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const SERVER: Token = Token(usize::MAX);

/// One client: its socket, and the bytes it is still owed.
struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7001".to_string());
    let addr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut server = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut server, SERVER, Interest::READABLE)?;
    eprintln!("listening on tcp://{}", server.local_addr()?);

    let mut conns: Slab<Conn> = Slab::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == SERVER {
                accept_all(&poll, &server, &mut conns)?;
                continue;
            }
            let key = event.token().0;
            let done = match conns.get_mut(key) {
                Some(conn) => echo(conn, &mut buf).unwrap_or(true),
                None => false, // sporadic events for closed connections
            };
            if done {
                let mut conn = conns.remove(key);
                poll.registry().deregister(&mut conn.stream)?;
            }
        }
    }
}

/// Accepts until `WouldBlock`, registering each connection once.
fn accept_all(poll: &Poll, server: &TcpListener, conns: &mut Slab<Conn>) -> io::Result<()> {
    loop {
        let (mut stream, _) = match server.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        stream.set_nodelay(true)?;
        let entry = conns.vacant_entry();
        poll.registry().register(
            &mut stream,
            Token(entry.key()),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        entry.insert(Conn {
            stream,
            pending: Vec::new(),
        });
    }
}

/// Sends what is owed, then reads and echoes until `WouldBlock`. Stops
/// reading while bytes are owed (backpressure); the next writable event
/// resumes. Returns `true` when the connection is finished.
fn echo(conn: &mut Conn, buf: &mut [u8]) -> io::Result<bool> {
    loop {
        while !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(n) => drop(conn.pending.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let n = match conn.stream.read(buf) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        match conn.stream.write(&buf[..n]) {
            Ok(sent) => conn.pending.extend_from_slice(&buf[sent..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.pending.extend_from_slice(&buf[..n])
            }
            Err(e) => return Err(e),
        }
    }
}
