//! Chat over TLS: plain and TLS clients in one room, TLS on IPv4 and IPv6
//! listeners at once, `close_notify` on `/quit` and on shutdown, mTLS with
//! reserved nicks, and SIGHUP reload (a broken or mismatched pair refused).

mod tlskit;

use std::time::{Duration, Instant};

use tlskit::{chatkit, Pki, Server, TlsClient};

#[test]
fn plain_and_tls_clients_share_a_room() {
    let pki = Pki::new("chat CA");
    let srv = Server::start(&pki, &[]);
    let mut p = chatkit::Client::connect(srv.tcp);
    let hello = p.line();
    let pnick = hello.split(' ').nth(1).expect("nick").to_string();
    let mut t = TlsClient::join(srv.tls, pki.client_config());
    p.expect(&[&format!("JOIN {}", t.nick)]);
    p.send("hi from plain");
    t.expect(&[&format!("MSG {pnick} hi from plain")]);
    t.send("hi from tls");
    p.expect(&[&format!("MSG {} hi from tls", t.nick)]);
    t.send(&format!("/msg {pnick} psst"));
    t.expect(&[&format!("OK msg {pnick}")]);
    p.expect(&[&format!("DM {} psst", t.nick)]);
    t.send("/who");
    let mut who = [pnick.clone(), t.nick.clone()];
    who.sort();
    t.expect(&[&format!("WHO lobby {} {}", who[0], who[1])]);
}

#[test]
fn quit_and_shutdown_end_with_close_notify() {
    let pki = Pki::new("chat CA");
    let mut srv = Server::start(&pki, &[]);
    let mut a = TlsClient::join(srv.tls, pki.client_config());
    let mut b = TlsClient::join(srv.tls, pki.client_config());
    a.expect(&[&format!("JOIN {}", b.nick)]);
    b.send("/quit gone");
    b.expect(&["BYE"]);
    b.expect_close_notify();
    a.expect(&[&format!("QUIT {} gone", b.nick)]);
    srv.signal(libc::SIGTERM);
    a.expect(&["ERR server-shutdown"]);
    a.expect_close_notify();
    assert_eq!(srv.wait_exit(), 0);
}

#[test]
fn two_tls_listeners_ipv4_and_ipv6_both_serve() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("note: no IPv6 loopback on this machine; IPv6 test skipped");
        return;
    }
    let pki = Pki::new("two listeners CA");
    // `Server::start` adds `--tls 127.0.0.1:0`.
    let mut srv = Server::start(&pki, &["--tls", "[::1]:0"]);
    let tls = srv.tls_listeners(2);
    let v4 = *tls.iter().find(|a| a.is_ipv4()).expect("an IPv4 listener");
    let v6 = *tls.iter().find(|a| a.is_ipv6()).expect("an IPv6 listener");
    assert_eq!(v6.ip().to_string(), "::1");
    let mut a = TlsClient::join(v4, pki.client_config());
    let mut b = TlsClient::join(v6, pki.client_config());
    a.expect(&[&format!("JOIN {}", b.nick)]);
    b.send("over ::1");
    a.expect(&[&format!("MSG {} over ::1", b.nick)]);
    a.send("over 127.0.0.1");
    b.expect(&[&format!("MSG {} over 127.0.0.1", a.nick)]);
}

#[test]
fn mtls_client_is_accepted_with_its_reserved_nick() {
    let pki = Pki::new("mtls CA");
    let ca = pki.ca_crt.to_str().expect("path").to_string();
    let srv = Server::start(&pki, &["--client-ca", &ca]);
    let alice = pki.client(&["alice.example"], "ignored");
    let bob = pki.client(&[], "bob");
    // A plain client squats on the name first.
    let mut p = chatkit::Client::connect(srv.tcp);
    let pnick = p.line().split(' ').nth(1).expect("nick").to_string();
    p.send("/nick aliceexample");
    p.expect(&["OK nick aliceexample"]);
    let mut a = TlsClient::join(srv.tls, pki.config_with(None, Some(&alice)));
    assert_eq!(a.nick, "aliceexample");
    let guest = p.line();
    assert!(guest.starts_with("NICK aliceexample guest"), "{guest}");
    assert_ne!(guest, format!("NICK aliceexample {pnick}"));
    p.expect(&["JOIN aliceexample"]);
    // Nobody else takes it; the holder cannot change it.
    p.send("/nick AliceExample");
    p.expect(&["ERR nick-in-use"]);
    a.send("/nick someone");
    a.expect(&["ERR bad-nick"]);
    // The common name when there is no DNS name.
    let b = TlsClient::join(srv.tls, pki.config_with(None, Some(&bob)));
    assert_eq!(b.nick, "bob");
    a.expect(&["JOIN bob"]);
    // A second connection with the same certificate is refused.
    let mut a2 = TlsClient::connect_tls(srv.tls, pki.config_with(None, Some(&alice)));
    a2.expect(&["ERR nick-in-use"]);
    a2.expect_close_notify();
    // The name is free once its holder leaves.
    a.send("/quit");
    a.expect(&["BYE"]);
    a.expect_close_notify();
    p.send("/nick aliceexample");
    p.expect(&["JOIN bob", "QUIT aliceexample", "OK nick aliceexample"]);
}

