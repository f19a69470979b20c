//! A new user's first hour, over real sockets and real processes: `serve`
//! started outside the checkout (no certificates) still serves; addresses
//! may be host names, and wrong ones say what is wrong; a client on the
//! wrong kind of port (plain on TLS, TLS on plain) is told so; `bench` in
//! an echo mode stops at once against a chat server; TLS runs say so.

mod common;
mod daemonkit;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{run_edgechat, Server, TIMEOUT};
use daemonkit::{edgechat, run, TempDir};

/// A server started in a directory of the test's choosing, its stderr
/// lines sent down a channel; killed and reaped on drop.
struct Elsewhere {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: String,
}

impl Elsewhere {
    fn start(dir: &TempDir, args: &[&str]) -> Elsewhere {
        let mut child = edgechat(&dir.0, args).spawn().expect("spawn edgechat");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Elsewhere {
            child,
            lines,
            seen: String::new(),
        }
    }

    /// Reads stderr until a line contains `what`; fails after [`TIMEOUT`].
    fn wait_for(&mut self, what: &str) -> String {
        let end = Instant::now() + TIMEOUT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(what) {
                        return line;
                    }
                }
                Err(e) => panic!("no {what:?} on stderr ({e:?}); so far:\n{}", self.seen),
            }
        }
    }
}

