//! End to end with the real binary: `edgechat client` and `edgechat bench`
//! against `edgechat serve` on loopback (echo; chat for the interactive
//! client). Every wait is bounded, and the server is stopped (SIGTERM) by a
//! guard even when a test fails.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::thread;

use common::{
    bench_json, connect, field, run_edgechat as run, spawn_edgechat, wait_child, Server, TIMEOUT,
};

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
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let want = input();
    let out = run(
        &["client", &server.addr().to_string()],
        Stdio::piped(),
        Some(want.clone()),
    );
    assert_echoed(&out, &want);
}

#[test]
fn client_echoes_a_regular_file_on_stdin() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let want = input();
    let path = std::env::temp_dir().join(format!("edgechat-client-{}.txt", std::process::id()));
    std::fs::write(&path, &want).expect("write input file");
    let file = std::fs::File::open(&path).expect("open input file");
    let out = run(
        &["client", &server.addr().to_string()],
        Stdio::from(file),
        None,
    );
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

fn bench(server: &Server, extra: &[&str]) -> String {
    let mut args = vec!["--conns", "4", "--warmup", "0.2"];
    args.extend(extra);
    let json = bench_json(server, &args);
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
    assert!(field(&json, "server_rss_kib") > 0.0, "{json}");
    json
}

#[test]
fn bench_pingpong_for_a_second() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let json = bench(&server, &["--mode", "pingpong", "--secs", "1"]);
    assert!(field(&json, "msgs") > 0.0, "{json}");
    assert!(field(&json, "msgs_per_sec") > 0.0, "{json}");
    assert!(field(&json, "p50_us") > 0.0, "{json}");
    assert!(field(&json, "p999_us") >= field(&json, "p50_us"), "{json}");
}

#[test]
fn bench_count_reports_exactly_that_many_messages() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let json = bench(&server, &["--mode", "pingpong", "--count", "1000"]);
    assert_eq!(field(&json, "msgs"), 1000.0, "{json}");
    assert_eq!(field(&json, "bytes"), 64_000.0, "{json}");
}

#[test]
fn bench_stream_count_reports_exactly_that_many_messages() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let args = [
        "--mode", "stream", "--count", "300", "--size", "16384", "--depth", "4",
    ];
    let json = bench(&server, &args);
    assert_eq!(field(&json, "msgs"), 300.0, "{json}");
    assert_eq!(field(&json, "bytes"), 300.0 * 16384.0, "{json}");
}

#[test]
fn bench_stream_for_a_second() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let args = [
        "--mode", "stream", "--secs", "1", "--size", "1000", "--depth", "8",
    ];
    let json = bench(&server, &args);
    let msgs = field(&json, "msgs");
    assert!(msgs > 0.0, "{json}");
    assert_eq!(field(&json, "bytes"), msgs * 1000.0, "{json}");
    assert!(field(&json, "mb_per_sec") > 0.0, "{json}");
}

/// The client is interactive: what the server sends is printed as it
/// arrives, while stdin (a pipe the test holds open) has not ended.
#[test]
fn client_prints_what_arrives_before_its_stdin_ends() {
    let server = Server::start_mode("chat", &["--tcp", "127.0.0.1:0"]);
    let addr = server.addr().to_string();
    let mut child = spawn_edgechat(&["client", &addr], Stdio::piped());
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("{what} on the client's stdout: {e:?}"))
    };

    let hello = next("HELLO");
    assert!(
        hello.starts_with("HELLO guest") && hello.ends_with(" lobby"),
        "{hello}"
    );
    // A line typed into the client, answered by the server.
    stdin
        .write_all(b"/nick ada\n")
        .expect("write to the client's stdin");
    stdin.flush().expect("flush");
    assert_eq!(next("the answer to /nick"), "OK nick ada");
    // Another client's line, in the same room.
    let mut other = BufReader::new(connect(server.addr()));
    let mut line = String::new();
    other
        .read_line(&mut line)
        .expect("the other client's HELLO");
    let nick = line.split(' ').nth(1).expect("a nick in HELLO").to_string();
    assert_eq!(next("the other client's JOIN"), format!("JOIN {nick}"));
    other.get_mut().write_all(b"hello ada\n").expect("write");
    assert_eq!(
        next("the other client's line"),
        format!("MSG {nick} hello ada")
    );
    assert!(
        child.try_wait().expect("waitpid(2)").is_none(),
        "the client ended before its input did"
    );

    // The end of input: the client half-closes, the server closes, exit 0.
    drop(stdin);
    let Some(status) = wait_child(&mut child, TIMEOUT) else {
        panic!("the client did not exit after the end of its input");
    };
    assert!(status.success(), "client exit status {status}");
    assert!(
        rx.recv_timeout(TIMEOUT).is_err(),
        "nothing after the server closed"
    );
}

/// `--mode handshake` without `--tls`: a new plain connection per echoed
/// message.
#[test]
fn bench_handshake_without_tls_against_plain_echo() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let args = [
        "--mode",
        "handshake",
        "--conns",
        "4",
        "--secs",
        "1",
        "--warmup",
        "0.2",
    ];
    let json = bench_json(&server, &args);
    assert!(json.contains("\"kind\":\"plain\""), "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
    assert_eq!(field(&json, "failed_conns"), 0.0, "{json}");
    assert!(field(&json, "handshakes") > 0.0, "{json}");
    assert_eq!(field(&json, "resumed"), 0.0, "{json}");
    let counted = bench_json(&server, &["--mode", "handshake", "--count", "100"]);
    assert_eq!(field(&counted, "handshakes"), 100.0, "{counted}");
    assert_eq!(field(&counted, "errors"), 0.0, "{counted}");
}
