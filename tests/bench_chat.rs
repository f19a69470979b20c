//! End to end with the real binary: `edgechat bench --mode chat` and
//! `--mode idle` against `edgechat serve` (chat, the default mode) on
//! loopback. Every wait is bounded, and the server is stopped (SIGTERM,
//! then SIGKILL) by a guard even when a test fails. The helpers are local
//! to this file.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_edgechat");
const TIMEOUT: Duration = Duration::from_secs(30);

/// A running chat server; dropping it stops and reaps it.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--tcp", "127.0.0.1:0", "--log-level", "info"])
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
                if let Some(addr) = line.split("listening on tcp://").nth(1) {
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
            .expect("server never logged `listening on tcp://`");
        server
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
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

/// Runs `edgechat bench --json ARGS` against `server`: asserts it exits 0
/// and prints one line, and returns that line. Killed after [`TIMEOUT`].
fn bench(server: &Server, args: &[&str]) -> String {
    let pid = server.pid();
    let mut child = Command::new(BIN)
        .args([
            "bench",
            "--addr",
            &server.addr,
            "--json",
            "--server-pid",
            &pid,
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edgechat bench");
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let Some(status) = wait_bounded(&mut child) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("edgechat bench {args:?} did not finish within {TIMEOUT:?}");
    };
    let (out, err) = (out.join().expect("stdout"), err.join().expect("stderr"));
    assert!(status.success(), "{status:?}: {out} {err}");
    assert_eq!(out.lines().count(), 1, "one JSON line: {out}");
    out
}

/// The number after `"key":` in a one-line JSON object.
fn field(json: &str, key: &str) -> f64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {json}"));
    let rest = &json[at + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end]
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

#[test]
fn chat_for_a_second_with_two_senders() {
    let server = Server::start();
    let args = [
        "--mode",
        "chat",
        "--secs",
        "1",
        "--warmup",
        "0.2",
        "--receivers",
        "5",
        "--senders",
        "2",
    ];
    let json = bench(&server, &args);
    assert!(field(&json, "deliveries") > 0.0, "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
    assert_eq!(field(&json, "order_errors"), 0.0, "{json}");
    assert!(field(&json, "p99_us") >= field(&json, "p50_us"), "{json}");
    assert!(field(&json, "server_rss_kib") > 0.0, "{json}");
    assert!(field(&json, "server_cpu_us") >= 0.0, "{json}");
}

#[test]
fn chat_count_delivers_every_line_to_every_receiver() {
    let server = Server::start();
    let args = ["--mode", "chat", "--count", "100", "--receivers", "3"];
    let json = bench(&server, &args);
    assert_eq!(field(&json, "lines"), 100.0, "{json}");
    assert_eq!(field(&json, "deliveries"), 300.0, "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
}

#[test]
fn chat_count_with_lines_in_flight() {
    let server = Server::start();
    let args = [
        "--mode",
        "chat",
        "--count",
        "1000",
        "--receivers",
        "4",
        "--senders",
        "3",
        "--depth",
        "32",
    ];
    let json = bench(&server, &args);
    assert_eq!(field(&json, "deliveries"), 4000.0, "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
}

#[test]
fn idle_reports_rss_per_connection() {
    let server = Server::start();
    let args = ["--mode", "idle", "--conns", "50", "--secs", "0.5"];
    let json = bench(&server, &args);
    assert!(field(&json, "rss_after_kib") > 0.0, "{json}");
    assert!(field(&json, "rss_per_conn_bytes") >= 0.0, "{json}");
    assert_eq!(field(&json, "hellos"), 50.0, "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
}
