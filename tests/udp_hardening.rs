//! What the UDP echo refuses to answer, over real sockets: datagrams from
//! the echo and chargen ports (a loop between two servers), a source over
//! `--udp-rate` (while another source is served in full), datagrams over
//! `--max-datagram` (dropped whole, logged, never echoed cut short); the
//! counts in the SIGUSR1 stats line and chat `/stats`; and the flags'
//! bounds.
//!
//! "No answer" is made sound by order: the server reads one socket's
//! datagrams in the order they arrived, so once a datagram sent *after*
//! the refused one has been answered, the refused one has been handled,
//! and a nonblocking read on its sender finding nothing means no answer.

mod chatkit;
mod common;

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Instant;

use common::*;

/// A UDP socket bound to `ip:port`, reads bounded by [`TIMEOUT`].
fn bind(ip: IpAddr, port: u16) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind(SocketAddr::new(ip, port))?;
    s.set_read_timeout(Some(TIMEOUT))?;
    Ok(s)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The next datagram on `s` (blocking, bounded by [`TIMEOUT`]).
fn recv(s: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = s.recv(&mut buf).expect("recv(2): an answer");
    buf.truncate(n);
    buf
}

/// Asserts nothing is waiting on `s` now.
fn assert_no_answer(s: &UdpSocket, what: &str) {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    match s.recv(&mut buf) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Ok(n) => panic!("{what}: answered with {n} bytes"),
        Err(e) => panic!("{what}: recv(2): {e}"),
    }
    s.set_nonblocking(false).unwrap();
}

/// Sockets bound to source ports 7 and 19 on IPv4 loopback, else IPv6.
fn service_port_sockets() -> Option<(IpAddr, UdpSocket, UdpSocket)> {
    for host in [ip("127.0.0.1"), ip("::1")] {
        match (bind(host, 7), bind(host, 19)) {
            (Ok(echo), Ok(chargen)) => return Some((host, echo, chargen)),
            (Err(e), _) | (_, Err(e)) => eprintln!("note: cannot bind {host} ports 7 and 19: {e}"),
        }
    }
    None
}

#[test]
fn datagrams_from_the_echo_and_chargen_ports_get_no_answer() {
    let Some((host, echo, chargen)) = service_port_sockets() else {
        eprintln!("note: ports 7 and 19 taken on 127.0.0.1 and ::1; test skipped");
        return;
    };
    let listen = SocketAddr::new(host, 0).to_string();
    let server = Server::start(&["--udp", &listen, "--log-level", "debug"]);
    let to = server.udp[0];
    let plain = bind(host, 0).unwrap();
    for (port, refused) in [(7, &echo), (19, &chargen)] {
        refused.send_to(b"would loop", to).unwrap();
        let probe = format!("after port {port}");
        plain.send_to(probe.as_bytes(), to).unwrap();
        assert_eq!(
            recv(&plain),
            probe.as_bytes(),
            "an ordinary port is answered"
        );
        assert_no_answer(refused, &format!("a datagram from port {port}"));
    }
    let line = server.stats();
    assert_eq!(count(&line, "udp_bad_port"), 2, "{line}");
    assert_eq!(count(&line, "udp_echoed"), 2, "{line}");
    let from = SocketAddr::new(host, 7);
    let log = server.log();
    assert!(
        log.contains(&format!(
            "DEBUG udp {from}: no answer, echo answers every datagram"
        )),
        "no debug line for port 7:\n{log}"
    );
}

#[test]
fn a_source_over_the_rate_is_dropped_and_another_source_is_not() {
    let server = Server::start(&["--udp", "127.0.0.1:0", "--udp-rate", "10"]);
    let to = server.udp[0];
    let flood = bind(ip("127.0.0.1"), 0).unwrap();
    let other = bind(ip("127.0.0.2"), 0).expect("127.0.0.2 is loopback too on Linux");
    let start = Instant::now();
    for i in 0..100u8 {
        flood.send_to(&[b'f', i], to).unwrap();
    }
    // The other source sends after the flood: its answers come after
    // every flood datagram has been handled, and its bucket is its own.
    for i in 0..10u8 {
        other.send_to(&[b'o', i], to).unwrap();
    }
    for i in 0..10u8 {
        assert_eq!(recv(&other), [b'o', i], "the other source lost an answer");
    }
    let elapsed = start.elapsed().as_secs_f64();
    flood.set_nonblocking(true).unwrap();
    let mut answered = 0u64;
    let mut buf = [0u8; 64];
    while let Ok(n) = flood.recv(&mut buf) {
        assert_eq!(n, 2);
        assert_eq!(buf[0], b'f');
        answered += 1;
    }
    // A burst of 10, plus one more per 100 ms the test took.
    let bound = 10 + (10.0 * elapsed).ceil() as u64;
    assert!(
        (10..=bound).contains(&answered),
        "{answered} answers to 100 datagrams at --udp-rate 10 in {elapsed:.3} s"
    );
    let line = server.stats();
    assert_eq!(count(&line, "udp_over_rate"), 100 - answered, "{line}");
    assert_eq!(count(&line, "udp_echoed"), answered + 10, "{line}");
}

