//! The tokio chat peer edgechat's fan-out is compared against: the server a
//! competent engineer would write and deploy with tokio, not a tutorial.
//!
//! Design, on a `current_thread` runtime (edgechat is one thread too):
//!
//! - a reader task per client: a `BufReader` (tokio's default 8 KiB: a
//!   64 KiB one is zeroed, and so resident, for every idle client) over
//!   the read half, lines taken with `read_until(b'\n')` into one reused
//!   `Vec`;
//! - each line is encoded once, as `MSG <nick> <text>\n`, into one
//!   `Rc<[u8]>`; every other member of the room gets a clone of that `Rc`
//!   (a reference count, not a copy or a `String` per recipient; not an
//!   `Arc`, whose atomic count a one-thread runtime pays for nothing: a
//!   profile showed the clone and drop in the top two symbols);
//! - an unbounded mpsc channel per client, and a writer task per client
//!   with a `BufWriter` (64 KiB, allocated but touched only as it fills,
//!   so a burst of 256 lines fits): after `recv().await` it drains
//!   whatever else is queued with `try_recv` and then flushes ONCE, so a
//!   burst of lines costs one `send` per receiver, not one per line;
//! - the room is an `Rc<RefCell<..>>` shared by tasks on a `LocalSet`: no
//!   lock, no atomics beyond the channels' own.
//!
//! Why this is the fair peer: it batches writes the way edgechat does (the
//! lines a read brings become one write per receiver), encodes each line
//! once, and pays nothing a tuned tokio server would not. What it keeps is
//! what tokio is: a task and a channel per client, a wakeup per receiver
//! per burst. It also does less than edgechat per line (no UTF-8 check,
//! no commands, no rate or size limits, no bound on a slow reader's
//! queue), so any gap in edgechat's favour is not from the peer doing more.
//!
//! It speaks edgechat's line protocol as far as `edgechat bench --mode
//! chat` and `--mode idle` use it: `HELLO guest<N> lobby` on connect,
//! `JOIN guest<N>` to the others in the room (edgechat sends it too, so a
//! join storm costs both the same fan-out), every non-empty line relayed
//! as `MSG guest<N> <text>` to everyone else in the room, and `QUIT
//! guest<N>` when a client goes. One room, the lobby; no commands.
//!
//! ```text
//! cargo run --release --example peer_tokio_chat -- 127.0.0.1:7002
//! ```
//!
//! Prints `listening on tcp://ADDR` to stderr.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::LocalSet;

/// One encoded line, shared by every receiver.
type Line = Rc<[u8]>;
type Tx = mpsc::UnboundedSender<Line>;

/// The lobby: each member's id and channel.
#[derive(Default)]
struct Room {
    members: Vec<(u64, Tx)>,
    next_guest: u64,
}

impl Room {
    /// Hands `line` to every member but `from`.
    fn broadcast(&self, from: u64, line: &Line) {
        for (id, tx) in &self.members {
            if *id != from {
                let _ = tx.send(Line::clone(line));
            }
        }
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7002".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    LocalSet::new().block_on(&rt, async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("listening on tcp://{}", listener.local_addr()?);
        let room = Rc::new(RefCell::new(Room::default()));
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::task::spawn_local(serve(Rc::clone(&room), stream));
        }
    })
}

/// One client: joins, relays its lines until EOF or an error, leaves.
async fn serve(room: Rc<RefCell<Room>>, stream: TcpStream) {
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let (id, nick) = {
        let mut r = room.borrow_mut();
        r.next_guest += 1;
        let id = r.next_guest;
        let nick = format!("guest{id}");
        let _ = tx.send(Line::from(format!("HELLO {nick} lobby\n").as_bytes()));
        r.broadcast(id, &Line::from(format!("JOIN {nick}\n").as_bytes()));
        r.members.push((id, tx));
        (id, nick)
    };
    tokio::task::spawn_local(write_out(wr, rx));

    let mut reader = BufReader::new(rd);
    let mut buf = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1024);
    let prefix = format!("MSG {nick} ");
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buf.last() != Some(&b'\n') {
            break; // EOF inside a line: it is dropped
        }
        let mut text = &buf[..buf.len() - 1];
        if let Some(t) = text.strip_suffix(b"\r") {
            text = t;
        }
        if text.is_empty() {
            continue;
        }
        out.clear();
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(text);
        out.push(b'\n');
        room.borrow().broadcast(id, &Line::from(&out[..]));
    }

    let mut r = room.borrow_mut();
    r.members.retain(|(m, _)| *m != id); // drops our sender: the writer ends
    r.broadcast(id, &Line::from(format!("QUIT {nick}\n").as_bytes()));
}

/// Writes what the channel brings: everything queued, then one flush.
async fn write_out(wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Line>) {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    while let Some(line) = rx.recv().await {
        if w.write_all(&line).await.is_err() {
            return;
        }
        while let Ok(line) = rx.try_recv() {
            if w.write_all(&line).await.is_err() {
                return;
            }
        }
        if w.flush().await.is_err() {
            return;
        }
    }
}
