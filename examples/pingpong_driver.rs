//! A minimal load driver for exact counts (instructions, syscalls per
//! message): C connections, exactly N messages in total, one in flight per
//! connection, every echoed byte checked.
//!
//! ```text
//! pingpong_driver ADDR N [CONNS=50] [SIZE=64]
//! ```
//!
//! All connections are opened first; then each one, on its own thread with
//! a blocking socket, claims the next message number, sends SIZE bytes made
//! from that number, and waits for the same bytes back. When N messages are
//! claimed, every connection closes and the driver exits 0. Any error or
//! mismatch exits 1. Speed is not the point here; `edgechat bench` is.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

struct Args {
    addr: SocketAddr,
    count: u64,
    conns: usize,
    size: usize,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1).collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("pingpong_driver: {e}\nusage: pingpong_driver ADDR N [CONNS=50] [SIZE=64]");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(secs) => {
            eprintln!(
                "pingpong_driver: {} messages of {} B over {} connections in {secs:.3} s",
                args.count, args.size, args.conns
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pingpong_driver: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(argv: Vec<String>) -> Result<Args, String> {
    let get = |i: usize, default: &str| argv.get(i).cloned().unwrap_or(default.to_string());
    let bad = |what: &str, v: &str| format!("bad {what}: {v:?}");
    let addr = argv.first().ok_or("missing ADDR")?;
    let count = argv.get(1).ok_or("missing N")?;
    let (conns, size) = (get(2, "50"), get(3, "64"));
    let args = Args {
        addr: addr.parse().map_err(|_| bad("ADDR", addr))?,
        count: count.parse().map_err(|_| bad("N", count))?,
        conns: conns.parse().map_err(|_| bad("CONNS", &conns))?,
        size: size.parse().map_err(|_| bad("SIZE", &size))?,
    };
    if args.conns == 0 || args.size == 0 || argv.len() > 4 {
        return Err("CONNS and SIZE must be at least 1, and there are 4 arguments at most".into());
    }
    Ok(args)
}

/// Connects everything, runs the exchange, closes everything. Returns the
/// seconds the exchange took.
fn run(args: &Args) -> io::Result<f64> {
    let streams = (0..args.conns)
        .map(|_| {
            let s = TcpStream::connect(args.addr)?;
            s.set_nodelay(true)?;
            Ok(s)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let next = AtomicU64::new(0);
    let start = Instant::now();
    thread::scope(|scope| {
        let workers: Vec<_> = streams
            .into_iter()
            .map(|s| scope.spawn(|| pingpong(s, &next, args.count, args.size)))
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().unwrap_or_else(|_| Err(io::Error::other("panic"))))
    })?;
    Ok(start.elapsed().as_secs_f64())
}

/// One connection's share: claim a message number, send, read it all back,
/// compare. Dropping the stream at the end closes the connection.
fn pingpong(mut s: TcpStream, next: &AtomicU64, count: u64, size: usize) -> io::Result<()> {
    let mut out = vec![0u8; size];
    let mut back = vec![0u8; size];
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            return Ok(());
        }
        fill(&mut out, i);
        s.write_all(&out)?;
        s.read_exact(&mut back)?;
        if back != out {
            return Err(io::Error::other(format!("message {i}: echo differs")));
        }
    }
}

/// Message `i`'s bytes: its number, little-endian, repeated and shifted, so
/// a byte from another message or another offset does not compare equal.
fn fill(buf: &mut [u8], i: u64) {
    let seed = i.to_le_bytes();
    for (j, b) in buf.iter_mut().enumerate() {
        *b = seed[j % 8].wrapping_add(j as u8);
    }
}
