//! The defences of SECURITY.md over real sockets: `--max-per-ip` for plain
//! and TLS clients, `--tls-only`, a certificate-bound nick that no plain
//! client can take, and every deadline firing for many clients at once
//! while the rest are served.

mod tlskit;

use std::io::Read;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tlskit::{chatkit, Pki, Server, TlsClient, WAIT};

/// A TCP connection to `to` from the loopback address `from` (any
/// 127.0.0.0/8 address is this host).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    connect_with(from, None, to)
}

/// A TCP connection to `to` from `from`, with `SO_RCVBUF` set first if
/// `rcvbuf` says so.
fn connect_with(from: &str, rcvbuf: Option<usize>, to: SocketAddr) -> TcpStream {
    use nix::sys::socket::{
        bind, connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    };
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 server expected");
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    if let Some(bytes) = rcvbuf {
        setsockopt(&fd, sockopt::RcvBuf, &bytes).expect("SO_RCVBUF");
    }
    let local: SocketAddrV4 = format!("{from}:0").parse().expect("address");
    bind(fd.as_raw_fd(), &SockaddrIn::from(local)).expect("bind");
    connect(fd.as_raw_fd(), &SockaddrIn::from(to)).expect("connect");
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s
}

/// Reads one line and asserts it starts with `HELLO `.
fn hello(c: &mut chatkit::Client) -> String {
    let l = c.line();
    assert!(l.starts_with("HELLO "), "{l}");
    l
}

#[test]
fn max_per_ip_refuses_the_extra_connection_with_server_full() {
    let pki = Pki::new("per-ip CA");
    let srv = Server::start(&pki, &["--max-per-ip", "2"]);
    let mut a = chatkit::Client::over(connect_from("127.0.0.1", srv.tcp));
    let mut b = chatkit::Client::over(connect_from("127.0.0.1", srv.tcp));
    hello(&mut a);
    let bnick = nick_of(&hello(&mut b));
    a.expect(&[&format!("JOIN {bnick}")]);
    let mut third = chatkit::Client::over(connect_from("127.0.0.1", srv.tcp));
    assert_eq!(third.line(), "ERR server-full");
    third.expect_fin();
    // Another address is counted on its own.
    let mut other = chatkit::Client::over(connect_from("127.0.0.2", srv.tcp));
    let onick = nick_of(&hello(&mut other));
    a.expect(&[&format!("JOIN {onick}")]);
    b.expect(&[&format!("JOIN {onick}")]);
    a.expect_nothing();
    b.expect_nothing();
    // A TLS client over the limit reads a fatal alert, not a hang or EOF.
    let config = pki.client_config();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("client");
    let mut tls = rustls::StreamOwned::new(conn, connect_from("127.0.0.1", srv.tls));
    let err = tls.read(&mut [0u8; 64]).expect_err("refused");
    assert!(
        err.to_string().contains("InternalError"),
        "want the internal_error alert, got: {err}"
    );
    // One leaves; its slot is free for the same address again.
    b.send("/quit");
    b.expect(&["BYE"]);
    b.expect_fin();
    let end = Instant::now() + WAIT;
    let mut newcomer = loop {
        let mut c = chatkit::Client::over(connect_from("127.0.0.1", srv.tcp));
        if c.line().starts_with("HELLO ") {
            break c;
        }
        assert!(Instant::now() < end, "the slot never came back");
        std::thread::sleep(Duration::from_millis(20));
    };
    newcomer.expect_nothing();
    a.expect(&[&format!("QUIT {bnick}")]);
    let l = a.line();
    assert!(l.starts_with("JOIN guest"), "{l}");
    a.expect_nothing();
}

fn nick_of(hello: &str) -> String {
    hello.split(' ').nth(1).expect("nick").to_string()
}

#[test]
fn without_the_flag_loopback_is_not_limited() {
    let pki = Pki::new("per-ip CA");
    let srv = Server::start(&pki, &[]);
    // More than the default 64 of a non-loopback source.
    let mut all: Vec<_> = (0..80).map(|_| chatkit::Client::connect(srv.tcp)).collect();
    for c in &mut all {
        hello(c);
    }
    all[79].expect_nothing();
}

