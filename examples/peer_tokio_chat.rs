//! The chat peer edgechat is compared against: the shape of tokio's own
//! chat example (`examples/chat.rs` in the tokio repository) on a
//! `current_thread` runtime: a map of one unbounded mpsc sender per client,
//! `Framed<TcpStream, LinesCodec>` per connection, and a broadcast that
//! hands every other client its own `String` of the message.
//!
//! It speaks just enough of edgechat's protocol for `edgechat bench --mode
//! chat`: `HELLO guest<N> lobby` on connect, and `MSG guest<N> <text>` to
//! everyone else for each line.
//!
//! `cargo run --release --example peer_tokio_chat -- 127.0.0.1:7002`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LinesCodec};

type Tx = mpsc::UnboundedSender<String>;

/// Every connected client's sender, as in the tokio example.
#[derive(Default)]
struct Shared {
    peers: HashMap<SocketAddr, Tx>,
    next_guest: u64,
}

impl Shared {
    fn broadcast(&mut self, sender: SocketAddr, message: &str) {
        for (addr, tx) in self.peers.iter_mut() {
            if *addr != sender {
                let _ = tx.send(message.into());
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7002".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on tcp://{}", listener.local_addr()?);
    let state = Arc::new(Mutex::new(Shared::default()));
    loop {
        let (stream, peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _ = serve(state, stream, peer).await;
        });
    }
}

async fn serve(
    state: Arc<Mutex<Shared>>,
    stream: TcpStream,
    addr: SocketAddr,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(4096));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let nick = {
        let mut s = state.lock().map_err(|_| "poisoned")?;
        s.next_guest += 1;
        s.peers.insert(addr, tx);
        format!("guest{}", s.next_guest)
    };
    lines.send(format!("HELLO {nick} lobby")).await?;
    loop {
        tokio::select! {
            Some(msg) = rx.recv() => lines.send(&msg).await?,
            result = lines.next() => match result {
                Some(Ok(msg)) => {
                    let line = format!("MSG {nick} {msg}");
                    state.lock().map_err(|_| "poisoned")?.broadcast(addr, &line);
                }
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
        }
    }
    state.lock().map_err(|_| "poisoned")?.peers.remove(&addr);
    Ok(())
}
