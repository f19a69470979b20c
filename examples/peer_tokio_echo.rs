//! Peer for side-by-side measurements: the classic tokio echo server on a
//! `current_thread` runtime, one task per connection, a 64 KiB buffer each.
//!
//! ```text
//! cargo run --release --example peer_tokio_echo -- 127.0.0.1:7001
//! ```
//!
//! It is kept as small as tokio's own echo example so that it measures the
//! runtime, not clever code. Prints `listening on tcp://ADDR` to stderr.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7001".to_string());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on tcp://{}", listener.local_addr()?);
    loop {
        let (mut socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if socket.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}
