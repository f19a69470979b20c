//! TCP echo (RFC 862) over real sockets: every byte comes back, unchanged,
//! in order, and a half-close gets everything owed before the FIN.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::thread;

use common::*;

#[test]
fn four_mib_of_random_bytes_echo_byte_exact() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let data = random_bytes(4 << 20, 1);
    let mut writer = connect(server.addr());
    let mut reader = writer.try_clone().unwrap();
    let got = with_timeout("4 MiB echo", move || {
        let expected = data.clone();
        // Write and read at once: neither side's buffers could hold 4 MiB.
        let w = thread::spawn(move || {
            for chunk in data.chunks(100_000) {
                writer.write_all(chunk).unwrap();
            }
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        w.join().unwrap();
        (got, expected)
    });
    let (got, expected) = got;
    assert_eq!(got.len(), expected.len(), "byte count");
    let first_diff = got.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "first differing byte");
}

#[test]
fn binary_bytes_come_back_unchanged() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let mut s = connect(server.addr());
    // NUL bytes, invalid UTF-8, a lone CR, and no newline anywhere.
    let data: &[u8] = b"\0\0a\xff\xfe\xc3\x28\0\xed\xa0\x80\rz\0";
    assert_echo(&mut s, data);
    let every_byte: Vec<u8> = (0..=255u8).rev().collect();
    assert_echo(&mut s, &every_byte);
    assert_echo(&mut s, b"\0");
    // Nothing extra: after the half-close, EOF with no bytes in between.
    assert_eq!(shutdown_and_read_all(&mut s), b"");
}

#[test]
fn half_close_gets_everything_then_eof() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let data = random_bytes(300_000, 2);
    let mut s = connect(server.addr());
    let (got, data) = with_timeout("half-close", move || {
        // All 300 KB go out before a single byte is read back.
        s.write_all(&data).unwrap();
        (shutdown_and_read_all(&mut s), data)
    });
    assert_eq!(got.len(), data.len(), "bytes before EOF");
    assert!(got == data, "echo differs from what was sent");
}

#[test]
fn five_hundred_concurrent_clients_get_their_own_bytes() {
    const CLIENTS: usize = 500;
    const THREADS: usize = 10;
    const SIZE: usize = 3000;
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    // Every client is connected before any of them speaks.
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| connect(server.addr())).collect();
    let mut groups: Vec<Vec<(usize, _)>> = (0..THREADS).map(|_| Vec::new()).collect();
    for (id, s) in clients.drain(..).enumerate() {
        groups[id % THREADS].push((id, s));
    }
    with_timeout("500 clients", move || {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|mut group| {
                thread::spawn(move || {
                    let payload = |id: usize| {
                        let mut p = random_bytes(SIZE, 1000 + id as u64);
                        p[..8].copy_from_slice(&(id as u64).to_be_bytes());
                        p
                    };
                    // Two halves each, interleaved across the group, so the
                    // server has many connections mid-message at once.
                    for half in 0..2 {
                        for (id, s) in &mut group {
                            let p = payload(*id);
                            let part = &p[half * SIZE / 2..(half + 1) * SIZE / 2];
                            s.write_all(part).unwrap();
                        }
                    }
                    for (id, s) in &mut group {
                        let got = read_n(s, SIZE);
                        assert!(got == payload(*id), "client {id} got bytes not its own");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[test]
fn ipv6_loopback_listener_echoes() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("note: no IPv6 loopback on this machine; IPv6 test skipped");
        return;
    }
    let server = Server::start(&["--tcp", "127.0.0.1:0", "--tcp", "[::1]:0"]);
    assert_eq!(server.tcp.len(), 2);
    assert!(server.tcp[0].is_ipv4(), "{:?}", server.tcp);
    assert!(server.tcp[1].is_ipv6(), "{:?}", server.tcp);
    assert_eq!(server.tcp[1].ip().to_string(), "::1");
    for addr in &server.tcp {
        let mut s = connect(*addr);
        assert_echo(&mut s, format!("hello over {addr}\n").as_bytes());
        assert_echo(&mut s, &random_bytes(100_000, 3));
    }
}
