//! A client's first bytes, sent before the server has even accepted it,
//! are served. A new connection starts not readable (no `recv` just to see
//! `EAGAIN`): `EPOLL_CTL_ADD` reports what is already queued as the first
//! event's `EPOLLIN`. The server is frozen (SIGSTOP) while the clients
//! connect and send, so the bytes are in the socket before `accept4` runs.

mod tlskit;

use std::io::{Read, Write};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use tlskit::chatkit::Client;
use tlskit::{tcp, Pki, Server};

#[test]
fn echo_answers_bytes_sent_before_the_accept() {
    let pki = Pki::new("first edge CA");
    let srv = Server::start(&pki, &["--mode", "echo"]);
    srv.freeze();
    let mut early = tcp(srv.tcp);
    early.write_all(b"sent before accept4\n").expect("write");
    let mut quiet = tcp(srv.tcp);
    srv.thaw();
    let mut back = [0u8; 20];
    early.read_exact(&mut back).expect("the early bytes echoed");
    assert_eq!(&back, b"sent before accept4\n");
    // A client registered before it spoke is read on its first edge.
    quiet.write_all(b"after").expect("write");
    let mut back = [0u8; 5];
    quiet.read_exact(&mut back).expect("the later bytes echoed");
    assert_eq!(&back, b"after");
}

#[test]
fn chat_answers_a_command_sent_before_the_accept() {
    let pki = Pki::new("first edge CA");
    let srv = Server::start(&pki, &[]);
    srv.freeze();
    let mut c = Client::over(tcp(srv.tcp));
    c.send("/nick early");
    srv.thaw();
    let hello = c.line();
    assert!(hello.starts_with("HELLO guest"), "{hello}");
    c.expect(&["OK nick early"]);
    c.expect_nothing();
}

#[test]
fn tls_handshake_starts_from_a_client_hello_sent_before_the_accept() {
    let pki = Pki::new("first edge CA");
    let srv = Server::start(&pki, &["--mode", "echo"]);
    srv.freeze();
    let name = ServerName::try_from("localhost").expect("name");
    let mut conn = ClientConnection::new(pki.config_with(None, None), name).expect("client");
    let mut sock = tcp(srv.tls);
    let hello = conn.write_tls(&mut sock).expect("send the ClientHello");
    assert!(hello > 0, "a ClientHello was written");
    srv.thaw();
    let mut s = StreamOwned::new(conn, sock);
    s.write_all(b"over tls").expect("write");
    s.flush().expect("flush");
    let mut back = [0u8; 8];
    s.read_exact(&mut back).expect("the echo over TLS");
    assert_eq!(&back, b"over tls");
}
