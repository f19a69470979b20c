//! The kernel floor for side-by-side measurements: a blocking echo server
//! with one thread per connection and no event loop at all (std only).
//!
//! ```text
//! cargo run --release --example baseline_blocking_echo -- 127.0.0.1:7001
//! ```
//!
//! Each message costs one blocking `recv` and one `send`, and whatever the
//! scheduler charges to wake the thread: what is left once the readiness
//! machinery is taken away. Prints `listening on tcp://ADDR` to stderr.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7001".to_string());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("listening on tcp://{}", listener.local_addr()?);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || echo(stream));
            }
            Err(e) => eprintln!("accept: {e}"),
        }
    }
    Ok(())
}

/// Reads and writes back until the client closes.
fn echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}
