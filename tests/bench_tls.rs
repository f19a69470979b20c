//! `edgechat bench --tls` end to end: the real binary against the real
//! server on a `--tls 127.0.0.1:0` listener, with certificates made for
//! the test by `rcgen`. Every wait is bounded, and each server is stopped
//! by a guard (SIGTERM, then SIGKILL) even when a test fails.

mod common;
#[allow(dead_code)]
#[path = "tlskit/pki.rs"]
mod pki;

use std::process::{ExitStatus, Stdio};

use common::{field, run_edgechat};
use pki::Pki;

/// A server in `mode` on a TLS listener, with the server pair of its own
/// CA (kept for as long as the server runs).
struct TlsServer {
    server: common::Server,
    pki: Pki,
}

impl TlsServer {
    fn start(mode: &str) -> TlsServer {
        let pki = Pki::new("bench CA");
        let (cert, key) = (path(&pki.server_crt), path(&pki.server_key));
        let args = ["--tls", "127.0.0.1:0", "--cert", cert, "--key", key];
        let server = common::Server::start_mode(mode, &args);
        TlsServer { server, pki }
    }

    fn pid(&self) -> String {
        self.server.pid().to_string()
    }

    /// `edgechat bench --tls --json` against it, trusting its CA (the
    /// certificate names `127.0.0.1`, the default `--servername`); asserts
    /// it succeeded.
    fn bench(&self, args: &[&str]) -> (ExitStatus, String) {
        let addr = self.server.tls[0].to_string();
        let ca = path(&self.pki.ca_crt);
        let mut all = vec!["bench", "--tls", "--json", "--addr", &addr, "--ca", ca];
        all.extend(args);
        let out = run_edgechat(&all, Stdio::null(), None);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "bench {args:?}: {}\n{stdout}\n{stderr}",
            out.status
        );
        (out.status, stdout)
    }
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn tls_pingpong_for_a_second_has_no_errors() {
    let server = TlsServer::start("echo");
    let pid = server.pid();
    let (_, out) = server.bench(&[
        "--mode",
        "pingpong",
        "--conns",
        "10",
        "--secs",
        "1",
        "--warmup",
        "0.2",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(field(&out, "errors"), 0.0, "{out}");
    assert!(field(&out, "msgs") > 100.0, "{out}");
    assert!(field(&out, "server_cpu_us_per_msg") > 0.0, "{out}");
}

#[test]
fn tls_count_sends_exactly_that_many() {
    let server = TlsServer::start("echo");
    let (_, out) = server.bench(&["--mode", "pingpong", "--conns", "7", "--count", "500"]);
    assert_eq!(field(&out, "msgs"), 500.0, "{out}");
    assert_eq!(field(&out, "errors"), 0.0, "{out}");
    let (_, out) = server.bench(&[
        "--mode", "stream", "--conns", "2", "--size", "16384", "--depth", "4", "--count", "300",
    ]);
    assert_eq!(field(&out, "msgs"), 300.0, "{out}");
    assert_eq!(field(&out, "bytes"), 300.0 * 16384.0, "{out}");
}

#[test]
fn tls_handshakes_full_and_resumed() {
    let server = TlsServer::start("echo");
    let pid = server.pid();
    let (_, full) = server.bench(&[
        "--mode",
        "handshake",
        "--conns",
        "2",
        "--secs",
        "0.5",
        "--warmup",
        "0.1",
        "--server-pid",
        &pid,
    ]);
    assert!(field(&full, "handshakes") > 0.0, "{full}");
    assert_eq!(field(&full, "resumed"), 0.0, "full handshakes only: {full}");
    assert_eq!(field(&full, "errors"), 0.0, "{full}");
    let (_, resumed) = server.bench(&[
        "--mode",
        "handshake",
        "--resume",
        "--conns",
        "2",
        "--secs",
        "0.5",
        "--warmup",
        "0.1",
        "--server-pid",
        &pid,
    ]);
    assert!(field(&resumed, "resumed") > 0.0, "{resumed}");
    assert!(
        field(&resumed, "server_cpu_us_per_handshake") > 0.0,
        "{resumed}"
    );
    assert_eq!(field(&resumed, "errors"), 0.0, "{resumed}");
    let (_, counted) = server.bench(&["--mode", "handshake", "--resume", "--count", "50"]);
    assert_eq!(field(&counted, "handshakes"), 50.0, "{counted}");
    assert!(field(&counted, "resumed") > 0.0, "{counted}");
    let (_, counted) = server.bench(&["--mode", "handshake", "--conns", "4", "--count", "30"]);
    assert_eq!(field(&counted, "handshakes"), 30.0, "{counted}");
    assert_eq!(field(&counted, "resumed"), 0.0, "{counted}");
    assert_eq!(field(&counted, "errors"), 0.0, "{counted}");
}

#[test]
fn tls_idle_and_chat_modes() {
    let server = TlsServer::start("echo");
    let pid = server.pid();
    let (_, idle) = server.bench(&[
        "--mode",
        "idle",
        "--conns",
        "40",
        "--secs",
        "0.2",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(field(&idle, "errors"), 0.0, "{idle}");
    drop(server);
    let chat = TlsServer::start("chat");
    let (_, out) = chat.bench(&[
        "--mode",
        "chat",
        "--senders",
        "2",
        "--receivers",
        "5",
        "--count",
        "200",
    ]);
    assert_eq!(field(&out, "lines"), 200.0, "{out}");
    assert_eq!(field(&out, "errors"), 0.0, "{out}");
}
