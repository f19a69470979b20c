//! End to end with the real binary: `edgechat client` and `edgechat bench`
//! against `edgechat serve --mode echo` on loopback. Every wait is bounded,
//! and the server is stopped (SIGTERM) by a guard even when a test fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_edgechat");
const TIMEOUT: Duration = Duration::from_secs(30);

/// A running echo server; dropping it sends SIGTERM and waits (bounded).
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--mode", "echo", "--tcp", "127.0.0.1:0"])
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

/// Runs `edgechat ARGS` with `stdin`, collecting its output; kills it and
/// fails the test if it runs longer than [`TIMEOUT`].
fn run(args: &[&str], stdin: Stdio, feed: Option<Vec<u8>>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edgechat");
    if let (Some(bytes), Some(mut pipe)) = (feed, child.stdin.take()) {
        thread::spawn(move || pipe.write_all(&bytes));
    }
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let Some(status) = wait_bounded(&mut child) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("edgechat {args:?} did not finish within {TIMEOUT:?}");
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Some short lines, an empty one, and a 100 KB one.
fn input() -> Vec<u8> {
    let mut v = b"hello\n\nsecond line with spaces\n".to_vec();
    v.extend((0..100_000u32).map(|i| b'a' + (i * 7 % 26) as u8));
    v.extend_from_slice(b"\nlast line\n");
    v
}

fn assert_echoed(out: &Output, want: &[u8]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "status {:?}: {stderr}", out.status);
    assert_eq!(out.stdout.len(), want.len(), "{stderr}");
    assert!(out.stdout == want, "stdout differs from stdin");
}

#[test]
fn client_echoes_piped_stdin_exactly() {
    let server = Server::start();
    let want = input();
    let out = run(
        &["client", &server.addr],
        Stdio::piped(),
        Some(want.clone()),
    );
    assert_echoed(&out, &want);
}

#[test]
fn client_echoes_a_regular_file_on_stdin() {
    let server = Server::start();
    let want = input();
    let path = std::env::temp_dir().join(format!("edgechat-client-{}.txt", std::process::id()));
    std::fs::write(&path, &want).expect("write input file");
    let file = std::fs::File::open(&path).expect("open input file");
    let out = run(&["client", &server.addr], Stdio::from(file), None);
    let _ = std::fs::remove_file(&path);
    assert_echoed(&out, &want);
}

#[test]
fn client_names_the_address_it_could_not_reach() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port(); // the listener is closed again: nothing listens there now
    let addr = format!("127.0.0.1:{port}");
    let out = run(&["client", &addr], Stdio::null(), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("connect {addr}: Connection refused")),
        "{stderr}"
    );
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

fn bench(server: &Server, extra: &[&str]) -> String {
    let pid = server.pid();
    let mut args = vec!["bench", "--addr", &server.addr, "--conns", "4", "--json"];
    args.extend(["--warmup", "0.2", "--server-pid", &pid]);
    args.extend(extra);
    let out = run(&args, Stdio::null(), None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stdout} {stderr}", out.status);
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    assert_eq!(field(&stdout, "errors"), 0.0, "{stdout}");
    assert!(field(&stdout, "server_rss_kib") > 0.0, "{stdout}");
    stdout
}

#[test]
fn bench_pingpong_for_a_second() {
    let server = Server::start();
    let json = bench(&server, &["--mode", "pingpong", "--secs", "1"]);
    assert!(field(&json, "msgs") > 0.0, "{json}");
    assert!(field(&json, "msgs_per_sec") > 0.0, "{json}");
    assert!(field(&json, "p50_us") > 0.0, "{json}");
    assert!(field(&json, "p999_us") >= field(&json, "p50_us"), "{json}");
}

#[test]
fn bench_count_reports_exactly_that_many_messages() {
    let server = Server::start();
    let json = bench(&server, &["--mode", "pingpong", "--count", "1000"]);
    assert_eq!(field(&json, "msgs"), 1000.0, "{json}");
    assert_eq!(field(&json, "bytes"), 64_000.0, "{json}");
}

#[test]
fn bench_stream_for_a_second() {
    let server = Server::start();
    let args = [
        "--mode", "stream", "--secs", "1", "--size", "1000", "--depth", "8",
    ];
    let json = bench(&server, &args);
    let msgs = field(&json, "msgs");
    assert!(msgs > 0.0, "{json}");
    assert_eq!(field(&json, "bytes"), msgs * 1000.0, "{json}");
    assert!(field(&json, "mb_per_sec") > 0.0, "{json}");
}
