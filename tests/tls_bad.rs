//! Bad clients on a TLS port: garbage, HTTP plaintext and an oversized
//! record each get a fatal alert and a close at once; a truncated
//! ClientHello is closed, with nothing sent, at the handshake timeout.
//! Everyone else goes on being served.

mod tlskit;

use std::io::Write;
use std::sync::Arc;

use tlskit::{chatkit, Pki, Server, TlsClient};

/// The first bytes a rustls client sends: a ClientHello record.
fn client_hello(pki: &Pki) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(pki.client_config(), name).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write_tls");
    }
    out
}

/// Sends `bytes` on a fresh connection to the TLS port and returns what
/// came back before the server closed it.
fn poke(srv: &Server, bytes: &[u8]) -> Vec<u8> {
    let mut s = tlskit::tcp(srv.tls);
    s.write_all(bytes).expect("write");
    tlskit::read_until_closed(&mut s)
}

/// A handshake timeout far beyond every wait in these tests ([`tlskit::WAIT`],
/// 20 s): a close that comes in time can only be the alert path's.
const SLOW_HANDSHAKE: [&str; 2] = ["--handshake-timeout", "60"];

/// One plaintext fatal alert record: content type 21, a record version,
/// length 2, level 2 (fatal), then the description, which is returned.
fn fatal_alert(got: &[u8]) -> u8 {
    assert!(
        got.len() == 7 && got[0] == 0x15 && got[1] == 0x03 && got[3..6] == [0x00, 0x02, 0x02],
        "expected one fatal alert record: {got:02x?}"
    );
    got[6]
}

/// A TLS client and a plain client that must not notice anything.
struct Witnesses {
    tls: TlsClient,
    plain: chatkit::Client,
}

fn witnesses(srv: &Server, config: Arc<rustls::ClientConfig>) -> Witnesses {
    let mut tls = TlsClient::join(srv.tls, config);
    let mut plain = chatkit::Client::connect(srv.tcp);
    assert!(plain.line().starts_with("HELLO "));
    tls.expect(&["JOIN guest2"]);
    Witnesses { tls, plain }
}

impl Witnesses {
    fn still_served(&mut self, srv: &Server, config: Arc<rustls::ClientConfig>) {
        self.tls.expect_nothing();
        self.plain.expect_nothing();
        let mut fresh = TlsClient::join(srv.tls, config);
        fresh.expect_nothing();
    }
}

#[test]
fn garbage_and_http_get_an_alert_and_a_close() {
    let pki = Pki::new("bad CA");
    let srv = Server::start(&pki, &SLOW_HANDSHAKE);
    let mut w = witnesses(&srv, pki.client_config());
    for bad in [
        &b"\x00\x01\x02garbage garbage garbage\xff\xfe"[..],
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        // `decode_error` (50), and closed within the wait, so not by the
        // handshake timeout.
        assert_eq!(fatal_alert(&poke(&srv, bad)), 50, "for {bad:?}");
    }
    w.still_served(&srv, pki.client_config());
}

#[test]
fn oversized_record_gets_an_alert_and_a_close() {
    let pki = Pki::new("bad CA");
    let srv = Server::start(&pki, &SLOW_HANDSHAKE);
    let mut w = witnesses(&srv, pki.client_config());
    // A handshake record claiming 18433 bytes: more than TLS allows. The
    // answer is `decode_error` (50), and the close comes within the wait,
    // so not from the handshake timeout.
    let mut record = vec![0x16, 0x03, 0x01, 0x48, 0x01];
    record.extend(std::iter::repeat_n(0x41, 20_000));
    assert_eq!(fatal_alert(&poke(&srv, &record)), 50);
    // The same after a real handshake, as application data.
    let mut c = TlsClient::join(srv.tls, pki.client_config());
    let mut record = vec![0x17, 0x03, 0x03, 0x48, 0x01];
    record.extend(std::iter::repeat_n(0x41, 0x4801));
    c.stream().sock.write_all(&record).expect("write");
    let mut rest = Vec::new();
    let got = std::io::Read::read_to_end(&mut c.r, &mut rest);
    assert!(got.is_err(), "{got:?}");
    // It had joined, so its room saw it come and go; nothing else.
    w.tls.expect(&["JOIN guest3", "QUIT guest3"]);
    w.plain.expect(&["JOIN guest3", "QUIT guest3"]);
    w.still_served(&srv, pki.client_config());
}

#[test]
fn truncated_client_hello_is_closed_at_the_handshake_timeout() {
    let pki = Pki::new("bad CA");
    let srv = Server::start(&pki, &["--handshake-timeout", "1"]);
    let mut w = witnesses(&srv, pki.client_config());
    let hello = client_hello(&pki);
    let started = std::time::Instant::now();
    let got = poke(&srv, &hello[..hello.len() / 2]);
    assert!(got.is_empty(), "{got:02x?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    w.still_served(&srv, pki.client_config());
}