#[test]
fn mtls_client_without_a_certificate_never_gets_hello() {
    let pki = Pki::new("mtls CA");
    let ca = pki.ca_crt.to_str().expect("path").to_string();
    let srv = Server::start(&pki, &["--client-ca", &ca]);
    let other = Pki::new("another CA");
    let stranger = other.client(&["mallory"], "mallory");
    for config in [pki.client_config(), pki.config_with(None, Some(&stranger))] {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(config, name).expect("client");
        let mut s = rustls::StreamOwned::new(conn, tlskit::tcp(srv.tls));
        let mut line = String::new();
        let got = std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut s), &mut line);
        assert!(got.is_err() && line.is_empty(), "{got:?} {line:?}");
    }
    // Everyone else is still served.
    let mut p = chatkit::Client::connect(srv.tcp);
    assert!(p.line().starts_with("HELLO "));
    p.expect_nothing();
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections() {
    let mut pki = Pki::new("reload CA");
    let mut srv = Server::start(&pki, &[]);
    let mut old = TlsClient::join(srv.tls, pki.client_config());
    let first = old.stream().conn.peer_certificates().expect("certs")[0].clone();
    let second = pki.write_server("second");
    srv.signal(libc::SIGHUP);
    let crt = pki.server_crt.display();
    srv.wait_log(&format!("SIGHUP: certificate reloaded from {crt}"));
    let mut new = TlsClient::join(srv.tls, pki.client_config());
    let served = new.stream().conn.peer_certificates().expect("certs")[0].clone();
    assert_eq!(served, second);
    assert_ne!(served, first);
    // The old connection goes on.
    old.expect(&[&format!("JOIN {}", new.nick)]);
    old.send("still here");
    new.expect(&[&format!("MSG {} still here", old.nick)]);
    // A broken pair is refused and the last good one kept.
    tlskit::pki::write(&pki.server_key, "not a key");
    srv.signal(libc::SIGHUP);
    srv.wait_log("SIGHUP: certificate refused, the old one kept");
    let mut third = TlsClient::join(srv.tls, pki.client_config());
    let served = third.stream().conn.peer_certificates().expect("certs")[0].clone();
    assert_eq!(served, second);
    third.expect_nothing();
}

#[test]
fn sighup_refuses_a_mismatched_pair_and_keeps_the_old_one() {
    let mut pki = Pki::new("mismatch CA");
    let mut srv = Server::start(&pki, &[]);
    let mut old = TlsClient::join(srv.tls, pki.client_config());
    let first = old.stream().conn.peer_certificates().expect("certs")[0].clone();
    // A new certificate, each file well formed, beside the old key.
    let old_key = std::fs::read(&pki.server_key).expect("read key");
    pki.write_server("second");
    std::fs::write(&pki.server_key, old_key).expect("write key");
    srv.signal(libc::SIGHUP);
    let why = srv.wait_log("SIGHUP: certificate refused, the old one kept: ");
    assert!(why.contains("server.key"), "names the key file: {why}");
    let log = srv.log.lock().expect("log").clone();
    assert!(!log.contains("reloaded"), "{log}");
    let mut new = TlsClient::join(srv.tls, pki.client_config());
    let served = new.stream().conn.peer_certificates().expect("certs")[0].clone();
    assert_eq!(served, first);
    new.expect_nothing();
}

#[test]
fn handshake_timeout_closes_a_silent_client() {
    let pki = Pki::new("timeout CA");
    let srv = Server::start(&pki, &["--handshake-timeout", "1"]);
    let started = Instant::now();
    let mut s = tlskit::tcp(srv.tls);
    let got = tlskit::read_until_closed(&mut s);
    let took = started.elapsed();
    assert!(got.is_empty(), "{got:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let mut t = TlsClient::join(srv.tls, pki.client_config());
    t.expect_nothing();
}

#[test]
fn slow_tls_consumer_is_cut_by_what_it_is_owed() {
    let pki = Pki::new("slow CA");
    let srv = Server::start(&pki, &["--max-output", "65536"]);
    let slow = TlsClient::join(srv.tls, pki.client_config());
    let mut p = chatkit::Client::connect(srv.tcp);
    let _hello = p.line();
    let line = format!("{}\n", "y".repeat(200));
    let flood = line.repeat(20_000); // 4 MB: far past any socket buffer
    p.raw(flood.as_bytes());
    p.expect(&[&format!("QUIT {} slow-consumer", slow.nick)]);
    p.expect_nothing();
}