#[test]
fn tls_only_refuses_plain_listeners_and_serves_tls() {
    for flag in ["--tcp", "--udp"] {
        let out = Command::new(env!("CARGO_BIN_EXE_edgechat"))
            .args(["serve", "--tls-only", flag, "127.0.0.1:0"])
            .stdin(Stdio::null())
            .output()
            .expect("run edgechat");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let want = format!("--tls-only refuses the plain listener {flag} 127.0.0.1:0");
        assert!(stderr.contains(&want), "{stderr}");
    }
    let pki = Pki::new("tls-only CA");
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgechat"))
        .args(["serve", "--tls-only", "--tls", "127.0.0.1:0", "--cert"])
        .arg(&pki.server_crt)
        .arg("--key")
        .arg(&pki.server_key)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let first = lines.next().expect("a line").expect("read");
    let addr: SocketAddr = first
        .split("listening on tls://")
        .nth(1)
        .unwrap_or_else(|| panic!("not a TLS listener: {first}"))
        .trim()
        .parse()
        .expect("address");
    let t = TlsClient::join(addr, pki.client_config());
    assert!(!t.nick.is_empty());
    let _ = child.kill();
    let _ = child.wait();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        !rest.iter().any(|l| l.contains("listening on tcp://")),
        "a plain listener opened: {rest:?}"
    );
}

#[test]
fn a_plain_client_cannot_take_a_certificate_bound_nick() {
    let pki = Pki::new("mtls CA");
    let ca = pki.ca_crt.to_str().expect("path").to_string();
    let srv = Server::start(&pki, &["--client-ca", &ca]);
    let alice = pki.client(&["alice"], "alice");
    let mut a = TlsClient::join(srv.tls, pki.config_with(None, Some(&alice)));
    assert_eq!(a.nick, "alice");
    let mut p = chatkit::Client::connect(srv.tcp);
    let pnick = nick_of(&hello(&mut p));
    a.expect(&[&format!("JOIN {pnick}")]);
    for attempt in ["alice", "ALICE", "Alice"] {
        p.send(&format!("/nick {attempt}"));
        p.expect(&["ERR nick-in-use"]);
    }
    // From another room too: nicks are server-wide.
    p.send("/join elsewhere");
    p.expect(&["OK join elsewhere", &format!("WHO elsewhere {pnick}")]);
    a.expect(&[&format!("PART {pnick}")]);
    p.send("/nick alice");
    p.expect(&["ERR nick-in-use"]);
    // A DM to the name reaches the certificate holder.
    p.send("/msg alice hello");
    p.expect(&["OK msg alice"]);
    a.expect(&[&format!("DM {pnick} hello")]);
}

/// Every kind of deadline at once, for many clients: silent clients get
/// `PING` then `ERR idle-timeout`, clients that answer stay, unfinished
/// lines get `ERR line-timeout`, and TLS clients that never finish their
/// handshake are closed; a client doing none of that is served throughout.
#[test]
fn deadlines_fire_for_many_clients_at_once() {
    const EACH: usize = 100;
    let pki = Pki::new("deadlines CA");
    let srv = Server::start(
        &pki,
        &[
            "--idle-timeout",
            "2",
            "--line-timeout",
            "1",
            "--handshake-timeout",
            "1",
        ],
    );
    let mut silent: Vec<_> = (0..EACH)
        .map(|_| chatkit::Client::connect(srv.tcp))
        .collect();
    let mut answering: Vec<_> = (0..EACH)
        .map(|_| chatkit::Client::connect(srv.tcp))
        .collect();
    let mut partial: Vec<_> = (0..EACH)
        .map(|_| chatkit::Client::connect(srv.tcp))
        .collect();
    let mut stalled: Vec<_> = (0..EACH).map(|_| tlskit::tcp(srv.tls)).collect();
    for c in silent.iter_mut().chain(&mut answering).chain(&mut partial) {
        hello(c);
    }
    for c in &mut partial {
        c.raw(b"never finished");
    }
    // Half a ClientHello header: the handshake cannot go on.
    for s in &mut stalled {
        std::io::Write::write_all(s, &[0x16, 0x03]).expect("write");
    }
    for c in &mut partial {
        skip_notices_until(c, "ERR line-timeout");
    }
    for c in &mut answering {
        skip_notices_until(c, "PING ");
        c.send("/pong");
    }
    for c in &mut silent {
        skip_notices_until(c, "PING ");
    }
    for c in &mut silent {
        skip_notices_until(c, "ERR idle-timeout");
        let mut rest = Vec::new();
        let _ = c.r.read_to_end(&mut rest);
    }
    for s in &mut stalled {
        let got = tlskit::read_until_closed(s);
        // At most an alert record: never a ServerHello.
        assert!(got.is_empty() || got[0] == 0x15, "{got:?}");
    }
    for c in &mut answering {
        c.send("/ping still");
        skip_notices_until(c, "PONG still");
    }
}

