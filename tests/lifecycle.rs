//! Start-up and shutdown: exit codes, the graceful flush on SIGTERM, the
//! second signal that cuts a stuck shutdown short, and a clear error when
//! the address is taken.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use common::*;

#[test]
fn sigterm_exits_zero() {
    let mut server = Server::start(&["--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"]);
    assert_echo(&mut connect(server.addr()), b"up");
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(0), "exit status");
}

#[test]
fn sigint_exits_zero() {
    let mut server = Server::start(&["--tcp", "127.0.0.1:0"]);
    server.signal(Signal::SIGINT);
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(0), "exit status");
}

#[test]
fn sigterm_flushes_what_is_owed_then_eof() {
    const OWED: usize = 1 << 20;
    let mut server = Server::start(&["--tcp", "127.0.0.1:0", "--max-output", "1048576"]);
    let mut client = connect_small_rcvbuf(server.addr(), 4096);
    let local: SocketAddr = client.local_addr().unwrap();
    let data = random_bytes(OWED, 60);
    // No more than --max-output, so the server reads all of it even though
    // the client reads nothing back yet.
    client.write_all(&data).unwrap();
    // Until every byte is acknowledged by the server's kernel and read by
    // the server: what it has not read yet, it does not owe.
    wait_until("the server has read everything sent", || {
        let ours = tcp_queues(local, server.addr());
        let theirs = tcp_queues(server.addr(), local);
        matches!((ours, theirs), (Some(o), Some(t)) if o.tx == 0 && t.rx == 0)
    });
    server.signal(Signal::SIGTERM);
    let got = with_timeout("read what is owed", move || {
        let mut got = Vec::new();
        // EOF from the server: read_to_end returns only once it arrives.
        std::io::Read::read_to_end(&mut client, &mut got).unwrap();
        got
    });
    assert_eq!(got.len(), data.len(), "bytes received before EOF");
    assert!(got == data, "bytes received differ from what was sent");
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(0), "exit status");
}

#[test]
fn second_sigterm_cuts_a_stuck_shutdown() {
    let mut server = Server::start(&[
        "--tcp",
        "127.0.0.1:0",
        "--max-output",
        "1048576",
        "--shutdown-timeout",
        "600",
    ]);
    // A client that is owed more than a megabyte and never reads it.
    let mut stuck = connect_small_rcvbuf(server.addr(), 4096);
    let data = random_bytes(32 << 20, 61);
    push_until_stalled(&mut stuck, &data, Duration::from_millis(300));

    server.signal(Signal::SIGTERM);
    wait_until("the server logs that it is shutting down", || {
        server.log().contains("shutting down")
    });
    std::thread::sleep(Duration::from_millis(200));
    server.assert_alive(); // still flushing to a client that never reads

    let sent = Instant::now();
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(TIMEOUT);
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    assert_eq!(status.code(), Some(0), "exit status");
    drop(stuck);
}

#[test]
fn tcp_address_in_use_exits_one_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, stderr) = run_to_exit(&["--tcp", &addr]);
    assert_eq!(status.code(), Some(1), "exit status; stderr:\n{stderr}");
    let want = format!("listen tcp://{addr}: ");
    assert!(stderr.contains(&want), "stderr lacks {want:?}:\n{stderr}");
    assert!(
        stderr.to_lowercase().contains("in use"),
        "stderr does not say the address is in use:\n{stderr}"
    );
}

#[test]
fn udp_address_in_use_exits_one_naming_it() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, stderr) = run_to_exit(&["--tcp", "127.0.0.1:0", "--udp", &addr]);
    assert_eq!(status.code(), Some(1), "exit status; stderr:\n{stderr}");
    let want = format!("listen udp://{addr}: ");
    assert!(stderr.contains(&want), "stderr lacks {want:?}:\n{stderr}");
}

/// Graceful shutdown loses nothing in flight to a client that is still
/// sending: the server's FIN waits behind 200 KB the client has not read
/// yet, and input arriving after a plain `close` would be answered with an
/// RST that throws the unacknowledged tail away. The server keeps the
/// socket (reading and discarding) until the client has acknowledged every
/// byte, and only then closes.
#[test]
fn shutdown_loses_nothing_to_a_client_that_keeps_sending() {
    let mut server = Server::start(&["--tcp", "127.0.0.1:0", "--shutdown-timeout", "20"]);
    let mut c = connect_small_rcvbuf(server.addr(), 4096);
    let data = random_bytes(200_000, 11);
    c.write_all(&data).expect("write");
    let me = c.local_addr().expect("local addr");
    // The server has read it all and handed the echo to its kernel.
    wait_until("the server to read all it was sent", || {
        tcp_queues(server.addr(), me).is_some_and(|q| q.rx == 0 && q.tx > 0)
    });
    let mut trickle = c.try_clone().expect("clone");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let sender = std::thread::spawn(move || {
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            if trickle.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    server.signal(Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(200)); // input keeps arriving meanwhile
    let got = read_until_end(&mut c, data.len() + 4096);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sender.join();
    // Trickled bytes the server read before the signal are echoed too, so
    // the echo is the data followed by nothing but trickled `x`s.
    assert!(
        got.len() >= data.len(),
        "lost the tail of what was owed: {} of {}",
        got.len(),
        data.len()
    );
    assert!(got[..data.len()] == data[..], "echo differs");
    assert!(
        got[data.len()..].iter().all(|&b| b == b'x'),
        "echo has bytes nobody sent"
    );
    assert!(server.wait_exit(Duration::from_secs(20)).success());
}

/// Reads until EOF or a reset, at most `limit` bytes; bounded by TIMEOUT.
fn read_until_end(s: &mut std::net::TcpStream, limit: usize) -> Vec<u8> {
    use std::io::Read;
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while got.len() < limit {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}