impl Drop for Elsewhere {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The line the server sends first, read with a bound.
fn first_line(addr: &str) -> String {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("SO_RCVTIMEO");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("read");
    line
}

#[test]
fn serve_with_no_flags_outside_the_checkout_serves_plain_and_says_how_to_get_tls() {
    let dir = TempDir::new("no-certs");
    if port_free(7000) && port_free(7443) {
        // The defaults themselves: plain 127.0.0.1:7000, and no TLS 7443
        // without a certificate, with one warning saying how.
        let mut srv = Elsewhere::start(&dir, &["serve"]);
        let warn = srv.wait_for("no TLS listener");
        assert!(warn.contains("WARN"), "{warn}");
        assert!(warn.contains("certs/server.crt not found"), "{warn}");
        assert!(warn.contains("--cert PEM --key PEM"), "{warn}");
        srv.wait_for("listening on tcp://127.0.0.1:7000");
        srv.wait_for("serving as pid");
        assert!(!srv.seen.contains("tls://"), "{}", srv.seen);
        let hello = first_line("127.0.0.1:7000");
        assert!(hello.starts_with("HELLO guest"), "{hello}");
    } else {
        // Someone holds the default ports: at least no listener flag for
        // TLS and no certificate found must not stop a plain listener.
        let mut srv = Elsewhere::start(&dir, &["serve", "--tcp", "127.0.0.1:0"]);
        let line = srv.wait_for("listening on tcp://");
        let addr = line.rsplit("tcp://").next().unwrap_or_default().trim();
        assert!(first_line(addr).starts_with("HELLO guest"));
        assert!(!srv.seen.contains("server.crt"), "{}", srv.seen);
    }
}

#[test]
fn tls_asked_for_without_a_certificate_fails_naming_the_file() {
    let dir = TempDir::new("tls-no-certs");
    for args in [
        &["serve", "--tls", "127.0.0.1:0"][..],
        &["serve", "--tls-only"][..],
    ] {
        let ran = run(edgechat(&dir.0, args));
        assert_eq!(ran.code, 1, "{args:?}: {}", ran.stderr);
        let want = format!("{}: No such file", dir.path("certs/server.crt").display());
        assert!(ran.stderr.contains(&want), "{args:?}: {}", ran.stderr);
    }
}

/// `edgechat bench ARGS`, which must succeed; its stdout.
fn bench_ok(args: &[&str]) -> String {
    let args: Vec<&str> = std::iter::once("bench")
        .chain(args.iter().copied())
        .collect();
    let out = run_edgechat(&args, Stdio::null(), None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn host_names_work_for_serve_client_and_bench() {
    let srv = Server::start(&["--tcp", "localhost:0"]);
    assert!(srv.addr().ip().is_loopback(), "{}", srv.addr());
    let named = format!("localhost:{}", srv.addr().port());
    let out = run_edgechat(&["client", &named], Stdio::piped(), Some(b"hi\n".to_vec()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hi\n");
    let stdout = bench_ok(&["--addr", &named, "--count", "200", "--conns", "2"]);
    assert!(stdout.contains("pingpong 2 conns"), "{stdout}");

    // IPv6 in brackets, where the machine has ::1.
    if TcpListener::bind("[::1]:0").is_ok() {
        let v6 = Server::start(&["--tcp", "[::1]:0"]);
        let addr = format!("[::1]:{}", v6.addr().port());
        let out = run_edgechat(&["client", &addr], Stdio::piped(), Some(b"six\n".to_vec()));
        assert_eq!(
            out.stdout,
            b"six\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_wrong_address_says_what_is_wrong_for_serve_client_and_bench() {
    let cases = [
        (
            "::1:7000",
            "an IPv6 address needs brackets around it, e.g. [::1]:7000",
        ),
        ("127.0.0.1:99999", "port 99999 is out of range"),
        (
            "no-such-host.invalid:7000",
            "host name \"no-such-host.invalid\" not found",
        ),
        ("localhost", "no port"),
    ];
    for (addr, want) in cases {
        for args in [
            vec!["serve", "--tcp", addr],
            vec!["client", addr],
            vec!["bench", "--addr", addr],
        ] {
            let out = run_edgechat(&args, Stdio::null(), None);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(want), "{args:?}: want {want:?} in {stderr}");
            assert!(
                !stderr.contains("invalid socket address syntax"),
                "{stderr}"
            );
        }
    }
}

#[test]
fn a_plain_client_on_a_tls_port_is_told_to_add_tls() {
    let srv = Server::start_mode("chat", &["--tls", "127.0.0.1:0"]);
    let addr = srv.tls[0].to_string();
    let out = run_edgechat(
        &["client", &addr],
        Stdio::piped(),
        Some(b"hello\n".to_vec()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("this looks like a TLS port: add --tls"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no alert bytes shown: {:?}",
        out.stdout
    );
}

#[test]
fn a_tls_client_on_a_plain_port_is_told_it_is_not_tls() {
    for mode in ["chat", "echo"] {
        let srv = Server::start_mode(mode, &["--tcp", "127.0.0.1:0"]);
        let addr = srv.addr().to_string();
        let out = run_edgechat(
            &["client", "--tls", &addr],
            Stdio::piped(),
            Some(b"hello\n".to_vec()),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {stderr}");
        assert!(stderr.contains("not a TLS port?"), "{mode}: {stderr}");
    }
}

#[test]
fn client_tls_without_ca_says_which_roots_it_trusts() {
    let srv = Server::start_mode("chat", &["--tls", "127.0.0.1:0"]);
    let addr = srv.tls[0].to_string();
    // In the checkout: the development CA, which signed the server's.
    let out = run_edgechat(
        &["client", "--tls", &addr],
        Stdio::piped(),
        Some(b"/ping hi\n".to_vec()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("trusting the development CA certs/ca.crt"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("PONG hi"));
    // Elsewhere: the system's roots, which do not know the development CA.
    let dir = TempDir::new("no-ca");
    let ran = run(edgechat(&dir.0, &["client", "--tls", &addr]));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    match std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").is_file() {
        true => assert!(
            ran.stderr
                .contains("trusting the system roots /etc/ssl/certs/ca-certificates.crt")
                && ran.stderr.contains("certificate"),
            "{}",
            ran.stderr
        ),
        false => assert!(ran.stderr.contains("no CA to trust"), "{}", ran.stderr),
    }
}

#[test]
fn bench_in_an_echo_mode_stops_at_once_against_a_chat_server() {
    let srv = Server::start_mode("chat", &["--tcp", "127.0.0.1:0", "--tls", "127.0.0.1:0"]);
    let (plain, tls) = (srv.addr().to_string(), srv.tls[0].to_string());
    for args in [
        vec![
            "bench", "--addr", &plain, "--mode", "pingpong", "--secs", "20",
        ],
        vec![
            "bench", "--addr", &plain, "--mode", "stream", "--secs", "20",
        ],
        vec![
            "bench", "--addr", &tls, "--tls", "--mode", "pingpong", "--secs", "20",
        ],
        vec![
            "bench",
            "--addr",
            &tls,
            "--tls",
            "--mode",
            "handshake",
            "--secs",
            "20",
        ],
    ] {
        let started = Instant::now();
        let out = run_edgechat(&args, Stdio::null(), None);
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
        assert!(
            stderr.contains("greeted with \"HELLO guest"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("this is a chat server"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("serve --mode echo"), "{args:?}: {stderr}");
        assert!(!stderr.contains("echoed more bytes"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_tls_bench_summary_says_it_was_tls() {
    let srv = Server::start(&["--tls", "127.0.0.1:0"]);
    let addr = srv.tls[0].to_string();
    for (mode, want) in [
        ("pingpong", "pingpong over TLS "),
        ("handshake", "handshake (TLS, full)"),
    ] {
        let stdout = bench_ok(&[
            "--tls", "--addr", &addr, "--mode", mode, "--count", "50", "--conns", "2",
        ]);
        assert!(stdout.starts_with(want), "{mode}: {stdout}");
    }
}