/// Reads lines until one starts with `want`, skipping room notices
/// (`JOIN`, `PART`, `QUIT`) and pings; panics on anything else.
fn skip_notices_until(c: &mut chatkit::Client, want: &str) {
    loop {
        let l = c.line();
        if l.starts_with(want) {
            return;
        }
        let notice = ["JOIN ", "PART ", "QUIT ", "PING "]
            .iter()
            .any(|n| l.starts_with(n));
        assert!(notice, "wanted {want:?}, got {l:?}");
    }
}

/// TLS 1.2 renegotiation is refused (rustls implements none): a client
/// asking for it (`openssl s_client`'s `R`) gets the `no_renegotiation`
/// alert and loses its own connection, the server logs nothing at the
/// default level, and everyone else goes on.
#[test]
fn renegotiation_is_refused_without_a_log_line() {
    use std::io::Write;
    let pki = Pki::new("reneg CA");
    let mut srv = Server::start(&pki, &[]);
    let mut other = TlsClient::join(srv.tls, pki.client_config());
    let mut s_client = Command::new("openssl")
        .args(["s_client", "-tls1_2", "-servername", "localhost"])
        .arg("-connect")
        .arg(srv.tls.to_string())
        .arg("-CAfile")
        .arg(&pki.ca_crt)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = s_client.stdin.take().expect("stdin");
    let stdout = s_client.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    // Without -quiet (which would turn the `R` command off), the session
    // details come first.
    let hello = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("HELLO "))
        .expect("HELLO");
    std::thread::spawn(move || lines.for_each(drop));
    other.expect(&[&format!("JOIN {}", nick_of(&hello))]);
    stdin.write_all(b"R\n").expect("write");
    let out = wait_child(s_client);
    assert!(
        out.to_lowercase().contains("no renegotiation"),
        "s_client did not report the refusal:\n{out}"
    );
    other.expect(&[&format!("QUIT {}", nick_of(&hello))]);
    other.expect_nothing();
    let log = srv.log.lock().expect("log").clone();
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "a peer wrote to the log at the default level:\n{log}"
    );
    srv.signal(libc::SIGTERM);
    assert_eq!(srv.wait_exit(), 0);
}

