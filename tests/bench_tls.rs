//! `edgechat bench --tls` end to end: the real binary against the real
//! server on a `--tls 127.0.0.1:0` listener with the committed development
//! certificates (`certs/`). Every wait is bounded, and each server is
//! stopped by a guard (SIGTERM, then SIGKILL) even when a test fails.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_edgechat");
const CERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/certs");
const TIMEOUT: Duration = Duration::from_secs(60);

/// A running server with one TLS listener; dropping it stops it.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(mode: &str) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--mode", mode, "--tls", "127.0.0.1:0"])
            .arg("--cert")
            .arg(format!("{CERTS}/server.crt"))
            .arg("--key")
            .arg(format!("{CERTS}/server.key"))
            .args(["--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edgechat serve");
        let stderr = child.stderr.take().expect("server stderr");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            // Keep draining stderr for the server's whole life.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on tls://").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let mut server = Server {
            child,
            addr: String::new(),
        };
        server.addr = rx
            .recv_timeout(TIMEOUT)
            .expect("server never logged `listening on tls://`");
        server
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Runs `edgechat bench --tls --ca certs/ca.crt --addr ADDR --json ARGS`.
    fn bench(&self, args: &[&str]) -> (ExitStatus, String) {
        let mut child = Command::new(BIN)
            .args(["bench", "--tls", "--json", "--addr", &self.addr])
            .arg("--ca")
            .arg(format!("{CERTS}/ca.crt"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edgechat bench");
        let mut stdout = child.stdout.take().expect("bench stdout");
        let reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let Some(status) = wait_bounded(&mut child) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bench {args:?} ran longer than {TIMEOUT:?}");
        };
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let out = reader.join().expect("stdout reader");
        assert!(status.success(), "bench {args:?}: {status}\n{out}\n{err}");
        (status, out)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        if wait_bounded(&mut self.child).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for a child for at most [`TIMEOUT`].
fn wait_bounded(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(10));
    }
    None
}

/// A number field of the flat JSON object the bench prints.
fn field(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    let at = json.find(&pat).unwrap_or_else(|| panic!("{key} in {json}")) + pat.len();
    let end = json[at..].find([',', '}']).map_or(json.len(), |e| at + e);
    json[at..end]
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {json}"))
}

#[test]
fn tls_pingpong_for_a_second_has_no_errors() {
    let server = Server::start("echo");
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
    let server = Server::start("echo");
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
    let server = Server::start("echo");
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
}

#[test]
fn tls_idle_and_chat_modes() {
    let server = Server::start("echo");
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
    let chat = Server::start("chat");
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
