//! TLS echo (`--mode echo`): TLS 1.3 and TLS 1.2 each carry 4 MiB back
//! byte-exact, and the server ends with `close_notify` on shutdown.

mod tlskit;

use std::io::{Read, Write};

use tlskit::{Pki, Server, TlsClient};

const TOTAL: usize = 4 << 20;
/// Written before reading back, so the server never owes more than this.
const ROUND: usize = 256 << 10;

fn echo_4mib(version: &'static rustls::SupportedProtocolVersion) {
    let pki = Pki::new("echo CA");
    let srv = Server::start(&pki, &["--mode", "echo"]);
    let mut c = TlsClient::connect_tls(srv.tls, pki.config_with(Some(version), None));
    assert_eq!(
        c.stream().conn.protocol_version(),
        Some(version.version),
        "negotiated version"
    );
    let data: Vec<u8> = (0..TOTAL).map(|i| (i * 7 + i / 4099) as u8).collect();
    let mut back = vec![0u8; TOTAL];
    for (out, inn) in data.chunks(ROUND).zip(back.chunks_mut(ROUND)) {
        c.stream().write_all(out).expect("write");
        c.stream().flush().expect("flush");
        c.stream().read_exact(inn).expect("read back");
    }
    assert!(back == data, "echo differs");
}

#[test]
fn tls13_echoes_4_mib_byte_exact() {
    echo_4mib(&rustls::version::TLS13);
}

#[test]
fn tls12_echoes_4_mib_byte_exact() {
    echo_4mib(&rustls::version::TLS12);
}

#[test]
fn echo_binary_and_close_notify_on_shutdown() {
    let pki = Pki::new("echo CA");
    let mut srv = Server::start(&pki, &["--mode", "echo"]);
    let mut c = TlsClient::connect_tls(srv.tls, pki.client_config());
    let bytes = [0u8, 255, b'\n', 0x1b, b'x'];
    c.raw(&bytes);
    let mut got = [0u8; 5];
    c.stream().read_exact(&mut got).expect("read");
    assert_eq!(got, bytes);
    srv.signal(libc::SIGTERM);
    c.expect_close_notify();
    assert_eq!(srv.wait_exit(), 0);
}

#[test]
fn sessions_resume_with_tickets_on_tls13_and_tls12() {
    let pki = Pki::new("resume CA");
    let srv = Server::start(&pki, &["--mode", "echo"]);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = pki.config_with(Some(version), None);
        for want in [rustls::HandshakeKind::Full, rustls::HandshakeKind::Resumed] {
            let mut c = TlsClient::connect_tls(srv.tls, config.clone());
            // A round trip, so the TLS 1.3 tickets sent after the handshake
            // have arrived before the next connection.
            c.raw(b"ping");
            let mut got = [0u8; 4];
            c.stream().read_exact(&mut got).expect("read");
            assert_eq!(c.stream().conn.handshake_kind(), Some(want), "{version:?}");
        }
    }
}

#[test]
fn half_close_gets_everything_owed_then_close_notify() {
    let pki = Pki::new("echo CA");
    let srv = Server::start(&pki, &["--mode", "echo"]);
    let mut c = TlsClient::connect_tls(srv.tls, pki.client_config());
    let data: Vec<u8> = (0..512 * 1024).map(|i| (i % 253) as u8).collect();
    c.raw(&data);
    // close_notify then FIN: the client sends nothing more.
    c.stream().conn.send_close_notify();
    c.stream().flush().expect("flush");
    while c.stream().conn.wants_write() {
        let s = c.stream();
        s.conn.write_tls(&mut s.sock).expect("write_tls");
    }
    c.stream()
        .sock
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let mut back = Vec::new();
    c.r.read_to_end(&mut back)
        .expect("everything, then close_notify");
    assert!(back == data, "got {} of {} bytes", back.len(), data.len());
}

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace()
        .nth(1)
        .expect("kB")
        .parse()
        .expect("number")
}

#[test]
fn a_client_that_never_reads_is_held_back_and_others_are_served() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let pki = Pki::new("echo CA");
    let srv = Server::start(&pki, &["--mode", "echo", "--max-output", "65536"]);
    let mut hog = TlsClient::connect_tls(srv.tls, pki.client_config());
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        let chunk = vec![b'h'; 64 << 10];
        for _ in 0..(64 << 20) / chunk.len() {
            if hog.stream().write_all(&chunk).is_err() {
                return;
            }
            counter.fetch_add(chunk.len(), Ordering::Relaxed);
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let held = sent.load(Ordering::Relaxed);
    assert!(
        held < 32 << 20,
        "the server kept reading: {held} bytes taken"
    );
    assert!(rss_kib(srv.child.id()) < 64 * 1024, "server memory grew");
    let mut other = TlsClient::connect_tls(srv.tls, pki.client_config());
    other.raw(b"still served");
    let mut got = [0u8; 12];
    other.stream().read_exact(&mut got).expect("read");
    assert_eq!(&got, b"still served");
}
