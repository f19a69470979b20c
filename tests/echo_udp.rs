//! UDP echo: every datagram comes back to its sender as one datagram with
//! the same bytes, up to the largest an IPv4 UDP datagram can carry.

mod common;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;

/// Sends `data` and returns the one datagram that comes back. Loopback
/// rarely drops a datagram, but UDP may: a lost one is sent again, a few
/// times, before the test gives up.
fn round_trip(sock: &UdpSocket, data: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    for _ in 0..5 {
        assert_eq!(sock.send(data).expect("send(2)"), data.len());
        match sock.recv(&mut buf) {
            Ok(n) => return buf[..n].to_vec(),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("recv(2): {e}"),
        }
    }
    panic!("no echo of a {}-byte datagram after 5 tries", data.len());
}

fn client(server: SocketAddr) -> UdpSocket {
    let local = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let sock = UdpSocket::bind(local).unwrap();
    sock.connect(server).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock
}

#[test]
fn datagrams_of_every_size_come_back_whole() {
    let server = Server::start(&["--udp", "127.0.0.1:0"]);
    let sock = client(server.udp[0]);
    for (i, size) in [1usize, 1400, 9000, 65_507].into_iter().enumerate() {
        let data = random_bytes(size, 10 + i as u64);
        let got = round_trip(&sock, &data);
        assert_eq!(
            got.len(),
            size,
            "a {size}-byte datagram came back as one of {}",
            got.len()
        );
        assert!(got == data, "the {size}-byte datagram came back changed");
    }
}

#[test]
fn datagrams_go_back_to_their_own_sender() {
    let server = Server::start(&["--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0"]);
    let socks: Vec<UdpSocket> = (0..4).map(|_| client(server.udp[0])).collect();
    for round in 0..3u8 {
        for (i, s) in socks.iter().enumerate() {
            let data = [b'u', i as u8, round, 0, 0xff];
            assert_eq!(round_trip(s, &data), data);
        }
    }
    // The TCP listener next to it still echoes too.
    assert_echo(&mut connect(server.addr()), b"tcp too");
}

#[test]
fn ipv6_udp_echoes() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("note: no IPv6 loopback on this machine; IPv6 UDP test skipped");
        return;
    }
    let server = Server::start(&["--udp", "[::1]:0"]);
    assert!(server.udp[0].is_ipv6());
    let sock = client(server.udp[0]);
    let data = random_bytes(9000, 20);
    assert_eq!(round_trip(&sock, &data), data);
}

/// UDP listeners echo in every mode, chat included, beside the chat
/// service on TCP.
#[test]
fn udp_echoes_in_chat_mode_too() {
    let server = Server::start_mode("chat", &["--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"]);
    let sock = client(server.udp[0]);
    let data = random_bytes(1400, 99);
    assert!(
        round_trip(&sock, &data) == data,
        "datagram came back changed"
    );
    // The TCP side is chat: it greets, it does not echo.
    let mut tcp = connect(server.addr());
    let mut hello = [0u8; 6];
    std::io::Read::read_exact(&mut tcp, &mut hello).expect("HELLO");
    assert_eq!(&hello, b"HELLO ");
}