#[test]
fn a_datagram_over_max_datagram_is_dropped_whole_and_logged() {
    let server = Server::start(&["--udp", "127.0.0.1:0", "--max-datagram", "512"]);
    let sock = bind(ip("127.0.0.1"), 0).unwrap();
    sock.connect(server.udp[0]).unwrap();
    let me = sock.local_addr().unwrap();
    sock.send(&random_bytes(1000, 1)).unwrap();
    sock.send(&random_bytes(513, 2)).unwrap();
    let fits = random_bytes(512, 3);
    sock.send(&fits).unwrap();
    assert!(
        recv(&sock) == fits,
        "the 512-byte datagram came back changed"
    );
    assert_no_answer(&sock, "the datagrams over 512 bytes");
    let want = format!("WARN udp {me}: 1000-byte datagram over --max-datagram 512: not echoed");
    wait_until("the warning naming the datagram", || {
        server.log().contains(&want)
    });
    let line = server.stats();
    assert_eq!(count(&line, "udp_truncated"), 2, "{line}");
    assert_eq!(count(&line, "udp_echoed"), 1, "{line}");
}

#[test]
fn rate_zero_means_no_limit() {
    let server = Server::start(&["--udp", "127.0.0.1:0", "--udp-rate", "0"]);
    let sock = bind(ip("127.0.0.1"), 0).unwrap();
    sock.connect(server.udp[0]).unwrap();
    for i in 0..50u8 {
        sock.send(&[i]).unwrap();
        assert_eq!(recv(&sock), [i]);
    }
}

#[test]
fn the_largest_ipv6_datagram_is_echoed_with_max_datagram_65527() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("note: no IPv6 loopback on this machine; test skipped");
        return;
    }
    let server = Server::start(&["--udp", "[::1]:0", "--max-datagram", "65527"]);
    let sock = bind(ip("::1"), 0).unwrap();
    sock.connect(server.udp[0]).unwrap();
    let data = random_bytes(65_527, 4);
    sock.send(&data).unwrap();
    let got = recv(&sock);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the 65527-byte datagram came back changed");
}

#[test]
fn udp_flags_out_of_bounds_are_refused_naming_the_flag() {
    for (flag, value, want) in [
        (
            "--max-datagram",
            "0",
            "--max-datagram must be 1 to 65527 bytes, not 0",
        ),
        (
            "--max-datagram",
            "65528",
            "--max-datagram must be 1 to 65527 bytes",
        ),
        (
            "--udp-rate",
            "1000001",
            "--udp-rate must be at most 1000000",
        ),
    ] {
        let (status, stderr) = run_to_exit(&["--udp", "127.0.0.1:0", flag, value]);
        assert_eq!(status.code(), Some(1), "{flag} {value}: {stderr}");
        assert!(stderr.contains(want), "{flag} {value}: {stderr}");
    }
}

#[test]
fn chat_stats_show_the_udp_counts() {
    let server = Server::start_mode(
        "chat",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--max-datagram",
            "100",
        ],
    );
    let sock = bind(ip("127.0.0.1"), 0).unwrap();
    sock.connect(server.udp[0]).unwrap();
    sock.send(&[0u8; 101]).unwrap();
    sock.send(b"fits").unwrap();
    assert_eq!(recv(&sock), b"fits");
    let mut chat = chatkit::Client::connect(server.addr());
    assert!(chat.line().starts_with("HELLO "));
    chat.send("/stats");
    let line = chat.line();
    assert!(line.starts_with("STATS "), "{line}");
    assert_eq!(count(&line, "udp_truncated"), 1, "{line}");
    assert_eq!(count(&line, "udp_echoed"), 1, "{line}");
    assert_eq!(count(&line, "udp_bad_port"), 0, "{line}");
    assert_eq!(count(&line, "udp_over_rate"), 0, "{line}");
}