/// Waits (bounded) for a child to exit; returns its stderr.
fn wait_child(mut child: std::process::Child) -> String {
    let end = Instant::now() + WAIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            panic!("openssl s_client did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    err
}

/// `--max-rate`: a client that floods its room is slowed, not cut: its
/// room gets the burst at once and then the rate, every line in order;
/// everyone else is served meanwhile.
#[test]
fn max_rate_slows_a_flooder_and_loses_nothing() {
    const LINES: usize = 150;
    const RATE: usize = 50;
    let pki = Pki::new("rate CA");
    let srv = Server::start(&pki, &["--max-rate", &RATE.to_string()]);
    let mut flooder = chatkit::Client::connect(srv.tcp);
    let fnick = nick_of(&hello(&mut flooder));
    let mut reader = chatkit::Client::connect(srv.tcp);
    let rnick = nick_of(&hello(&mut reader));
    flooder.expect(&[&format!("JOIN {rnick}")]);
    let mut bystander = chatkit::Client::connect(srv.tcp);
    let bnick = nick_of(&hello(&mut bystander));
    bystander.send("/join quiet");
    bystander.expect(&["OK join quiet", &format!("WHO quiet {bnick}")]);
    reader.expect(&[&format!("JOIN {bnick}"), &format!("PART {bnick}")]);
    let flood: String = (0..LINES).map(|i| format!("line {i}\n")).collect();
    let start = Instant::now();
    flooder.raw(flood.as_bytes());
    bystander.send("/ping bystander");
    bystander.expect(&["PONG bystander"]);
    for i in 0..LINES {
        assert_eq!(reader.line(), format!("MSG {fnick} line {i}"));
        // A burst of RATE lines, then RATE a second: never faster.
        let earliest = Duration::from_secs_f64(i.saturating_sub(RATE) as f64 / RATE as f64);
        let waited = start.elapsed() + Duration::from_millis(50);
        assert!(
            waited >= earliest,
            "line {i} after {waited:?}, before {earliest:?}"
        );
    }
    flooder.send("/ping after");
    skip_notices_until(&mut flooder, "PONG after");
    reader.expect_nothing();
}

/// `--max-conn-rate`: a host that opens connections faster than the rate
/// (a burst of as many) is refused with `ERR server-full` until its
/// allowance comes back; other hosts are not affected, and nobody already
/// connected notices.
#[test]
fn max_conn_rate_refuses_a_host_that_connects_too_fast() {
    let pki = Pki::new("conn-rate CA");
    let srv = Server::start(&pki, &["--max-conn-rate", "5"]);
    let mut first: Vec<_> = (0..5)
        .map(|_| chatkit::Client::over(connect_from("127.0.0.1", srv.tcp)))
        .collect();
    for c in &mut first {
        hello(c);
    }
    let start = Instant::now();
    let mut sixth = chatkit::Client::over(connect_from("127.0.0.1", srv.tcp));
    assert_eq!(sixth.line(), "ERR server-full");
    sixth.expect_fin();
    let mut other = chatkit::Client::over(connect_from("127.0.0.2", srv.tcp));
    hello(&mut other);
    // One more is allowed every 200 ms: a later attempt gets in.
    let end = Instant::now() + WAIT;
    let mut attempts = 0;
    let mut late = loop {
        attempts += 1;
        let mut c = chatkit::Client::over(connect_from("127.0.0.1", srv.tcp));
        if c.line().starts_with("HELLO ") {
            break c;
        }
        assert!(Instant::now() < end, "the allowance never came back");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Not before the rate allows it (a bound on time from below only).
    assert!(
        start.elapsed() + Duration::from_millis(20) >= Duration::from_millis(200),
        "let in after {:?} and {attempts} attempts",
        start.elapsed()
    );
    // Everyone connected is still served (their room heard the JOINs).
    for c in first.iter_mut().chain([&mut late, &mut other]) {
        c.send("/ping still");
        skip_notices_until(c, "PONG still");
    }
}

/// A client paused by `--max-rate` when a graceful shutdown begins still
/// gets every line already queued for it, then `ERR server-shutdown`: the
/// end of its pause must not send the FIN while its queue is full (a
/// small `--sndbuf` keeps most of the queue in the server).
#[test]
fn a_paused_client_loses_nothing_at_shutdown() {
    let pki = Pki::new("pause CA");
    let mut srv = Server::start(
        &pki,
        &[
            "--max-rate",
            "50",
            "--sndbuf",
            "4096",
            "--shutdown-timeout",
            "20",
        ],
    );
    let s = connect_with("127.0.0.1", Some(4096), srv.tcp);
    let mut c = chatkit::Client::over(s);
    hello(&mut c);
    // 50 /help at once (the burst), 100 more held back: a 2 s pause.
    c.raw(&b"/help\n".repeat(150));
    std::thread::sleep(Duration::from_millis(300));
    srv.signal(libc::SIGTERM);
    // Read only once the pause is over.
    std::thread::sleep(Duration::from_millis(2500));
    let mut rest = String::new();
    let _ = c.r.read_to_string(&mut rest);
    let lines: Vec<&str> = rest.lines().collect();
    let helps = lines.iter().filter(|l| l.starts_with("HELP")).count();
    assert_eq!(
        lines.last(),
        Some(&"ERR server-shutdown"),
        "{helps} HELP lines"
    );
    assert!(helps >= 50, "{helps} HELP lines for 50 /help");
    assert_eq!(srv.wait_exit(), 0);
}
